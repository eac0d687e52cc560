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

  // Live updates reach a tab by two roads: its own changes in the HTTP response, everyone else's
  // over SSE, and one can overtake the other. Each batch carries its event id (its place in commit
  // order), so a row never goes back to an older version. And an inline edit in progress is not
  // replaced by a live update of its row (typing stays, Save applies it, Escape shows the newest);
  // a deletion still removes it.
  var seen = {}, batch = null;  // row id -> newest event id shown; the event id of the batch being swapped
  document.body.addEventListener("htmx:sseBeforeMessage", function (event) {
    batch = Number(event.detail.lastEventId) || null;
  });
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    batch = Number(xhr && xhr.getResponseHeader("X-Theseus-Event")) || null;
  });
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var row = event.detail.elt.closest && event.detail.elt.closest("li.editing");
    if (row) row.dataset.saving = "true";
  });
  function rowsIn(fragment) {
    if (fragment.matches && fragment.matches("li[id]")) return [fragment];
    return fragment.querySelectorAll ? Array.prototype.slice.call(fragment.querySelectorAll("li[id]")) : [];
  }
  function replacesItself(target, fragment) {
    var root = fragment instanceof DocumentFragment ? fragment.firstElementChild : null;
    return !!root && root.id === target.id;
  }
  // A conversation shown on its page (/chat/{id}) that is not the current one takes no live messages and
  // keeps its own bar, until a whole chat log replaces it (Continue, a switch, a new conversation).
  function keepsPreview(target, fragment) {
    var log = document.querySelector("#chat-log[data-preview]");
    if (!log) return false;
    if (target === log) return !replacesItself(target, fragment);
    var isBar = target.id === "conversation-bar" && fragment instanceof DocumentFragment;
    var bar = isBar ? fragment.firstElementChild : null;
    return !!bar && bar.dataset.conversation !== log.dataset.conversation;
  }
  function editing(el) { return !!el && el.matches("li.editing") && !el.dataset.saving; }
  function older(id) { return batch !== null && (seen[id] || 0) > batch; }
  document.body.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target, fragment = event.detail.fragment;
    if (!fragment || !target.matches) return;
    if (keepsPreview(target, fragment)) {
      event.detail.shouldSwap = false;
      return;
    }
    var rows = rowsIn(fragment);
    if (target.matches("li[id]")) {  // one row: replaced or deleted
      var replaced = rows.some(function (row) { return row.matches("li.item"); });
      if (older(target.id) || (replaced && editing(target))) event.detail.shouldSwap = false;
      else if (batch !== null) seen[target.id] = batch;
      return;
    }
    var whole = replacesItself(target, fragment);  // the list re-rendered (not rows appended to it)
    rows.forEach(function (row) {
      var current = document.getElementById(row.id);
      if (older(row.id) || editing(current)) {
        if (current && whole) row.replaceWith(current.cloneNode(true));  // keeps the newer row, or the typing
        else row.remove();
      } else if (batch !== null) {
        seen[row.id] = batch;
      }
    });
  });

  // Escape in an inline edit cancels it: the row shows as stored. (Done here because an htmx
  // trigger filter such as keyup[key=='Escape'] needs eval, which is off: it fired on every key.)
  document.body.addEventListener("keydown", function (event) {
    var row = event.key === "Escape" && event.target.closest && event.target.closest("li.editing");
    var cancel = row && row.querySelector("button.cancel");
    if (cancel) { event.preventDefault(); cancel.click(); }
  });

  // An add form empties itself once its item was added.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form.matches && form.matches("form.add-form")) form.reset();
  });

  // Chat: Enter sends (Shift+Enter makes a new line); the log follows a streaming reply only while
  // the reader is at its bottom (scrolled up to read, it stays put); code blocks get a copy button.
  document.body.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key === "Enter" && !event.shiftKey && box.matches("#chat-form textarea")) {
      event.preventDefault();
      if (box.value.trim()) box.form.requestSubmit();
    }
  });
  var AT_BOTTOM = 48;  // pixels from the bottom that still count as "at the bottom"
  var following = true;
  function chatLog() { return document.getElementById("chat-log"); }
  function atBottom(log) { return log.scrollHeight - log.scrollTop - log.clientHeight <= AT_BOTTOM; }
  function followChat() {
    var log = chatLog();
    if (log && following) log.scrollTop = log.scrollHeight;
  }
  document.body.addEventListener("htmx:wsBeforeMessage", function () {
    var log = chatLog();
    following = !log || atBottom(log);
  });
  document.body.addEventListener("htmx:wsAfterMessage", followChat);
  document.body.addEventListener("submit", function (event) {  // your own message: show it, and what follows
    if (event.target.closest && event.target.closest("#chat-form")) following = true;
  }, true);
  function flash(button, text, back) {
    button.textContent = text;
    setTimeout(function () { button.textContent = back; }, 1500);
  }
  function copyCode(block, button) {
    var text = block.querySelector("code").textContent;  // line numbers are CSS, not text: exactly the source
    navigator.clipboard.writeText(text).then(function () { flash(button, "Copied", "Copy"); },
                                             function () { flash(button, "Copy failed", "Copy"); });
  }
  htmx.onLoad(function (content) {
    if (content === document.body || content.id === "chat-log") { following = true; followChat(); }
    var blocks = content.querySelectorAll ? content.querySelectorAll(".code-block") : [];
    blocks.forEach(function (block) {
      if (block.querySelector("button.copy")) return;
      var button = document.createElement("button");
      button.className = "copy outline";
      button.type = "button";
      button.textContent = "Copy";
      button.title = "Copy the code";
      button.addEventListener("click", function () { copyCode(block, button); });
      block.appendChild(button);
    });
  });

  // "Copy as markdown" on a message: its stored markdown source, fetched from the server.
  document.body.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy-md");
    if (!button) return;
    fetch(button.dataset.source).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function (text) { return navigator.clipboard.writeText(text); })
      .then(function () { flash(button, "Copied", "Copy as markdown"); },
            function () { flash(button, "Copy failed", "Copy as markdown"); });
  });

  // The full-size chat: a class on the workspace, toggled by the button or Alt+Shift+F, remembered
  // for this tab (sessionStorage; the server is never told). The pane, its socket and a streaming
  // reply stay as they are; the conversation list opens beside the chat. /chat/{id} opens full-size.
  var FULL_KEY = "theseus.chatFull";
  function setFull(full, remember) {
    var workspace = document.getElementById("workspace"), history = document.querySelector("#chat .chat-history");
    if (!workspace) return;
    workspace.classList.toggle("chat-full", full);
    document.querySelectorAll("button.chat-toggle").forEach(function (button) {
      button.setAttribute("aria-pressed", full ? "true" : "false");
      button.textContent = full ? "⤡ Narrow" : "⤢ Full size";
    });
    if (history) {
      if (full) { history.dataset.wasOpen = history.open ? "true" : "false"; history.open = true; }
      else if (history.dataset.wasOpen) { history.open = history.dataset.wasOpen === "true"; }
    }
    if (remember) sessionStorage.setItem(FULL_KEY, full ? "1" : "0");
    followChat();
  }
  function toggleFull() {
    var workspace = document.getElementById("workspace");
    if (workspace) setFull(!workspace.classList.contains("chat-full"), true);
  }
  document.body.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("button.chat-toggle")) toggleFull();
  });
  document.body.addEventListener("keydown", function (event) {
    if (event.altKey && event.shiftKey && !event.ctrlKey && !event.metaKey && event.code === "KeyF") {
      event.preventDefault();
      toggleFull();
    }
  });
  (function () {
    var workspace = document.getElementById("workspace");
    if (!workspace) return;
    var chatPage = workspace.dataset.chatPage === "true";
    setFull(chatPage || sessionStorage.getItem(FULL_KEY) === "1", chatPage);
  })();

  // On a conversation's page (/chat/{id}), the address follows the conversation shown.
  document.body.addEventListener("htmx:oobAfterSwap", function (event) {
    var bar = document.getElementById("conversation-bar");
    if (!bar || !/^\/chat\/\d+$/.test(location.pathname)) return;
    var path = "/chat/" + bar.dataset.conversation;
    if (path !== location.pathname) history.replaceState(null, "", path);
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

  // Whether this tab's chat socket is open (it reconnects by itself after a restart, apart from live sync).
  document.body.addEventListener("htmx:wsOpen", function () { document.body.dataset.chat = "open"; });
  document.body.addEventListener("htmx:wsClose", function () { document.body.dataset.chat = "closed"; });

  // Show whether this tab is connected to the live-sync stream. A server restart (the dev loop)
  // says "restarting" first: a small overlay shows until the stream is back. After any reconnect
  // the page brings itself up to date: it may have missed changes, or the server runs new code.
  var REFRESHED = ["apps-menu", "profile-menu", "devloop-banner", "conversation-bar", "conversations", "chat-log"];
  function setLive(state) {
    document.body.dataset.live = state;
    var overlay = document.getElementById("restart-overlay");
    if (state === "restarting" && !overlay) {
      overlay = document.createElement("div");
      overlay.id = "restart-overlay";
      overlay.className = "restart-overlay";
      overlay.setAttribute("role", "status");
      overlay.textContent = "Theseus is restarting…";
      document.body.appendChild(overlay);
    } else if (state !== "restarting" && overlay) {
      overlay.remove();
    }
  }
  function swapFrom(fresh, id, style) {
    var now = document.getElementById(id), next = fresh.getElementById(id);
    if (now && next) htmx.swap(now, style === "innerHTML" ? next.innerHTML : next.outerHTML, { swapStyle: style });
  }
  function load(url) {
    return fetch(url).then(function (r) { return r.text(); })
      .then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
  }
  function apply(fresh) {
    var form = document.getElementById("chat-form"), next = fresh.getElementById("chat-form");
    var streaming = form && next && form.dataset.streaming === "true" && next.dataset.streaming === "true";
    REFRESHED.forEach(function (id) {
      if (!(streaming && id === "chat-log")) swapFrom(fresh, id, "outerHTML");  // a reply still streams into it
    });
    if (form && next && form.dataset.streaming !== next.dataset.streaming) swapFrom(fresh, "chat-form", "outerHTML");
  }
  function refresh() {
    load(location.href).then(function (fresh) {
      if (fresh.getElementById("main")) {
        swapFrom(fresh, "main", "innerHTML");
        return apply(fresh);
      }
      var main = document.getElementById("main"), message = fresh.querySelector("main");  // this app is gone
      if (main && message) htmx.swap(main, message.innerHTML, { swapStyle: "innerHTML" });
      return load("/").then(apply);
    }).catch(function () { setLive("reconnecting"); });
  }
  document.body.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail.source, away = document.body.dataset.live;
    if (!source.theseusRestart) {
      source.theseusRestart = true;
      source.addEventListener("restarting", function () { setLive("restarting"); });
    }
    setLive("open");
    if (away === "restarting" || away === "reconnecting") refresh();
  });
  document.body.addEventListener("htmx:sseError", function () {
    if (document.body.dataset.live !== "restarting") setLive("reconnecting");
  });
})();
