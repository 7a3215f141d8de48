// Notification fragments on the run, job and jobs pages: each [data-notifications-url] slot is
// filled from the notifications app by URL (the runs and jobs apps never import it). A fragment
// that says it may still change ([data-notifications-live]: a notification not yet sent or given
// up, a run still running) is fetched again, less and less often, until it says it is final.
// A slot left empty (the jobs list's summary when nothing failed) stays hidden.
(function () {
  "use strict";
  const FIRST_MS = 2000, MAX_MS = 15000;

  let generation = 0;  // a fresh load ends the refreshes of the one before
  const shown = new WeakMap();  // slot -> the html it shows: an unchanged answer is not swapped in

  function fill(slot, wait, mine) {
    fetch(slot.dataset.notificationsUrl, {credentials: "same-origin"})
      .then(r => r.ok ? r.text() : Promise.reject(r.status))
      .then(html => {
        if (!document.body.contains(slot) || mine !== generation) return;
        if (shown.get(slot) !== html) {
          // Keep the answers someone expanded open across refreshes.
          const open = [...slot.querySelectorAll("details[open]")].map(d => d.closest("[data-notification-id]"))
            .filter(Boolean).map(row => row.dataset.notificationId);
          slot.innerHTML = html;  // rendered and escaped by the server
          shown.set(slot, html);
          for (const id of open) {
            slot.querySelectorAll(`[data-notification-id="${id}"] details`).forEach(d => { d.open = true; });
          }
        }
        slot.hidden = html.trim() === "" && slot.hasAttribute("data-hide-when-empty");
        const live = slot.querySelector("[data-notifications-live]") !== null;
        slot.dataset.loaded = live ? "live" : "done";
        if (live) setTimeout(() => fill(slot, Math.min(MAX_MS, wait * 1.5), mine), wait);
      })
      .catch(() => {
        if (!slot.hasAttribute("data-hide-when-empty")) {
          slot.innerHTML = '<p class="small text-secondary m-2">Notifications could not be loaded.</p>';
        }
      });
  }

  // The run page calls this again when the run ends or a repair starts (runs/run_page.js).
  window.loadNotificationFragments = () => {
    generation += 1;
    document.querySelectorAll("[data-notifications-url]").forEach(slot => fill(slot, FIRST_MS, generation));
  };
  window.loadNotificationFragments();
})();
