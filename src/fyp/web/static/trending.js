"use strict";
(function () {
  const d = JSON.parse(document.getElementById("data").textContent);
  function draw() {
    const rows = (xs, prefix) => xs.map((x) => ({ label: prefix + x.name, value: x.velocity, note: "×" + x.growth.toFixed(2) }));
    fypCharts.bars(document.getElementById("c-tags"), rows(d.hashtags, "#"), { format: (v) => v.toFixed(1) + "/h" });
    fypCharts.bars(document.getElementById("c-sounds"), rows(d.sounds, "♫ "), { format: (v) => v.toFixed(1) + "/h", color: "#8b7bff" });
  }
  draw();
  window.addEventListener("resize", draw);
})();
