/* deskprof flame graph: builds the tree to draw from the compact data Python embedded
 * (a trie of calling contexts + weight rows per endpoint and thread state) and hands it
 * to d3-flame-graph. Two modes: "profile" (sample counts) and "diff" (baseline vs
 * candidate, normalised per request or per second, coloured by change).
 * Stable hooks for tests: #fg-search, #fg-reset, #fg-endpoint, input[name=fg-state],
 * #fg-matched, and one g.frame[data-name] per drawn frame. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("fg-data").textContent);
  var FG = window.flamegraph;
  var byId = function (id) { return document.getElementById(id); };
  var chartEl = byId("fg-chart");
  var trie = D.trie;
  var nNodes = trie.up.length;
  trie.parent = trie.up.map(function (up, i) { return i - up; });
  var diff = D.mode === "diff";
  var chart = null;
  var shown = null; /* {tree, total} of what is drawn */

  var NEUTRAL = [232, 232, 232], MORE = [220, 40, 40], LESS = [40, 90, 220];

  /* Mirrors deskprof.views.diff_flamegraph.change_colour (tested against it). */
  function changeColour(baseline, candidate) {
    var delta = candidate - baseline;
    var larger = Math.max(Math.abs(baseline), Math.abs(candidate));
    if (!(larger > 0) || delta === 0) return "rgb(" + NEUTRAL.join(",") + ")";
    var t = Math.min(1, Math.abs(delta) / larger);
    var to = delta > 0 ? MORE : LESS;
    var rgb = [0, 1, 2].map(function (i) {
      return Math.floor(NEUTRAL[i] + (to[i] - NEUTRAL[i]) * t + 0.5);
    });
    return "rgb(" + rgb.join(",") + ")";
  }

  function fmtInt(x) { return Math.round(x).toLocaleString("en-US"); }
  function fmtMs(ms) {
    var a = Math.abs(ms);
    if (a >= 1000) return (ms / 1000).toFixed(a >= 10000 ? 1 : 2) + " s";
    if (a >= 10) return ms.toFixed(1) + " ms";
    return ms.toFixed(a >= 1 ? 2 : 3) + " ms";
  }
  function pct(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(1) + "%" : "-"; }

  function selected() {
    var state = document.querySelector("input[name=fg-state]:checked");
    var shape = document.querySelector("input[name=fg-shape]:checked");
    return {
      endpoint: parseInt(byId("fg-endpoint").value, 10),
      state: state ? state.value : "both",
      shape: shape ? shape.value : "candidate"
    };
  }

  function rowMatches(i, sel) {
    if (sel.endpoint >= 0 && D.rows.endpoint[i] !== sel.endpoint) return false;
    if (sel.state === "cpu" && D.rows.state[i] !== 0) return false;
    if (sel.state === "wait" && D.rows.state[i] !== 1) return false;
    return true;
  }

  /* Sums the selected rows into per-node self values, then adds every node into its
   * parent (parent index < child index, so one backward pass), then links the nodes that
   * carry weight into nested objects for d3-flame-graph. */
  function accumulate(column, factorOf, sel) {
    var self = new Float64Array(nNodes);
    var rows = D.rows, n = rows.node.length;
    for (var i = 0; i < n; i++) {
      if (!rowMatches(i, sel)) continue;
      var f = factorOf(rows.endpoint[i]);
      if (f) self[rows.node[i]] += rows[column][i] * f;
    }
    var total = Float64Array.from(self);
    for (var k = nNodes - 1; k > 0; k--) {
      if (total[k]) total[trie.parent[k]] += total[k];
    }
    return { self: self, total: total };
  }

  function factorFn(side, sel) {
    if (!diff) return function () { return 1; };
    var scale = D.scale[side];
    if (sel.endpoint < 0) return function () { return scale.all; };
    var f = scale.endpoint[sel.endpoint];
    return function () { return f; };
  }

  function buildTree(sel) {
    var objs = new Array(nNodes);
    var main, other;
    if (diff) {
      var base = accumulate("base", factorFn("base", sel), sel);
      var cand = accumulate("cand", factorFn("cand", sel), sel);
      main = sel.shape === "baseline" ? base : cand;
      other = sel.shape === "baseline" ? cand : base;
    } else {
      main = accumulate("weight", factorFn(), sel);
    }
    for (var k = 0; k < nNodes; k++) {
      var v = main.total[k];
      if (!(v > 0)) continue;
      var node = { n: trie.names[trie.name[k]], v: v, s: main.self[k] };
      if (diff) {
        var b = sel.shape === "baseline" ? v : other.total[k];
        var c = sel.shape === "baseline" ? other.total[k] : v;
        node.b = b; node.k = c; node.dl = c - b;
        node.bs = sel.shape === "baseline" ? main.self[k] : other.self[k];
        node.ks = sel.shape === "baseline" ? other.self[k] : main.self[k];
      }
      objs[k] = node;
      if (k > 0) {
        var parent = objs[trie.parent[k]];
        (parent.c || (parent.c = [])).push(node);
      }
    }
    return { tree: objs[0] || null, total: main.total[0] };
  }

  function tooltipText(d) {
    var x = d.data, lines = [x.n];
    if (diff) {
      var u = D.unit_label;
      lines.push("baseline " + fmtMs(x.b) + " · candidate " + fmtMs(x.k) + "  (" + u + ")");
      lines.push("change " + (x.dl >= 0 ? "+" : "") + fmtMs(x.dl) +
        (x.b > 0 ? " (" + (x.dl >= 0 ? "+" : "") + pct(x.dl, x.b) + ")" : " (new)"));
      lines.push("self: baseline " + fmtMs(x.bs) + " → candidate " + fmtMs(x.ks));
    } else {
      var p = D.period_ms;
      lines.push("samples " + fmtInt(x.v) + " (" + pct(x.v, shown.total) + ") ≈ " + fmtMs(x.v * p));
      lines.push("self " + fmtInt(x.s) + " (" + pct(x.s, shown.total) + ") ≈ " + fmtMs(x.s * p));
    }
    return lines.join("\n");
  }

  function tagFrames() {
    d3.select(chartEl).selectAll("g.frame")
      .attr("data-name", function (d) { return d.data.n; })
      .attr("data-value", function (d) { return d.data.v; });
  }

  function onSearch(results, sum, total) {
    var el = byId("fg-matched");
    if (!byId("fg-search").value) { el.textContent = ""; return; }
    var what = diff ? fmtMs(sum) + " of " + fmtMs(total) + " " + D.unit_label
      : fmtInt(sum) + " of " + fmtInt(total) + " samples";
    el.textContent = "matched " + results.length + " frame" + (results.length === 1 ? "" : "s") +
      ": " + what + " (" + pct(sum, total) + ")";
  }

  function render() {
    var sel = selected();
    if (chart) { chart.destroy(); chart = null; }
    chartEl.textContent = "";
    shown = buildTree(sel);
    byId("fg-matched").textContent = "";
    if (!shown.tree) {
      var empty = document.createElement("div");
      empty.className = "fg-empty";
      empty.textContent = "No samples match this endpoint and state.";
      chartEl.appendChild(empty);
      return;
    }
    var tip = FG.tooltip.defaultFlamegraphTooltip().text(tooltipText);
    chart = FG.default()
      .width(Math.max(320, chartEl.clientWidth || 960))
      .cellHeight(18)
      .minFrameSize(1)
      .transitionDuration(250)
      .inverted(D.inverted !== false)
      .sort(true)
      .tooltip(tip)
      .setLabelHandler(tooltipText)
      .setDetailsElement(byId("fg-details"))
      .setSearchMatch(function (d, term) {
        return !!term && String(d.data.n).toLowerCase().indexOf(term.toLowerCase()) >= 0;
      })
      .setSearchHandler(onSearch)
      .onClick(tagFrames);
    if (diff) {
      chart.setColorMapper(function (d, original) {
        return d.highlight ? "#E600E6" : changeColour(d.data.b, d.data.k);
      });
    } else if (sel.state === "wait") {
      chart.setColorHue("aqua");
    }
    d3.select(chartEl).datum(shown.tree).call(chart);
    tagFrames();
    search();
  }

  function search() {
    var term = byId("fg-search").value.trim();
    if (!chart) return;
    if (term) chart.search(term); else { chart.clear(); byId("fg-matched").textContent = ""; }
    tagFrames();
  }

  function fillControls() {
    var select = byId("fg-endpoint");
    var all = document.createElement("option");
    all.value = "-1";
    all.textContent = "(all endpoints)";
    select.appendChild(all);
    D.endpoints.forEach(function (label, i) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = label || "(outside requests)";
      select.appendChild(option);
    });
    var initial = D.initial || {};
    select.value = String(initial.endpoint === undefined ? -1 : initial.endpoint);
    var state = byId("fg-state-" + (initial.state || "both"));
    if (state) state.checked = true;
  }

  fillControls();
  byId("fg-endpoint").addEventListener("change", render);
  document.querySelectorAll("input[name=fg-state], input[name=fg-shape]").forEach(function (el) {
    el.addEventListener("change", render);
  });
  byId("fg-search").addEventListener("input", search);
  // the report's "frames in the flame graph" links post the name to search for
  window.addEventListener("message", function (event) {
    var term = event.data && event.data.deskprofSearch;
    if (typeof term === "string") { byId("fg-search").value = term; search(); }
  });
  byId("fg-reset").addEventListener("click", function () {
    byId("fg-search").value = "";
    if (chart) { chart.clear(); chart.resetZoom(); }
    byId("fg-matched").textContent = "";
    tagFrames();
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 200);
  });
  window.deskprofFlame = { render: render, changeColour: changeColour, buildTree: buildTree };
  render();
})();
