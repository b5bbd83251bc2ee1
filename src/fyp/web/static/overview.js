// Overview charts; re-drawn from /v1/analytics/overview every 30 s (the session cookie is the key).
"use strict";
(function () {
  const pct = (v) => (v * 100).toFixed(0) + "%";
  const secs = (v) => (v / 1000).toFixed(0) + " s";
  function draw(d) {
    const s = d.series, $ = (id) => document.getElementById(id);
    fypCharts.line($("c-epm"), s.t, [{ name: "events/min", values: s.events_per_minute }], { format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)) });
    fypCharts.line($("c-users"), s.t, [{ name: "active users", values: s.active_users, color: "#8b7bff" }], { format: (v) => v.toFixed(0) });
    fypCharts.line($("c-watch"), s.t, [{ name: "watch per user", values: s.watch_ms_per_user, color: "#ffb020" }], { format: secs });
    fypCharts.line($("c-rates"), s.t, [
      { name: "completion", values: s.completion_rate, color: "#25d0c6" },
      { name: "skip", values: s.skip_rate, color: "#ff3b6b" },
    ], { format: pct, yMax: 1 });
  }
  let data = JSON.parse(document.getElementById("data").textContent);
  draw(data);
  window.addEventListener("resize", () => draw(data));
  setInterval(async () => {
    if (document.hidden) return;
    const q = new URLSearchParams({ hours: data.hours, step_minutes: data.step_minutes });
    const r = await fetch("/v1/analytics/overview?" + q, { credentials: "same-origin" });
    if (r.ok) { data = await r.json(); draw(data); }
  }, 30000);
})();
