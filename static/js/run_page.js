// The run page: draws the run graph and the Gantt timeline from a snapshot, keeps them live over
// the run's websocket (falling back to polling runs:state if the socket drops), swaps task
// panels in without a reload and tails the selected attempt's log.
(function () {
  "use strict";
  const script = document.getElementById("run-page-script");
  const runId = script.dataset.runId;
  const stateUrl = script.dataset.stateUrl;
  const panelUrl = id => script.dataset.panelUrl.replace(/0\/$/, `${id}/`);
  const svgNS = "http://www.w3.org/2000/svg";
  const NODE_W = 190, NODE_H = 54, GAP_X = 60, GAP_Y = 16, PAD = 16, ROWS_PER_COLUMN = 40;
  let selected = script.dataset.selected ? Number(script.dataset.selected) : null;
  let lastEvent = -1, wasFinished = null;

  const el = (name, attrs, parent) => {
    const node = document.createElementNS(svgNS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  };
  const fmt = s => s == null ? "" : s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${Math.floor(s / 60)}m ${Math.round(s % 60)}s` : `${Math.floor(s / 3600)}h ${Math.round(s % 3600 / 60)}m`;

  // Columns by dependency level; a level with more than ROWS_PER_COLUMN tasks wraps into sub-columns.
  function layout(nodes) {
    const byLevel = new Map();
    for (const n of nodes) {
      if (!byLevel.has(n.level)) byLevel.set(n.level, []);
      byLevel.get(n.level).push(n);
    }
    const pos = new Map();
    let x = PAD, maxY = 0;
    for (const level of [...byLevel.keys()].sort((a, b) => a - b)) {
      const column = byLevel.get(level).sort((a, b) => a.row - b.row);
      column.forEach((n, i) => {
        const sub = Math.floor(i / ROWS_PER_COLUMN), row = i % ROWS_PER_COLUMN;
        const y = PAD + row * (NODE_H + GAP_Y);
        pos.set(n.key, {x: x + sub * (NODE_W + GAP_X / 2), y});
        maxY = Math.max(maxY, y + NODE_H);
      });
      x += Math.ceil(column.length / ROWS_PER_COLUMN) * (NODE_W + GAP_X / 2) + GAP_X / 2;
    }
    return {pos, width: x + PAD, height: maxY + PAD};
  }

  function drawGraph(snapshot) {
    const svg = document.getElementById("run-graph");
    const {pos, width, height} = layout(snapshot.nodes);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.replaceChildren();
    const edges = el("g", {}, svg), nodes = el("g", {}, svg);
    for (const n of snapshot.nodes) {
      const to = pos.get(n.key);
      for (const up of n.depends_on) {
        const from = pos.get(up);
        if (!from) continue;
        const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2, mx = (x1 + x2) / 2;
        el("path", {class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`}, edges);
        if (n.outcomes[up]) {
          const t = el("text", {x: mx, y: (y1 + y2) / 2 - 3, "text-anchor": "middle", class: "meta", "font-size": 10}, edges);
          t.textContent = n.outcomes[up];
        }
      }
      const g = el("g", {class: `node state-${n.state}${n.task_run_id === selected ? " selected" : ""}`,
                         transform: `translate(${to.x},${to.y})`, "data-task-key": n.key, "data-state": n.state,
                         "data-task-run-id": n.task_run_id || ""}, nodes);
      el("rect", {class: "box", width: NODE_W, height: NODE_H, rx: 6}, g);
      el("rect", {class: "band", width: 6, height: NODE_H, rx: 3}, g);
      const title = el("title", {}, g);
      title.textContent = `${n.key}: ${n.label}${n.message ? "\n" + n.message : ""}`;
      const name = el("text", {x: 14, y: 20}, g);
      name.textContent = n.key.length > 24 ? n.key.slice(0, 23) + "…" : n.key;
      const meta = el("text", {x: 14, y: 38, class: "meta"}, g);
      const attempts = n.attempts > 1 ? ` · ${n.attempts} attempts` : "";
      meta.textContent = `${n.label}${n.seconds != null ? " · " + fmt(n.seconds) : ""}${attempts}`;
      if (n.for_each) {
        const s = n.for_each, total = Math.max(1, s.total_iterations), w = NODE_W - 24;
        el("rect", {class: "progress-bg", x: 14, y: 44, width: w, height: 5, rx: 2}, g);
        el("rect", {class: "progress-done", x: 14, y: 44, width: w * s.succeeded_iterations / total, height: 5, rx: 2}, g);
        el("rect", {class: "progress-failed", x: 14 + w * s.succeeded_iterations / total, y: 44,
                    width: w * s.failed_iterations / total, height: 5}, g);
        title.textContent += `\n${s.completed_iterations}/${s.total_iterations} iterations done, ${s.failed_iterations} failed`;
      }
      const warnings = (snapshot.warnings || []).filter(w => w.task_key === n.key);
      if (warnings.length) {  // a health rule this task broke: a mark on its node, the words in its title
        g.setAttribute("data-health-warning", warnings.map(w => w.label).join("; "));
        const mark = el("text", {x: NODE_W - 16, y: 20, class: "health-mark", fill: "#bf8700", "font-weight": "bold"}, g);
        mark.textContent = "⚠";
        title.textContent += warnings.map(w => `\n${w.label}${w.reason ? ": " + w.reason : ""}`).join("");
      }
      if (n.task_run_id) g.addEventListener("click", () => selectTask(n.task_run_id));
    }
  }

  // The run's own health warnings, as badges beside its state (the tasks' are on their nodes).
  function drawWarnings(snapshot) {
    const slot = document.getElementById("run-health");
    if (!slot) return;
    slot.replaceChildren(...(snapshot.warnings || []).filter(w => !w.task_key).map(w => {
      const badge = document.createElement("span");
      badge.className = "badge text-bg-warning align-middle fs-6 health-warning ms-1";
      badge.dataset.metric = w.metric;
      badge.title = w.reason;
      badge.textContent = w.label;  // text, never HTML
      return badge;
    }));
  }

  function drawGantt(snapshot) {
    const target = document.getElementById("gantt");
    if (!window.Plotly) return;
    if (!snapshot.attempts.length) { target.innerHTML = '<p class="text-secondary m-3">No task has started yet.</p>'; return; }
    const colors = {success: "#1a7f37", failed: "#cf222e", running: "#0969da", pending: "#8c959f", retrying: "#bf8700",
                    canceled: "#57606a", upstream: "#e16f24", excluded: "#afb8c1", skipped: "#afb8c1", blocked: "#d0d7de"};
    const bars = snapshot.attempts;
    const ms = bars.map(b => new Date(b.end) - new Date(b.start));
    const trace = {
      type: "bar", orientation: "h", base: bars.map(b => b.start), x: ms,
      y: bars.map(b => b.key), marker: {color: bars.map(b => colors[b.state] || "#8c959f")},
      customdata: bars.map(b => [b.attempt + 1, b.task_run_id, b.state]),
      hovertemplate: "%{y} attempt %{customdata[0]}: %{customdata[2]}<extra></extra>",
    };
    const keys = [...new Set(bars.map(b => b.key))];
    const height = Math.max(160, 40 + keys.length * 22);  // the card scrolls past 480 px
    target.style.height = `${height}px`;
    Plotly.react(target, [trace], {
      margin: {l: 120, r: 10, t: 10, b: 30}, barmode: "overlay", height,
      xaxis: {type: "date"}, yaxis: {autorange: "reversed", categoryorder: "array", categoryarray: keys},
    }, {displayModeBar: false, responsive: true});
    if (!target.dataset.bound) {
      target.on("plotly_click", e => selectTask(e.points[0].customdata[1]));
      target.dataset.bound = "1";
    }
  }

  // Big graphs redraw at most once a second, with the newest snapshot.
  let pendingSnapshot = null, drawTimer = null, lastDraw = 0;
  function apply(snapshot) {
    if (snapshot.event_id === lastEvent) return;
    pendingSnapshot = snapshot;
    const wait = snapshot.nodes.length > 200 ? Math.max(0, 1000 - (Date.now() - lastDraw)) : 0;
    if (wait === 0) { clearTimeout(drawTimer); drawTimer = null; render(); }
    else if (drawTimer === null) drawTimer = setTimeout(() => { drawTimer = null; render(); }, wait);
  }

  function render() {
    const snapshot = pendingSnapshot;
    if (!snapshot || snapshot.event_id === lastEvent) return;
    lastDraw = Date.now();
    lastEvent = snapshot.event_id;
    drawGraph(snapshot);
    drawGantt(snapshot);
    drawWarnings(snapshot);
    const badge = document.getElementById("run-state");
    badge.className = `badge badge-state state-${snapshot.state} align-middle fs-6`;
    badge.textContent = snapshot.label;
    document.getElementById("run-duration").textContent = snapshot.seconds == null ? "" : snapshot.seconds.toFixed(1);
    document.getElementById("run-message").textContent = snapshot.message || "";
    const cancel = document.getElementById("cancel-run-form");  // absent for those who may not run the job
    if (cancel) cancel.hidden = snapshot.finished;
    const repair = document.getElementById("repair-run");
    if (wasFinished !== null && wasFinished !== snapshot.finished) refreshServerParts();
    if (repair) repair.hidden = !snapshot.finished;
    wasFinished = snapshot.finished;
    if (selected) refreshPanelIfChanged(snapshot);
  }

  // The root cause, repair choices and repair history are rendered by the server: when the run
  // finishes (or a repair starts) swap the fresh ones in, without reloading the page.
  function refreshServerParts() {
    fetch(location.href, {credentials: "same-origin"}).then(r => r.text()).then(html => {
      const fresh = new DOMParser().parseFromString(html, "text/html");
      for (const id of ["root-cause-slot", "repair-tasks", "repair-history", "run-events", "run-usage"]) {
        const mine = document.getElementById(id), theirs = fresh.getElementById(id);
        if (mine && theirs) mine.innerHTML = theirs.innerHTML;
      }
      if (window.loadLineageFragments) window.loadLineageFragments();  // the lineage card and upstream cause
      if (window.loadNotificationFragments) window.loadNotificationFragments();  // the notifications the ending made
      // A run that just failed opens on the task where the failure started.
      const origin = document.querySelector("#root-cause .root-cause-origin a[href^='?task=']");
      if (origin && !selected) selectTask(origin.getAttribute("href").slice("?task=".length));
    }).catch(() => {});
  }

  // --- the selected task's panel and its live log ------------------------------------------
  let tailTimer = null;

  function selectTask(taskRunId) {
    selected = Number(taskRunId);
    history.replaceState(null, "", `?task=${selected}`);
    document.querySelectorAll("#run-graph .node").forEach(g =>
      g.classList.toggle("selected", Number(g.dataset.taskRunId) === selected));
    loadPanel();
  }

  function loadPanel() {
    return fetch(panelUrl(selected) + "?fragment=1", {credentials: "same-origin"})
      .then(r => r.ok ? r.text() : Promise.reject(r.status))
      .then(html => { document.getElementById("task-panel").innerHTML = html; bindPanel(); })
      .catch(() => {});
  }

  function refreshPanelIfChanged(snapshot) {
    const head = document.getElementById("task-panel-head");
    const node = snapshot.nodes.find(n => n.task_run_id === selected);
    if (!head || !node) return;
    // A finished attempt's panel has its final output: reload it once when the state moves on.
    const shown = document.getElementById("task-state");
    if (shown && shown.textContent.trim() !== node.label) loadPanel();
  }

  function bindPanel() {
    const panel = document.getElementById("task-panel");
    panel.querySelectorAll("a[data-task-run-id]").forEach(a => a.addEventListener("click", e => {
      e.preventDefault();
      selectTask(a.dataset.taskRunId);
    }));
    clearTimeout(tailTimer);
    const log = document.getElementById("task-log");
    const head = document.getElementById("task-panel-head");
    if (log && head && head.dataset.finished === "0") tail(log);
    if (log) log.scrollTop = log.scrollHeight;
  }

  function tail(log) {
    fetch(`${log.dataset.logUrl}?offset=${log.dataset.offset}`, {credentials: "same-origin"})
      .then(r => r.json())
      .then(chunk => {
        if (!document.body.contains(log)) return;
        if (chunk.text) {
          const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
          log.appendChild(document.createTextNode(chunk.text));  // text, never HTML
          if (atBottom) log.scrollTop = log.scrollHeight;
        }
        log.dataset.offset = chunk.offset;
        if (!chunk.finished) tailTimer = setTimeout(() => tail(log), 1000);
      })
      .catch(() => { tailTimer = setTimeout(() => tail(log), 3000); });
  }

  // --- live updates: websocket first, polling when it drops ---------------------------------
  const dot = document.getElementById("live-dot"), text = document.getElementById("live-text");
  let pollTimer = null, retries = 0;

  function setLive(mode) {
    dot.className = `live-dot ${mode === "socket" ? "on" : mode === "polling" ? "polling" : ""}`;
    text.textContent = mode === "socket" ? "live" : mode === "polling" ? "live (polling)" : "offline";
    document.body.dataset.live = mode;
  }

  function poll() {
    fetch(stateUrl, {credentials: "same-origin"}).then(r => r.json()).then(apply).catch(() => {})
      .finally(() => { pollTimer = setTimeout(poll, 1000); });
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try { socket = new WebSocket(`${scheme}://${location.host}/ws/runs/${runId}/`); } catch (e) { startPolling(); return; }
    socket.onopen = () => { retries = 0; clearTimeout(pollTimer); pollTimer = null; setLive("socket"); };
    socket.onmessage = e => apply(JSON.parse(e.data));
    socket.onclose = () => {
      startPolling();
      retries += 1;
      setTimeout(connect, Math.min(30000, 1000 * 2 ** retries));  // keep trying to get the socket back
    };
  }

  function startPolling() {
    if (pollTimer === null) { setLive("polling"); poll(); }
  }

  apply(JSON.parse(document.getElementById("run-snapshot").textContent));
  bindPanel();
  connect();
})();
