// Theseus's own front-end glue: drag-and-drop sorting and the live-sync status.
(function () {
  "use strict";

  // Every list with class "sortable" gets SortableJS; dropping fires "end", which htmx posts.
  htmx.onLoad(function (content) {
    var lists = content.querySelectorAll ? content.querySelectorAll(".sortable") : [];
    if (content.classList && content.classList.contains("sortable")) lists = [content];
    lists.forEach(function (list) {
      if (list.sortable) return;
      list.sortable = new Sortable(list, {
        animation: 150,
        handle: ".handle",
        ghostClass: "dragging",
        onEnd: function () { list.dispatchEvent(new Event("end", { bubbles: true })); }
      });
    });
  });

  // An add form empties itself once its item was added.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form.matches && form.matches("form.add-form")) form.reset();
  });

  // Show whether this tab is connected to the live-sync stream.
  function setLive(state) { document.body.dataset.live = state; }
  document.body.addEventListener("htmx:sseOpen", function () { setLive("open"); });
  document.body.addEventListener("htmx:sseError", function () { setLive("reconnecting"); });
})();
