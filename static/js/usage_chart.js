// The Usage page's trend: cost per day (per hour for short ranges) of the top jobs by cost, one
// line each; a gap where a job ran without a measured cost. Clicking a point opens the job
// (unless it is deleted or a one-time submit run's).
(function () {
  const trend = JSON.parse(document.getElementById("usage-trend").textContent);
  const el = document.getElementById("usage-chart");
  if (!trend.traces.length) { el.innerHTML = '<p class="text-secondary m-3">No measured cost in this range.</p>'; return; }
  // plotly reads a few tags in names: a job's name is text, so its markup shows as typed.
  const text = s => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const traces = trend.traces.map(t => ({
    type: "scatter", mode: "lines+markers", name: text(t.name), x: trend.buckets, y: t.cost,
    customdata: trend.buckets.map(() => t.url), connectgaps: false,
    hovertemplate: "%{x}<br>%{y:.6f} " + text(trend.currency) + "<extra>%{fullData.name}</extra>",
  }));
  Plotly.newPlot(el, traces, {
    margin: {l: 70, r: 10, t: 10, b: 50},
    xaxis: {type: "date", title: {text: trend.hourly ? "hour (UTC)" : "day (UTC)"}},
    yaxis: {title: {text: text(trend.currency)}, rangemode: "tozero", exponentformat: "none"}, showlegend: true, legend: {orientation: "h", y: 1.15},
  }, {displayModeBar: false, responsive: true});
  el.on("plotly_click", e => { if (e.points[0].customdata) window.location = e.points[0].customdata; });
})();
