"use strict";
(function () {
  const el = document.getElementById("c-recall");
  if (!el) return;
  const versions = JSON.parse(document.getElementById("data").textContent);
  const names = [...new Set(versions.flatMap((v) => Object.keys(v.metrics)))];
  // Versions are named <UTC time>-<random>: 20261128T171645287-4e7130 -> "11-28 17:16:45".
  function label(version) {
    const m = /^\d{4}(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)/.exec(version);
    return m ? `${m[1]}-${m[2]} ${m[3]}:${m[4]}:${m[5]}` : version.slice(-12);
  }
  function draw() {
    const t = versions.map((_, i) => i);
    const series = names.map((n, k) => ({ name: n, values: versions.map((v) => (v.metrics[n] ? v.metrics[n].recall : null)), color: fypCharts.COLORS[k % 6] }));
    const legend = document.getElementById("recall-legend");
    legend.textContent = "";
    if (versions.length === 1) {
      el.style.height = "auto";
      fypCharts.bars(el, names.map((n) => ({ label: n, value: versions[0].metrics[n].recall })), { format: (v) => v.toFixed(4) });
      return;  // one version: the bars carry their names, no legend needed
    }
    fypCharts.line(el, t, series, { format: (v) => v.toFixed(3), xLabels: versions.map((v) => label(v.version)) });
    names.forEach((n, k) => {
      const s = document.createElement("span"), i = document.createElement("i");
      i.style.background = fypCharts.COLORS[k % 6]; s.appendChild(i); s.appendChild(document.createTextNode(n));
      legend.appendChild(s);
    });
  }
  draw();
  window.addEventListener("resize", draw);
})();
