// Backfill fragments: the job page's Backfills card and a backfill page's status part. Each
// [data-backfill-url] slot is filled from the backfills app by URL (the jobs and runs apps never
// import it) and fetched again while what it shows says it still runs ([data-backfill-live]).
(function () {
  "use strict";
  const EVERY_MS = 1500;

  function fill(slot) {
    fetch(slot.dataset.backfillUrl, {credentials: "same-origin"})
      .then(r => r.ok ? r.text() : Promise.reject(r.status))
      .then(html => {
        if (!document.body.contains(slot)) return;
        slot.innerHTML = html;  // rendered and escaped by the server
        follow(slot);
      })
      .catch(() => { slot.innerHTML = '<p class="small text-secondary m-2">Backfills could not be loaded.</p>'; });
  }

  function follow(slot) {
    const live = slot.querySelector("[data-backfill-live]") !== null;
    slot.dataset.loaded = live ? "live" : "done";
    if (live) setTimeout(() => fill(slot), EVERY_MS);
  }

  document.querySelectorAll("[data-backfill-url]").forEach(slot => {
    // A slot the server rendered already is followed; an empty one ("Loading…") is fetched now.
    if (slot.querySelector("[data-backfill-live], #backfill-status")) follow(slot); else fill(slot);
  });
})();
