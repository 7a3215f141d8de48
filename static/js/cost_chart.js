// The job page's cost trend: the cost of each recent finished run whose usage was measured
// (oldest left), failures in red, its CPU time in the hover; clicking a bar opens that run.
(function () {
  const data = JSON.parse(document.getElementById("cost-data").textContent);
  const points = data.runs;
  const el = document.getElementById("cost-chart");
  if (!points.length) { el.innerHTML = '<p class="text-secondary m-3">No finished run with a measured cost yet.</p>'; return; }
  const currency = data.currency.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const label = p => `#${p.run_id}`;
  const bars = (rows, name, color) => ({
    type: "bar", name, x: rows.map(label), y: rows.map(p => p.cost),
    customdata: rows.map(p => [p.run_id, p.at, p.cpu_seconds === null ? "not measured" : p.cpu_seconds.toFixed(2) + " s"]),
    marker: {color},
    hovertemplate: "run %{customdata[0]}<br>%{customdata[1]}<br>%{y:.6f} " + currency + "<br>CPU %{customdata[2]}<extra>" + name + "</extra>",
  });
  Plotly.newPlot(el, [bars(points.filter(p => !p.failed), "succeeded", "#1a7f37"),
                      bars(points.filter(p => p.failed), "failed", "#cf222e")], {
    margin: {l: 70, r: 10, t: 10, b: 40}, barmode: "overlay", bargap: 0.25,
    xaxis: {type: "category", categoryorder: "array", categoryarray: points.map(label), title: {text: "run"}},
    yaxis: {title: {text: currency}, rangemode: "tozero", exponentformat: "none"}, legend: {orientation: "h", y: 1.12},
  }, {displayModeBar: false, responsive: true});
  el.on("plotly_click", e => {
    const id = e.points[0].customdata[0];
    if (id) window.location = `${window.location.pathname.replace(/\/$/, "")}/runs/${id}/`;
  });
})();
