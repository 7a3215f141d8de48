// Lineage fragments on the run and job pages (their Lineage cards, the run's upstream root
// cause): each [data-lineage-url] slot is filled from the lineage app by URL, so those pages never
// wait for it. A fragment that says its lineage is still being captured is fetched again, a while.
(function () {
  "use strict";
  const RETRY_MS = 1500, RETRIES = 40;

  let generation = 0;  // a fresh load ends the retries of the one before

  function fill(slot, tries, mine) {
    fetch(slot.dataset.lineageUrl, {credentials: "same-origin"})
      .then(r => r.ok ? r.text() : Promise.reject(r.status))
      .then(html => {
        if (!document.body.contains(slot) || mine !== generation) return;
        slot.innerHTML = html;  // rendered and escaped by the server
        const pending = slot.querySelector("[data-lineage-pending]") !== null;
        slot.dataset.loaded = pending ? "pending" : "done";
        if (pending && tries < RETRIES) setTimeout(() => fill(slot, tries + 1, mine), RETRY_MS);
      })
      .catch(() => { slot.innerHTML = '<p class="small text-secondary m-2">Lineage could not be loaded.</p>'; });
  }

  // The run page calls this again when it swaps in a fresh root cause.
  window.loadLineageFragments = () => {
    generation += 1;
    document.querySelectorAll("[data-lineage-url]").forEach(slot => fill(slot, 0, generation));
  };
  window.loadLineageFragments();
})();
