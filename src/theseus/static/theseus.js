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

  // Chat: Enter sends (Shift+Enter makes a new line); the log follows the newest message;
  // code blocks get a copy button.
  document.body.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key === "Enter" && !event.shiftKey && box.matches("#chat-form textarea")) {
      event.preventDefault();
      if (box.value.trim()) box.form.requestSubmit();
    }
  });
  function followChat() {
    var log = document.getElementById("chat-log");
    if (log) log.scrollTop = log.scrollHeight;
  }
  document.body.addEventListener("htmx:wsAfterMessage", followChat);
  htmx.onLoad(function (content) {
    followChat();
    var blocks = content.querySelectorAll ? content.querySelectorAll(".code-block") : [];
    blocks.forEach(function (block) {
      if (block.querySelector("button.copy")) return;
      var button = document.createElement("button");
      button.className = "copy outline";
      button.type = "button";
      button.textContent = "Copy";
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(block.querySelector("code").innerText).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        });
      });
      block.appendChild(button);
    });
  });
  document.body.addEventListener("htmx:wsAfterMessage", function () {
    var box = document.querySelector("#chat-form textarea");
    if (box && !box.disabled && document.activeElement === document.body) box.focus();
  });

  // "Copy log": the whole server.log to the clipboard, ready to paste into a prompt.
  document.body.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy-log");
    if (!button) return;
    fetch("/log").then(function (r) { return r.text(); })
      .then(function (text) { return navigator.clipboard.writeText(text); })
      .then(function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy log"; }, 1500); })
      .catch(function () { button.textContent = "Copy failed"; });
  });

  // Show whether this tab is connected to the live-sync stream.
  function setLive(state) { document.body.dataset.live = state; }
  document.body.addEventListener("htmx:sseOpen", function () { setLive("open"); });
  document.body.addEventListener("htmx:sseError", function () { setLive("reconnecting"); });
})();
