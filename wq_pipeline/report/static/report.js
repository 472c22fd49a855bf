/* wq-pipeline report: draws the chart specs embedded in #report-data with uPlot.
   Drag on a chart to zoom into a time range, double-click to zoom back out; click a legend
   entry to hide or show a series. Charts of one group (the decomposition) zoom together. */
(function () {
  "use strict";
  var state = { charts: [], rendered: [], errors: [] };
  window.__wqReport = state;
  var payload;
  try {
    payload = JSON.parse(document.getElementById("report-data").textContent);
  } catch (e) {
    state.errors.push("report data: " + e);
    console.error("wq report: cannot read the embedded data", e);
    return;
  }
  state.charts = payload.charts.map(function (c) { return c.id; });
  var plots = [];
  var groups = {};
  var syncing = false;
  var PRINT_WIDTH = 680;

  function dpr() { return window.devicePixelRatio || 1; }

  function tickSize(self, values, axisIdx, cycleNum) {
    var axis = self.axes[axisIdx];
    if (cycleNum > 2) return axis._size;
    var longest = "";
    (values || []).forEach(function (v) { if (v != null && String(v).length > longest.length) longest = String(v); });
    var w = 0;
    if (longest) {
      self.ctx.font = axis.font[0];
      w = self.ctx.measureText(longest).width / dpr();
    }
    return Math.max(36, Math.ceil(w + axis.ticks.size + axis.gap + 6));
  }

  function isPow10(v) {
    if (!(v > 0)) return false;
    var e = Math.log10(v);
    return Math.abs(e - Math.round(e)) < 1e-9;
  }

  function logValues(u, splits) {
    return splits.map(function (v) {
      if (v == null || !isPow10(v)) return "";
      var e = Math.round(Math.log10(v));
      return e >= -3 && e <= 4 ? String(+v.toPrecision(1)) : "1e" + e;
    });
  }

  function logFilter(u, splits) {
    return splits.map(function (v) { return isPow10(v) ? v : null; });
  }

  var INT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

  function seriesOpts(s) {
    var o = { label: s.label, stroke: s.color, width: s.width, show: s.show !== false, spanGaps: false };
    if (s.dash) o.dash = s.dash;
    if (s.bars) {
      o.fill = s.color + "b3";
      o.width = 1;
      o.paths = uPlot.paths.bars({ size: [s.bars.size, Infinity], align: s.bars.align || 0 });
      o.points = { show: false };
    } else if (!s.line) {
      o.width = 0;
      o.paths = function () { return null; };
      o.points = { show: true, size: s.width, space: 0, stroke: s.color, fill: s.color, width: 1 };
    } else {
      o.points = { show: !!s.points, size: s.psize || 5, fill: s.color, stroke: s.color };
    }
    return o;
  }

  function drawBands(spec) {
    return function (u) {
      if (!spec.bands || !spec.bands.length) return;
      var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height, l = u.bbox.left, r = l + u.bbox.width;
      ctx.save();
      spec.bands.forEach(function (b) {
        var x0 = Math.max(l, Math.min(r, u.valToPos(b.from, "x", true)));
        var x1 = Math.max(l, Math.min(r, u.valToPos(b.to, "x", true)));
        if (x1 - x0 < 1) return;
        ctx.fillStyle = b.color;
        ctx.fillRect(x0, top, x1 - x0, h);
        if (b.label) {
          ctx.fillStyle = "#555";
          ctx.font = Math.round(11 * dpr()) + "px system-ui, sans-serif";
          ctx.fillText(b.label, x0 + 4 * dpr(), top + 13 * dpr());
        }
      });
      ctx.restore();
    };
  }

  function syncScale(spec) {
    return function (u, key) {
      if (key !== "x" || syncing || !spec.group) return;
      syncing = true;
      try {
        groups[spec.group].forEach(function (o) {
          if (o !== u) o.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
        });
      } finally {
        syncing = false;
      }
    };
  }

  function minSpacing(xs) {
    var d = Infinity;
    for (var i = 1; i < xs.length; i++) if (xs[i] > xs[i - 1]) d = Math.min(d, xs[i] - xs[i - 1]);
    return isFinite(d) ? d : 1;
  }

  function options(spec, width) {
    var hasBars = spec.series.some(function (s) { return !!s.bars; });
    var xScale = { time: spec.kind === "time" };
    if (spec.logx) {
      xScale.distr = 3;
      xScale.log = 10;
      xScale.range = function (u, min, max) { return [min, max]; };
    }
    if (hasBars || spec.kind === "cat") {
      var pad = minSpacing(spec.x) / 2;
      xScale.range = function (u, min, max) { return [min - pad, max + pad]; };
    }
    var yScale = {};
    if (spec.logy) { yScale.distr = 3; yScale.log = 10; }
    if (spec.yrange) {
      var yr = spec.yrange;
      yScale.range = function () { return [yr[0], yr[1]]; };
    }
    var xAxis = { label: spec.xlabel || "", labelSize: spec.xlabel ? 24 : 0, stroke: "#333",
                  grid: { stroke: "#e6e6e6" }, ticks: { stroke: "#ccc" } };
    if (spec.logx) {
      xAxis.values = logValues;
      xAxis.grid.filter = logFilter;
      xAxis.ticks.filter = logFilter;
    }
    if (spec.xint) { xAxis.incrs = INT_INCRS; }
    if (spec.hidex) {
      xAxis.values = function (u, splits) { return splits.map(function () { return ""; }); };
      xAxis.size = 6;
      xAxis.labelSize = 0;
      xAxis.label = "";
    }
    if (spec.kind === "cat") {
      xAxis.splits = function () { return spec.x.slice(); };
      xAxis.values = function (u, splits) { return splits.map(function (i) { return spec.cats[i] || ""; }); };
      xAxis.grid = { show: false };
      xAxis.size = 40;
    }
    var yAxis = { label: spec.ylabel || "", labelSize: spec.ylabel ? 22 : 0, size: tickSize, stroke: "#333",
                  grid: { stroke: "#e6e6e6" }, ticks: { stroke: "#ccc" } };
    if (spec.logy) {
      yAxis.values = logValues;
      yAxis.grid.filter = logFilter;
      yAxis.ticks.filter = logFilter;
    }
    var o = {
      width: width,
      height: spec.height || 260,
      scales: { x: xScale, y: yScale },
      axes: [xAxis, yAxis],
      series: [{ label: spec.kind === "time" ? "time" : (spec.xlabel || "x") }].concat(spec.series.map(seriesOpts)),
      legend: { show: spec.legend !== false, live: true },
      cursor: { drag: { x: true, y: false, setScale: true } },
      hooks: { drawClear: [drawBands(spec)], setScale: [syncScale(spec)] },
    };
    if (spec.kind === "time") {
      o.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "UTC"); };
    } else if (spec.kind === "cat") {
      o.series[0].value = function (u, v) { return v == null ? "" : (spec.cats[v] || ""); };
    }
    if (spec.group) o.cursor.sync = { key: spec.group };
    return o;
  }

  function build(el, spec) {
    var width = Math.max(260, Math.floor(el.clientWidth));
    var plot = new uPlot(options(spec, width), [spec.x].concat(spec.ys), el);
    plots.push({ plot: plot, el: el, spec: spec });
    if (spec.group) (groups[spec.group] = groups[spec.group] || []).push(plot);
    return plot;
  }

  payload.charts.forEach(function (spec) {
    var el = document.querySelector('[data-chart="' + spec.id + '"]');
    if (!el) {
      state.errors.push("no place for chart " + spec.id);
      console.error("wq report: no element for chart", spec.id);
      return;
    }
    try {
      build(el, spec);
      state.rendered.push(spec.id);
    } catch (e) {
      state.errors.push(spec.id + ": " + e);
      el.textContent = "This chart could not be drawn (" + e + ").";
      console.error("wq report: chart", spec.id, e);
    }
  });

  function resizeAll(fixedWidth) {
    plots.forEach(function (p) {
      var w = fixedWidth || Math.max(260, Math.floor(p.el.clientWidth));
      if (w !== p.plot.width) p.plot.setSize({ width: w, height: p.spec.height || 260 });
    });
  }
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { resizeAll(); }, 150);
  });
  window.addEventListener("beforeprint", function () {
    plots.forEach(function (p) {
      var w = Math.min(PRINT_WIDTH, Math.floor(p.el.clientWidth) || PRINT_WIDTH);
      p.plot.setSize({ width: w, height: p.spec.height || 260 });
    });
  });
  window.addEventListener("afterprint", function () { resizeAll(); });
  document.documentElement.classList.add("charts-ready");
})();
