// The Query history page: Ctrl+Enter runs the query; a table's name in the list starts a query of it.
(function () {
  const form = document.getElementById("query-form");
  const text = document.getElementById("query-text");
  if (!form || !text) return;
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.querySelectorAll("a.query-table").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      text.value = `SELECT *\nFROM ${link.dataset.table}\nLIMIT 100`;
      text.focus();
    });
  });
})();
