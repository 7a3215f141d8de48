// The job page's run-duration trend: one bar per finished run (oldest left), failures in red;
// clicking a bar opens that run.
(function () {
  const points = JSON.parse(document.getElementById("duration-data").textContent);
  const el = document.getElementById("duration-chart");
  if (!points.length) { el.innerHTML = '<p class="text-secondary m-3">No finished runs yet.</p>'; return; }
  const label = p => `#${p.run_id}`;
  const bars = (rows, name, color) => ({
    type: "bar", name, x: rows.map(label), y: rows.map(p => p.seconds), customdata: rows.map(p => [p.run_id, p.at]),
    marker: {color}, hovertemplate: "run %{customdata[0]}<br>%{customdata[1]}<br>%{y:.2f} s<extra>" + name + "</extra>",
  });
  Plotly.newPlot(el, [bars(points.filter(p => !p.failed), "succeeded", "#1a7f37"),
                      bars(points.filter(p => p.failed), "failed", "#cf222e")], {
    margin: {l: 50, r: 10, t: 10, b: 40}, barmode: "overlay", bargap: 0.25,
    xaxis: {type: "category", categoryorder: "array", categoryarray: points.map(label), title: {text: "run"}},
    yaxis: {title: {text: "seconds"}, rangemode: "tozero"}, legend: {orientation: "h", y: 1.12},
  }, {displayModeBar: false, responsive: true});
  el.on("plotly_click", e => {
    const id = e.points[0].customdata[0];
    if (id) window.location = `${window.location.pathname.replace(/\/$/, "")}/runs/${id}/`;
  });
})();
