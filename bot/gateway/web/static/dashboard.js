// Draws the dashboard's charts with ECharts from each <div class="chart" data-chart="{...}">; the same
// figures are in the table under each chart, so the page says everything without this script.
(function () {
  "use strict";
  var COLORS = ["#b22222", "#0969da", "#1a7f37", "#9a6700", "#8250df", "#59636e"];
  function option(spec) {
    if (spec.type === "pie") {
      return {
        animation: false, color: COLORS, tooltip: { trigger: "item" }, legend: { bottom: 0 },
        series: [{ type: "pie", radius: ["35%", "65%"], data: spec.x.map(function (name, i) {
          return { name: name, value: spec.series[0] ? spec.series[0].data[i] : 0 };
        }) }]
      };
    }
    var bar = spec.type === "bar";
    return {
      animation: false, color: COLORS, tooltip: { trigger: "axis" }, legend: { top: 0 },
      grid: { left: 40, right: 16, top: 32, bottom: 40, containLabel: true },
      xAxis: { type: "category", data: spec.x, axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", minInterval: 1 },
      series: spec.series.map(function (s) {
        return { name: s.name, type: bar ? "bar" : "line", data: s.data, stack: bar && spec.series.length > 1 ? "all" : undefined };
      })
    };
  }
  function draw() {
    if (!window.echarts) { return; }
    var charts = [];
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option(JSON.parse(el.dataset.chart)));
      el.dataset.drawn = "1";
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
