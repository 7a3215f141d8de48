// The repair dialog's preview: what the repair would run again, from the server's own plan
// (runs/repair with dry_run, the same engine function as the repair), before anything changes.
(function () {
  const button = document.getElementById("repair-preview-button");
  if (!button) return;
  const out = document.getElementById("repair-preview");

  function csrfToken() {
    const found = document.cookie.split("; ").find(c => c.startsWith("csrftoken="));
    return found ? decodeURIComponent(found.split("=")[1]) : "";
  }

  function show(lines) {
    out.replaceChildren(...lines.map(text => { const p = document.createElement("div"); p.textContent = text; return p; }));
    out.hidden = false;
  }

  button.addEventListener("click", () => {
    const keys = [...document.querySelectorAll('#repair-tasks input[name="rerun_tasks"]:checked')].map(i => i.value);
    const body = {run_id: Number(button.dataset.runId), dry_run: true};
    if (keys.length) body.rerun_tasks = keys; else body.rerun_all_failed_tasks = true;
    if (button.dataset.latestRepairId) body.latest_repair_id = Number(button.dataset.latestRepairId);
    fetch("/api/2.2/jobs/runs/repair", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()}, body: JSON.stringify(body),
    }).then(r => r.json()).then(answer => {
      if (answer.error_code) { show([`The repair would be refused: ${answer.message}`]); return; }
      const lines = [`Runs again: ${answer.rerun_tasks.join(", ")}`];
      for (const [key, indexes] of Object.entries(answer.rerun_iterations || {})) {
        lines.push(`${key}: iterations ${indexes.length ? indexes.join(", ") : "none"} (the others succeeded and are kept)`);
      }
      show(lines);
    }).catch(error => show([`No preview: ${error}`]));
  });
})();
