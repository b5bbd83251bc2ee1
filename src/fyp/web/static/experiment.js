// Results: one card per metric with arm values and the treatment-minus-control intervals.
"use strict";
(function () {
  const res = JSON.parse(document.getElementById("data").textContent);
  const box = document.getElementById("metrics");
  if (!res || !box) return;
  const LOWER_IS_BETTER = new Set(["skip_rate", "report_rate"]);
  function fmtFor(m) {
    if (m.name.endsWith("_rate")) return (v) => (v * 100).toFixed(2) + "%";
    if (m.name.startsWith("watch_ms")) return (v) => (v / 1000).toFixed(Math.abs(v) >= 10000 ? 0 : 1) + " s";
    return (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  }
  const charts = [];
  for (const m of res.metrics) {
    const card = document.createElement("div");
    card.className = "card metric";
    card.dataset.metric = m.name;
    const h = document.createElement("h2");
    h.textContent = m.name + (m.primary ? " · primary" : m.guardrail ? " · guardrail" : "");
    card.appendChild(h);
    const p = document.createElement("p");
    p.className = "muted"; p.style.fontSize = "13px"; p.style.margin = "0 0 6px";
    const fmt = fmtFor(m);
    p.textContent = m.description + " " + Object.entries(m.arms).map(([a, v]) => `${a}: ${v === null ? "–" : fmt(v)}`).join(" · ");
    card.appendChild(p);
    const chart = document.createElement("div");
    chart.className = "chart"; chart.style.height = "auto";
    card.appendChild(chart);
    const rows = m.comparisons.map((c) => ({
      label: c.arm, diff: c.diff, lo: c.ci_low, hi: c.ci_high, significant: c.significant,
    }));
    const note = document.createElement("p");
    note.className = "muted"; note.style.fontSize = "12px"; note.style.margin = "6px 0 0";
    note.textContent = m.comparisons.map((c) => c.status === "ok"
      ? `${c.arm} − ${res.control}: ${fmt(c.diff)} [${fmt(c.ci_low)}, ${fmt(c.ci_high)}], p = ${c.p_value === null ? "–" : c.p_value.toPrecision(2)}${c.significant ? " (significant)" : ""}`
      : `${c.arm}: not enough data (${c.n_treatment} vs ${c.n_control} users)`).join(" · ");
    card.appendChild(note);
    box.appendChild(card);
    charts.push(() => fypCharts.forest(chart, rows, { format: fmt, lowerIsBetter: LOWER_IS_BETTER.has(m.name) }));
  }
  const draw = () => charts.forEach((f) => f());
  draw();
  window.addEventListener("resize", draw);
})();
