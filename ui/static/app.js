// keelson's view: a page's main element follows its objects through the
// API's watches (server-sent events), and a pod's log follows its container.
// No polling: the server says when something changed.
"use strict";

(function () {
  const status = document.getElementById("live-status");
  let source = null;
  let sourceURL = "";
  let inflight = null;
  let again = false;
  let backoff = 1000;

  function say(text) {
    if (status) status.textContent = text;
  }

  // refresh reads the page's main element again and swaps it in. Asked
  // while a read is under way, it reads once more after it; the promise it
  // returns settles when the page is current.
  function refresh() {
    if (inflight) { again = true; return inflight; }
    inflight = swap().finally(() => {
      inflight = null;
      if (again) { again = false; return refresh(); }
    });
    return inflight;
  }

  async function swap() {
    try {
      const resp = await fetch(location.href, { headers: { "X-Keelson-Fragment": "1" }, credentials: "same-origin" });
      if (resp.status === 401 || resp.redirected) { location.reload(); return; }
      const html = await resp.text();
      const tmpl = document.createElement("template");
      tmpl.innerHTML = html.trim();
      const fresh = tmpl.content.querySelector("main");
      const old = document.getElementById("main");
      if (!fresh || !old) return;
      old.replaceWith(fresh);
      say("Updated " + new Date().toLocaleTimeString());
      // The page now shows other collections (a namespace, a kind the
      // source gained): follow those.
      if (source && (fresh.dataset.live || "") !== sourceURL) { source.close(); source = null; connect(); }
    } catch (e) {
      // The network went away (or changed) under the read: read again.
      say("Not live: " + e.message);
      setTimeout(refresh, backoff);
      backoff = Math.min(backoff * 2, 30000);
    }
  }

  function connect() {
    const main = document.getElementById("main");
    const url = main && main.dataset.live;
    if (!url) return;
    const es = new EventSource(url);
    source = es;
    sourceURL = url;
    es.addEventListener("open", () => say("Live"));
    // A stream that carried a change worked: the next failure waits little.
    es.addEventListener("changed", () => { backoff = 1000; refresh(); });
    es.addEventListener("signedout", () => location.reload());
    const restart = () => {
      es.close();
      if (source !== es) return;
      source = null;
      say("Reconnecting…");
      setTimeout(() => refresh().then(() => { if (!source) connect(); }), backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
    es.addEventListener("resync", restart);
    es.onerror = restart;
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
