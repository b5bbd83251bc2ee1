// Small SVG charts for the dashboard: lines over time, horizontal bars, interval (forest) plots.
"use strict";
window.fypCharts = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#25d0c6", "#ff3b6b", "#ffb020", "#8b7bff", "#3ecf8e", "#5aa9ff"];

  function svg(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, attrs) {
    const t = svg("text", Object.assign({ x, y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  // A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about four gridlines.
  function niceStep(max) {
    if (!(max > 0)) return 0.25;
    const raw = max / 4, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }
  function fmtTime(ms, spanMs) {
    const d = new Date(ms);
    const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    return spanMs > 36 * 3600e3 ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm : hm;
  }
  function empty(el, msg) {
    el.textContent = "";
    const p = document.createElement("p");
    p.className = "empty"; p.textContent = msg || "No data in this window yet.";
    el.appendChild(p);
  }

  // Lines over time. t: epoch ms; series: [{name, values (null = gap), color}].
  function line(el, t, series, opts) {
    opts = opts || {};
    const fmt = opts.format || ((v) => v.toFixed(1));
    const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
    if (!t.length || !all.length) return empty(el);
    el.textContent = "";
    const W = Math.max(el.clientWidth, 240), H = Math.max(el.clientHeight, 120);
    const L = 46, R = 10, T = 8, B = 22;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "chart" }, el);
    const stepY = opts.yMax ? opts.yMax / 4 : niceStep(Math.max(...all));
    const ymax = opts.yMax || Math.max(stepY, Math.ceil(Math.max(...all) / stepY - 1e-9) * stepY);
    const x = (i) => L + (t.length === 1 ? 0 : (i / (t.length - 1)) * (W - L - R));
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    for (let k = 0; k * stepY <= ymax + 1e-9; k++) {
      const v = k * stepY;
      svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "axis", "stroke-dasharray": k ? "2 4" : "" }, root);
      text(root, L - 6, y(v) + 4, fmt(v), { "text-anchor": "end" });
    }
    const span = t[t.length - 1] - t[0];
    // Labels about 60 px wide: keep at least 90 px between ticks so none overlap.
    const ticks = Math.max(2, Math.min(6, t.length, Math.floor((W - L - R) / 90) + 1));
    for (let k = 0; k < ticks; k++) {
      const i = Math.round((k * (t.length - 1)) / Math.max(1, ticks - 1));
      text(root, x(i), H - 6, opts.xLabels ? opts.xLabels[i] : fmtTime(t[i], span), { "text-anchor": k === 0 ? "start" : k === ticks - 1 ? "end" : "middle" });
    }
    series.forEach((s, n) => {
      const color = s.color || COLORS[n % COLORS.length];
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      });
      svg("path", { d, fill: "none", stroke: color, "stroke-width": 2, "stroke-linejoin": "round", class: "series" }, root);
      // Hover targets: a native tooltip per point keeps this dependency-free.
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const c = svg("circle", { cx: x(i), cy: y(v), r: 3, fill: color, "fill-opacity": 0.0, class: "pt" }, root);
        svg("title", {}, c).textContent = `${s.name || ""} ${opts.xLabels ? opts.xLabels[i] : fmtTime(t[i], span)}: ${fmt(v)}`;
      });
    });
  }

  // Horizontal bars. rows: [{label, value, note}].
  function bars(el, rows, opts) {
    opts = opts || {};
    const fmt = opts.format || ((v) => v.toFixed(2));
    if (!rows.length) return empty(el);
    el.textContent = "";
    const W = Math.max(el.clientWidth, 240), rowH = 22, H = rows.length * rowH + 4;
    const L = Math.min(140, W * 0.35), R = 70;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "bars" }, el);
    root.style.height = H + "px";
    const max = Math.max(...rows.map((r) => r.value), 1e-9);
    rows.forEach((r, i) => {
      const yy = i * rowH + 3;
      text(root, L - 6, yy + 13, r.label, { "text-anchor": "end" });
      const w = Math.max(2, (r.value / max) * (W - L - R));
      const b = svg("rect", { x: L, y: yy + 2, width: w, height: rowH - 8, rx: 3, fill: opts.color || COLORS[0], class: "bar-rect" }, root);
      svg("title", {}, b).textContent = `${r.label}: ${fmt(r.value)}${r.note ? " · " + r.note : ""}`;
      text(root, L + w + 6, yy + 13, fmt(r.value) + (r.note ? "  " + r.note : ""));
    });
  }

  // Intervals around zero. rows: [{label, diff, lo, hi, significant}].
  function forest(el, rows, opts) {
    opts = opts || {};
    const fmt = opts.format || ((v) => v.toPrecision(3));
    const ok = rows.filter((r) => r.lo !== null && r.hi !== null && r.diff !== null);
    if (!ok.length) return empty(el, opts.emptyText || "Not enough data for an interval yet.");
    el.textContent = "";
    const W = Math.max(el.clientWidth, 240), rowH = 34, H = ok.length * rowH + 26;
    const L = Math.min(110, W * 0.3), R = 16;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label || "confidence intervals" }, el);
    root.style.height = H + "px";
    let lo = Math.min(0, ...ok.map((r) => r.lo)), hi = Math.max(0, ...ok.map((r) => r.hi));
    const pad = (hi - lo) * 0.1 || 1; lo -= pad; hi += pad;
    const x = (v) => L + ((v - lo) / (hi - lo)) * (W - L - R);
    svg("line", { x1: x(0), x2: x(0), y1: 0, y2: H - 18, stroke: "#9aa3b2", "stroke-dasharray": "3 3" }, root);
    // Axis ends are labelled unless they would run into the zero label.
    if (x(0) - x(lo) > 60) text(root, x(lo), H - 4, fmt(lo), { "text-anchor": "start" });
    text(root, x(0), H - 4, "0", { "text-anchor": "middle" });
    if (x(hi) - x(0) > 60) text(root, x(hi), H - 4, fmt(hi), { "text-anchor": "end" });
    ok.forEach((r, i) => {
      const yy = i * rowH + 16;
      const color = !r.significant ? "#9aa3b2" : (r.diff > 0) === !opts.lowerIsBetter ? "#3ecf8e" : "#ff5c5c";
      text(root, L - 8, yy + 4, r.label, { "text-anchor": "end" });
      const g = svg("g", { class: "ci" }, root);
      svg("line", { x1: x(r.lo), x2: x(r.hi), y1: yy, y2: yy, stroke: color, "stroke-width": 3, "stroke-linecap": "round" }, g);
      svg("circle", { cx: x(r.diff), cy: yy, r: 5, fill: color }, g);
      svg("title", {}, g).textContent = `${r.label}: ${fmt(r.diff)} [${fmt(r.lo)}, ${fmt(r.hi)}]`;
    });
  }

  return { line, bars, forest, COLORS };
})();
