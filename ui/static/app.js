// keelson's view: a page's main element follows its objects through the
// API's watches (server-sent events), and a pod's log follows its container.
// No polling: the server says when something changed.
"use strict";

(function () {
  const status = document.getElementById("live-status");
  let source = null;
  let refreshing = false;
  let again = false;
  let backoff = 1000;

  function say(text) {
    if (status) status.textContent = text;
  }

  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const resp = await fetch(location.href, { headers: { "X-Keelson-Fragment": "1" }, credentials: "same-origin" });
      if (resp.status === 401 || resp.redirected) { location.reload(); return; }
      const html = await resp.text();
      const tmpl = document.createElement("template");
      tmpl.innerHTML = html.trim();
      const fresh = tmpl.content.querySelector("main");
      const old = document.getElementById("main");
      if (fresh && old) {
        old.replaceWith(fresh);
        say("Updated " + new Date().toLocaleTimeString());
      }
    } catch (e) {
      say("Not live: " + e.message);
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }

  function connect() {
    const main = document.getElementById("main");
    const url = main && main.dataset.live;
    if (!url) return;
    source = new EventSource(url);
    source.addEventListener("open", () => say("Live"));
    // A stream that carried a change worked: the next failure waits little.
    source.addEventListener("changed", () => { backoff = 1000; refresh(); });
    source.addEventListener("signedout", () => location.reload());
    const restart = () => {
      source.close();
      source = null;
      say("Reconnecting…");
      setTimeout(() => refresh().then(connect), backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
    source.addEventListener("resync", restart);
    source.onerror = restart;
  }

  // Logs: a <pre data-log> follows the stream its data-log names.
  function followLogs() {
    const pre = document.querySelector("pre[data-log]");
    if (!pre) return;
    const button = document.getElementById("follow");
    const picker = document.getElementById("container");
    const state = document.getElementById("log-state");
    let logs = null;
    function stop(why) {
      if (logs) { logs.close(); logs = null; }
      if (button) { button.textContent = "Follow"; button.setAttribute("aria-pressed", "false"); }
      if (state) state.textContent = why;
    }
    function start() {
      stop("");
      pre.textContent = "";
      logs = new EventSource(pre.dataset.log);
      if (button) { button.textContent = "Stop following"; button.setAttribute("aria-pressed", "true"); }
      if (state) state.textContent = "Following";
      logs.onmessage = (ev) => {
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(ev.data + "\n");
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      };
      logs.addEventListener("failed", (ev) => stop("Cannot read the log: " + ev.data));
      logs.addEventListener("end", () => stop("The log ended (the container stopped)."));
      logs.addEventListener("signedout", () => location.reload());
      // The browser reconnects by itself, and the server goes on after the
      // last line it sent (Last-Event-ID); only a refusal closes it.
      logs.onerror = () => {
        if (logs.readyState === EventSource.CLOSED) stop("The log stream was refused.");
        else if (state) state.textContent = "Reconnecting…";
      };
      logs.onopen = () => { if (state) state.textContent = "Following"; };
    }
    if (button) button.addEventListener("click", () => (logs ? stop("Stopped") : start()));
    if (picker) picker.addEventListener("change", () => { pre.dataset.log = picker.value; start(); });
    start();
  }

  connect();
  followLogs();
})();
