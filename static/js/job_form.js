/* The job form (templates/jobs/edit.html): task cards that can be added, removed and reordered,
   the fields of the chosen task type and trigger, a task-graph preview drawn as SVG, and a note
   on a destination picker with too many chosen.
   The server validates everything; the warnings here only help while typing. */
(() => {
  "use strict";
  const form = document.getElementById("job-form");
  if (!form) return;
  const list = document.getElementById("task-list");
  const template = document.getElementById("task-template");
  const total = form.querySelector('input[name="tasks-TOTAL_FORMS"]');
  const preview = document.getElementById("dag-preview");
  const notes = document.getElementById("dag-notes");
  const INDEXED = /tasks-(\d+|__prefix__)-/g;
  const SVG = "http://www.w3.org/2000/svg";
  const NODE = { width: 136, height: 40, gapX: 14, gapY: 34, pad: 10, loop: 36 };
  const TYPE_LABELS = {
    notebook_task: "notebook", spark_python_task: "python script", python_wheel_task: "python wheel",
    sql_task: "sql", shell_command_task: "shell", condition_task: "if/else", for_each_task: "for each",
    run_job_task: "run job",
  };

  const cards = () => Array.from(list.querySelectorAll(":scope > .task-card"));
  const field = (card, name) => card.querySelector(`[name$="-${name}"]`);

  // Django reads the formset by index: after every add, remove or move, number the cards in order.
  function renumber() {
    cards().forEach((card, i) => {
      card.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach((el) => {
        for (const attr of ["name", "id", "for", "aria-describedby"]) {
          const value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(INDEXED, `tasks-${i}-`));
        }
      });
    });
    total.value = cards().length;
  }

  // Groups marked data-when-field show only while that field (in the same task card, or the job
  // form) has one of the values in data-when-value.
  function applyConditions() {
    form.querySelectorAll("[data-when-field]").forEach((group) => {
      const home = group.closest(".task-card") || form;
      const name = group.dataset.whenField;
      const control = home.querySelector(`[name="${name}"], [name$="-${name}"]`);
      group.hidden = !control || !group.dataset.whenValue.split(" ").includes(control.value);
    });
  }

  function updateHeaders(tasks) {
    tasks.forEach((task, i) => {
      task.card.querySelector(".task-number").textContent = `Task ${i + 1}`;
      task.card.querySelector(".task-title").textContent = task.key;
      task.card.querySelector('[data-task-action="up"]').disabled = i === 0;
      task.card.querySelector('[data-task-action="down"]').disabled = i === tasks.length - 1;
    });
    document.getElementById("task-count").textContent = `${tasks.length} task${tasks.length === 1 ? "" : "s"}`;
  }

  // Read as the server's DependsOnField does: "a, check:true".
  function parseDependencies(text) {
    return text.split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
      const at = part.indexOf(":");
      return at < 0 ? { key: part } : { key: part.slice(0, at).trim(), outcome: part.slice(at + 1).trim() };
    });
  }

  function readTasks() {
    return cards().map((card) => ({
      card,
      key: field(card, "task_key").value.trim(),
      type: field(card, "task_type").value,
      deps: parseDependencies(field(card, "depends_on").value),
    }));
  }

  // Buttons under "Depends on" that add or remove another task (and a branch of an if/else).
  function updateDependencyPicks(tasks) {
    const choices = [];
    tasks.forEach((t) => {
      if (!t.key || choices.some((c) => c.key === t.key)) return;
      if (t.type === "condition_task") choices.push({ key: t.key, outcome: "true" }, { key: t.key, outcome: "false" });
      else choices.push({ key: t.key });
    });
    tasks.forEach((task) => {
      const input = field(task.card, "depends_on");
      let picks = task.card.querySelector(".dependency-picks");
      if (!picks) {
        picks = document.createElement("div");
        picks.className = "dependency-picks";
        input.insertAdjacentElement("afterend", picks);
      }
      picks.replaceChildren(...choices.filter((c) => c.key !== task.key).map((choice) => {
        const label = choice.outcome ? `${choice.key}:${choice.outcome}` : choice.key;
        const chosen = task.deps.some((d) => d.key === choice.key && (d.outcome || "") === (choice.outcome || ""));
        const button = document.createElement("button");
        button.type = "button";
        button.className = `btn btn-sm ${chosen ? "btn-secondary" : "btn-outline-secondary"}`;
        button.textContent = `${chosen ? "−" : "+"} ${label}`;
        button.setAttribute("aria-pressed", String(chosen));
        button.title = chosen ? `No longer depend on ${label}` : `Depend on ${label}`;
        button.addEventListener("click", () => {
          const kept = task.deps.filter((d) => d.key !== choice.key);
          const next = chosen ? kept : [...kept, choice];
          input.value = next.map((d) => (d.outcome ? `${d.key}:${d.outcome}` : d.key)).join(", ");
          input.dispatchEvent(new Event("input", { bubbles: true }));
        });
        return button;
      }));
    });
  }

  // Rows by dependency level (the longest chain above a task). When every task left waits on a
  // cycle, the cycle is noted and its first task is placed as if the edge closing it were not
  // there, so a graph with cycles is still drawn in levels, its back edges in red.
  function levels(tasks) {
    const byKey = new Map();
    tasks.forEach((t) => { if (t.key && !byKey.has(t.key)) byKey.set(t.key, t); });
    const parents = new Map(tasks.map((t) => [t, [...new Set(t.deps.map((d) => byKey.get(d.key)))]
      .filter((p) => p && p !== t)]));
    const children = new Map(tasks.map((t) => [t, []]));
    parents.forEach((ps, t) => ps.forEach((p) => children.get(p).push(t)));
    const waiting = new Map(tasks.map((t) => [t, parents.get(t).length]));
    const level = new Map();
    const order = [];
    const cycles = [];
    const place = (t) => {
      level.set(t, Math.max(-1, ...parents.get(t).filter((p) => level.has(p)).map((p) => level.get(p))) + 1);
      order.push(t);
    };
    tasks.filter((t) => waiting.get(t) === 0).forEach(place);
    for (let i = 0; i < tasks.length; i++) {
      if (i === order.length) {
        const cycle = findCycle(tasks.filter((t) => !level.has(t)), parents);
        cycles.push(cycle);
        place(tasks.find((t) => cycle.includes(t)));
      }
      for (const child of children.get(order[i])) {
        waiting.set(child, waiting.get(child) - 1);
        if (waiting.get(child) === 0 && !level.has(child)) place(child);
      }
    }
    return { byKey, level, cycles };
  }

  // Every task in `waiting` has a parent in it, so walking up parents must come back to one.
  function findCycle(waiting, parents) {
    const path = [waiting[0]];
    for (;;) {
      const next = parents.get(path[path.length - 1]).find((p) => waiting.includes(p));
      const seen = path.indexOf(next);
      if (seen >= 0) return [...path.slice(seen), next];
      path.push(next);
    }
  }

  function svg(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    Object.entries(attrs).forEach(([key, value]) => el.setAttribute(key, value));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function draw(tasks) {
    const { byKey, level, cycles } = levels(tasks);
    const onCycle = new Set(cycles.flat());
    const rows = [];
    tasks.forEach((t) => (rows[level.get(t)] ||= []).push(t));
    const at = new Map();
    rows.forEach((row, r) => row.forEach((t, c) => at.set(t, {
      x: NODE.pad + c * (NODE.width + NODE.gapX), y: NODE.pad + r * (NODE.height + NODE.gapY) })));
    const columns = Math.max(0, ...rows.map((row) => row.length));
    const width = NODE.pad * 2 + columns * (NODE.width + NODE.gapX) - NODE.gapX + (cycles.length ? NODE.loop : 0);
    const height = NODE.pad * 2 + rows.length * (NODE.height + NODE.gapY) - NODE.gapY;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "Task graph preview" });
    const marker = svg("marker", { id: "dag-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4,
      markerWidth: 7, markerHeight: 7, orient: "auto" });
    marker.append(svg("path", { d: "M0,0 L8,4 L0,8 z", class: "dag-arrow" }));
    const defs = svg("defs", {});
    defs.append(marker);
    root.append(defs);

    tasks.forEach((task) => task.deps.forEach((dep) => {
      const parent = byKey.get(dep.key);
      if (!parent || parent === task) return;
      const a = at.get(parent), b = at.get(task);
      let d, x, y;
      if (level.get(parent) < level.get(task)) {  // down from the parent's bottom to the child's top
        const x1 = a.x + NODE.width / 2, y1 = a.y + NODE.height, x2 = b.x + NODE.width / 2, y2 = b.y;
        const bend = Math.max(18, (y2 - y1) / 2);
        d = `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`;
        [x, y] = [(x1 + x2) / 2 + 4, (y1 + y2) / 2 + 3];
      } else {  // the edge that closes a cycle: back up along the right-hand side
        const x1 = a.x + NODE.width, y1 = a.y + NODE.height / 2, x2 = b.x + NODE.width, y2 = b.y + NODE.height / 2;
        const out = Math.max(x1, x2) + NODE.loop;
        d = `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2},${y2}`;
        [x, y] = [out - 8, (y1 + y2) / 2];
      }
      const back = onCycle.has(task) && onCycle.has(parent);
      root.append(svg("path", { d, class: `dag-edge${back ? " on-cycle" : ""}`, "marker-end": "url(#dag-arrow)" }));
      if (dep.outcome) root.append(svg("text", { x, y, class: "dag-outcome" }, dep.outcome));
    }));

    tasks.forEach((task, i) => {
      const { x, y } = at.get(task);
      const node = svg("g", { class: `dag-node${onCycle.has(task) ? " on-cycle" : ""}`, tabindex: 0,
        transform: `translate(${x},${y})` });
      const name = task.key || `Task ${i + 1}`;
      node.append(
        svg("title", {}, name),
        svg("rect", { width: NODE.width, height: NODE.height, rx: 6 }),
        svg("text", { x: 10, y: 17, class: `dag-key${task.key ? "" : " unnamed"}` },
          name.length > 19 ? `${name.slice(0, 18)}…` : name),
        svg("text", { x: 10, y: 31, class: "dag-kind" }, TYPE_LABELS[task.type] || task.type));
      const open = () => {
        task.card.scrollIntoView({ behavior: "smooth", block: "start" });
        field(task.card, "task_key").focus({ preventScroll: true });
      };
      node.addEventListener("click", open);
      node.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
      root.append(node);
    });
    preview.replaceChildren(tasks.length ? root : document.createTextNode("No tasks yet: Add task starts one."));
    writeNotes(tasks, byKey, cycles);
  }

  function writeNotes(tasks, byKey, cycles) {
    const problems = cycles.map((cycle) => `Dependency cycle ${cycle.map((t) => t.key).join(" → ")}`);
    const hints = [];
    const seen = new Set();
    tasks.forEach((task, i) => {
      const name = task.key || `Task ${i + 1}`;
      if (!task.key) hints.push(`Task ${i + 1} has no name yet.`);
      else if (seen.has(task.key)) problems.push(`Two tasks are named ${task.key}.`);
      seen.add(task.key);
      task.deps.forEach((dep) => {
        if (dep.key === task.key) problems.push(`${name} depends on itself.`);
        else if (!byKey.has(dep.key)) problems.push(`${name} depends on ${dep.key}, which is not a task of this job.`);
      });
    });
    const item = (text, css) => {
      const li = document.createElement("li");
      li.className = css;
      li.textContent = text;
      return li;
    };
    notes.replaceChildren(...problems.map((text) => item(text, "text-danger")),
      ...hints.map((text) => item(text, "text-secondary")));
  }

  // A destination picker holds at most data-max-chosen (the server refuses more, on save).
  function checkDestinationCounts() {
    form.querySelectorAll("select[data-max-chosen]").forEach((select) => {
      const max = Number(select.dataset.maxChosen);
      const tooMany = select.selectedOptions.length > max;
      let note = select.parentElement.querySelector(".too-many-destinations");
      if (tooMany && !note) {
        note = document.createElement("div");
        note.className = "too-many-destinations invalid-feedback d-block";
        select.insertAdjacentElement("afterend", note);
      }
      if (note) note.textContent = tooMany ? `At most ${max} destinations per event.` : "";
    });
  }

  function refresh() {
    applyConditions();
    checkDestinationCounts();
    const tasks = readTasks();
    updateHeaders(tasks);
    updateDependencyPicks(tasks);
    draw(tasks);
  }

  let pending = false;
  function refreshSoon() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; refresh(); });
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest("[data-task-action]");
    if (!button) return;
    const card = button.closest(".task-card");
    const action = button.dataset.taskAction;
    if (action === "remove") card.remove();
    else if (action === "up" && card.previousElementSibling) list.insertBefore(card, card.previousElementSibling);
    else if (action === "down" && card.nextElementSibling) list.insertBefore(card.nextElementSibling, card);
    renumber();
    refresh();
    if (action !== "remove" && !button.disabled) button.focus();
  });

  document.getElementById("add-task").addEventListener("click", () => {
    list.insertAdjacentHTML("beforeend", template.innerHTML.replace(INDEXED, `tasks-${cards().length}-`));
    renumber();
    refresh();
    const card = cards()[cards().length - 1];
    card.scrollIntoView({ behavior: "smooth", block: "center" });
    field(card, "task_key").focus({ preventScroll: true });
  });

  form.addEventListener("input", refreshSoon);
  form.addEventListener("change", refreshSoon);
  renumber();
  refresh();
})();
