/* The notification destinations pages: copy a destination's id, and show only the fields of the
   chosen type in the form (groups marked data-when-field / data-when-value). */
(() => {
  "use strict";
  document.querySelectorAll("button.copy-id").forEach((button) => {
    button.addEventListener("click", () => {
      if (navigator.clipboard) {  // secure contexts only (https, localhost)
        navigator.clipboard.writeText(button.dataset.copy).then(() => { button.textContent = "Copied"; });
      } else {  // select the id, for the user to copy
        window.getSelection().selectAllChildren(button.previousElementSibling);
      }
    });
  });
  const form = document.getElementById("destination-form");
  if (!form) return;
  function applyConditions() {
    form.querySelectorAll("[data-when-field]").forEach((group) => {
      const control = form.querySelector(`[name="${group.dataset.whenField}"]`);
      group.hidden = !control || !group.dataset.whenValue.split(" ").includes(control.value);
    });
  }
  form.addEventListener("change", applyConditions);
  applyConditions();
})();
