// Tollgate dashboard: the little JavaScript the pages use. The pages work
// without it; it adds copy buttons, confirmations and the charts.
(function () {
  "use strict";

  // <button data-copy="ID">: copies the text of element ID.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-copy]");
    if (!b) return;
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el) return;
    var text = el.textContent.trim();
    var done = function () {
      var was = b.textContent;
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = was; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(el); });
    } else {
      selectText(el);
    }
  });

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // <form data-confirm="Question?">: asks before submitting.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    var q = f.getAttribute && f.getAttribute("data-confirm");
    if (q && !window.confirm(q)) ev.preventDefault();
  });

  // <canvas data-chart="ID">: a bar chart of the JSON in <script
  // type="application/json" id="ID"> ({labels: [...], datasets: [{label,
  // data}]}), drawn by Chart.js.
  function charts() {
    if (typeof Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (c) {
      var src = document.getElementById(c.getAttribute("data-chart"));
      if (!src) return;
      var data = JSON.parse(src.textContent);
      var colors = ["#1f5fbf", "#b3261e", "#1e7a3c"];
      data.datasets.forEach(function (d, i) { d.backgroundColor = colors[i % colors.length]; });
      new Chart(c, {
        type: "bar",
        data: data,
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          scales: {
            x: { ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
            y: { beginAtZero: true, ticks: { precision: 0 } }
          },
          plugins: { legend: { position: "bottom" } }
        }
      });
      c.setAttribute("data-drawn", "true");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", charts);
  } else {
    charts();
  }
})();
