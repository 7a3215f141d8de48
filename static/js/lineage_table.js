// A table page's row counts over time: one point per write that reported them; clicking a point
// opens its run.
(function () {
  const points = JSON.parse(document.getElementById("row-count-data").textContent);
  const el = document.getElementById("row-count-chart");
  if (!el || !points.length || !window.Plotly) return;
  Plotly.newPlot(el, [{
    type: "scatter", mode: "lines+markers", x: points.map(p => p.at), y: points.map(p => p.rows),
    customdata: points.map(p => p.run_id), line: {color: "#0969da"},
    hovertemplate: "%{y} rows<br>%{x}<br>run %{customdata}<extra></extra>",
  }], {margin: {l: 50, r: 10, t: 10, b: 30}, xaxis: {type: "date"}, yaxis: {rangemode: "tozero", title: {text: "rows"}}},
  {displayModeBar: false, responsive: true});
  el.on("plotly_click", e => { window.location = `/runs/${e.points[0].customdata}/`; });
})();
