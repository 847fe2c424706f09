// Shared by the ward and subject pages. Data from the server is only ever written with
// textContent or as attribute values, never parsed as HTML.
//
// The access token: the pages ask for it in a dialog (a password field) when the server
// wants it (acknowledging an alarm; every read of a server bound beyond the loopback
// interface), send it as "Authorization: Bearer", and keep it only in this tab's
// sessionStorage, and only once the server accepted it. It never goes into a URL (which
// browsers keep in their history and servers and proxies in their logs).
"use strict";

const PainMon = (() => {
  const TOKEN_KEY = "painmon-token";
  const BY_KEY = "painmon-by";

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function headers(extra) {
    const h = Object.assign({ "Accept": "application/json" }, extra || {});
    const t = token();
    if (t) h["Authorization"] = "Bearer " + t;
    return h;
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: headers(), cache: "no-store" });
    if (r.status === 401) {  // a server that wants the token for reads: ask for it, then retry once
      sessionStorage.removeItem(TOKEN_KEY);
      if (await askToken()) return getJSON(path);
    }
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  function subjectPath(id) { return "/api/subjects/" + encodeURIComponent(id); }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // Server-sent events read with fetch (so the bearer token can be sent), reconnecting.
  function liveFeed(onEvent, onStatus) {
    let stopped = false;
    async function run() {
      while (!stopped) {
        try {
          const r = await fetch("/api/stream", { headers: headers({ "Accept": "text/event-stream" }) });
          if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
          onStatus(true);
          const reader = r.body.getReader();
          const dec = new TextDecoder();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += dec.decode(value, { stream: true });
            let cut;
            while ((cut = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, cut);
              buf = buf.slice(cut + 2);
              let kind = "message", data = "";
              for (const line of block.split("\n")) {
                if (line.startsWith("event: ")) kind = line.slice(7);
                else if (line.startsWith("data: ")) data += line.slice(6);
              }
              if (data) {
                try { onEvent(kind, JSON.parse(data)); } catch (e) { console.error(e); }
              }
            }
          }
        } catch (e) { /* reconnect below */ }
        onStatus(false);
        await new Promise((res) => setTimeout(res, 2000));
      }
    }
    run();
    return () => { stopped = true; };
  }

  const BAND_COLOUR = { no: "#2e9d4a", low: "#e0a000", high: "#d43a2f" };

  // A headline line over [t0, t1] on a canvas: band edges dotted, gaps where null.
  function drawLine(canvas, points, t0, t1, opts) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const x = (t) => ((t - t0) / Math.max(1e-9, t1 - t0)) * (w - 2) + 1;
    const y = (v) => h - 1 - (v / 100) * (h - 2);
    g.strokeStyle = "#c8c8c8"; g.setLineDash([2, 3]); g.lineWidth = 1;
    for (const edge of [100 / 3, 200 / 3]) { g.beginPath(); g.moveTo(0, y(edge)); g.lineTo(w, y(edge)); g.stroke(); }
    g.setLineDash([]);
    g.strokeStyle = (opts && opts.colour) || "#1f5fbf"; g.lineWidth = (opts && opts.width) || 1.5;
    g.beginPath();
    let pen = false, last = null;
    for (const [t, v] of points) {
      if (v === null || t < t0) { pen = false; continue; }
      if (pen) g.lineTo(x(t), y(v)); else g.moveTo(x(t), y(v));
      pen = true; last = [t, v];
    }
    g.stroke();
    if (last) {  // the newest value as a dot, so even one estimate shows
      g.fillStyle = g.strokeStyle;
      g.beginPath(); g.arc(x(last[0]), y(last[1]), 2.5, 0, 2 * Math.PI); g.fill();
    }
  }

  // Time axis of a plot: the last `span` seconds once there is that much data, else what
  // there is (at least a minute), so a young session is not squeezed against the right edge.
  function axis(points, span) {
    if (!points.length) return [0, 1];
    const t1 = points[points.length - 1][0];
    const covered = t1 - points[0][0];
    return [t1 - Math.min(span, Math.max(60, covered)), t1];
  }

  // --- the access dialog: one <dialog>, built once, for the token and acknowledging ----------
  let dialog = null;

  function buildDialog() {
    const d = el("dialog", "access");
    d.id = "access-dialog";
    d.setAttribute("aria-labelledby", "access-title");
    const form = el("form");
    const title = el("h2", "", "");
    title.id = "access-title";
    const what = el("p", "what");
    what.id = "access-what";
    const byLabel = el("label", "field", "Acknowledged by (name or station, recorded) ");
    const by = el("input");
    by.id = "access-by"; by.type = "text"; by.maxLength = 100; by.autocomplete = "off";
    byLabel.append(by);
    const tokenLabel = el("label", "field", "Access token of this server ");
    const tokenInput = el("input");
    tokenInput.id = "access-token"; tokenInput.type = "password"; tokenInput.autocomplete = "off";
    tokenInput.spellcheck = false;
    tokenLabel.append(tokenInput);
    const note = el("p", "muted small",
      "The token is sent only to this server and kept only in this browser tab until it is closed.");
    const error = el("p", "error");
    error.id = "access-error";
    error.setAttribute("role", "alert");
    const buttons = el("div", "buttons");
    const ok = el("button", "primary", "Acknowledge");
    ok.id = "access-ok"; ok.type = "submit";
    const cancel = el("button", "", "Cancel");
    cancel.id = "access-cancel"; cancel.type = "button";
    buttons.append(ok, cancel);
    form.append(title, what, byLabel, tokenLabel, note, error, buttons);
    d.append(form);
    document.body.append(d);
    cancel.addEventListener("click", () => d.close("cancel"));
    dialog = { d, form, title, what, byLabel, by, tokenLabel, tokenInput, note, error, ok };
    return dialog;
  }

  // Show the dialog; `submit(values)` runs on each submission and returns true to close it
  // (or false after writing the reason into the dialog). Resolves true when it closed on success.
  function openDialog(opts, submit) {
    const g = dialog || buildDialog();
    g.title.textContent = opts.title;
    g.what.textContent = opts.what || "";
    g.what.hidden = !opts.what;
    g.byLabel.hidden = !opts.askBy;
    g.by.value = sessionStorage.getItem(BY_KEY) || "";
    const needToken = () => !token();
    g.tokenLabel.hidden = !needToken();
    g.note.hidden = !needToken();
    g.tokenInput.value = "";
    g.error.textContent = opts.error || "";
    g.ok.textContent = opts.action;
    g.ok.disabled = false;
    return new Promise((resolve) => {
      let done = false;
      async function onSubmit(ev) {
        ev.preventDefault();  // never a real form submission (the CSP forbids them anyway)
        g.error.textContent = "";
        const typed = g.tokenInput.value.trim();
        if (needToken() && !typed) { g.error.textContent = "Enter the server's access token."; g.tokenInput.focus(); return; }
        g.ok.disabled = true;
        try {
          done = await submit({ token: token() || typed, by: g.by.value.trim() });
        } finally { g.ok.disabled = false; }
        if (done) { g.d.close("ok"); return; }
        g.tokenLabel.hidden = !needToken();  // a refused token was forgotten: ask again
        g.note.hidden = !needToken();
        if (needToken()) { g.tokenInput.value = ""; g.tokenInput.focus(); }
      }
      g.form.addEventListener("submit", onSubmit);
      g.d.addEventListener("close", () => { g.form.removeEventListener("submit", onSubmit); resolve(done); },
        { once: true });
      if (!g.d.open) g.d.showModal();
      (needToken() ? g.tokenInput : opts.askBy ? g.by : g.ok).focus();
    });
  }

  // Ask for the token a read needs; resolves true once the server accepted one.
  let asking = null;
  function askToken() {
    if (!asking) {
      asking = openDialog({ title: "This server needs its access token", action: "Continue",
                            what: "It is bound beyond this computer, so every request needs the token." },
        async (v) => {
          const r = await fetch("/api/health", { headers: { "Accept": "application/json",
            "Authorization": "Bearer " + v.token }, cache: "no-store" });
          if (r.ok) { sessionStorage.setItem(TOKEN_KEY, v.token); return true; }
          dialog.error.textContent = r.status === 401
            ? "The server refused this token (401): check it and enter it again."
            : "The server answered HTTP " + r.status + ".";
          return false;
        }).finally(() => { asking = null; });
    }
    return asking;
  }

  function describeAlarm(alarm) { return alarm.kind.toUpperCase() + " " + alarm.state + ": " + alarm.message; }

  // Acknowledge `alarm` of `subject` through the token-protected POST API, asking for the
  // token (unless this tab has one the server accepted) and for who acknowledges.
  // Resolves to the alarm event (JSON) when acknowledged, null when cancelled.
  function acknowledge(subject, alarm) {
    let event = null;
    return openDialog({ title: "Acknowledge alarm", action: "Acknowledge", askBy: true,
                        what: subject + " — " + describeAlarm(alarm) },
      async (v) => {
        let r;
        try {
          r = await fetch(subjectPath(subject) + "/alarms/" + encodeURIComponent(String(alarm.alarm_id)) + "/ack", {
            method: "POST", cache: "no-store",
            headers: { "Accept": "application/json", "Content-Type": "application/json",
                       "Authorization": "Bearer " + v.token },
            body: JSON.stringify({ by: v.by }),
          });
        } catch (e) {
          dialog.error.textContent = "Cannot reach the server; nothing was acknowledged.";
          return false;
        }
        let answer = {};
        try { answer = await r.json(); } catch (e) { /* no JSON body */ }
        if (r.ok) {
          sessionStorage.setItem(TOKEN_KEY, v.token);
          if (v.by) sessionStorage.setItem(BY_KEY, v.by); else sessionStorage.removeItem(BY_KEY);
          event = answer;
          return true;
        }
        const messages = {
          401: "The server refused the token (401): check it and enter it again. Nothing was acknowledged.",
          403: "This server is read-only (403): it was started without an access token, so alarms can " +
               "be acknowledged only where it runs. Nothing was acknowledged.",
          404: "This alarm is no longer active (404): it was cleared meanwhile.",
          409: "This alarm is not raised any more (409): someone acknowledged it or it cleared.",
        };
        if (r.status === 401) sessionStorage.removeItem(TOKEN_KEY);
        dialog.error.textContent = messages[r.status] ||
          ("The server answered HTTP " + r.status + (answer.error ? ": " + answer.error : "") + ".");
        return false;
      }).then((ok) => (ok ? event : null));
  }

  const READ_ONLY_WHY = "Read-only server: it was started without an access token ($PAINMON_HTTP_TOKEN or " +
    "--http-token-file), so alarms can be acknowledged only where it runs.";

  // The Acknowledge button of one active alarm: absent unless the alarm is raised, disabled
  // (with the reason as its tooltip) on a read-only server. `done(event)` after acknowledging.
  function ackButton(subject, alarm, readOnly, done) {
    if (alarm.state !== "raised") return null;
    const b = el("button", "ack", "Acknowledge");
    b.type = "button";
    b.dataset.alarmId = String(alarm.alarm_id);
    b.setAttribute("aria-label", "Acknowledge " + alarm.kind + " alarm of " + subject);
    if (readOnly) {
      b.disabled = true;
      b.title = READ_ONLY_WHY;
    } else {
      b.title = "Acknowledge this alarm (needs the server's access token)";
      b.addEventListener("click", async (ev) => {
        ev.preventDefault();
        ev.stopPropagation();
        const event = await acknowledge(subject, alarm);
        if (event) done(event);
      });
    }
    return b;
  }

  // Redraw a list of active alarms only when they changed: tiles redraw at every estimate,
  // and a button replaced between press and release would swallow the click.
  function showAlarms(list, subject, alarms, readOnly, done) {
    const key = JSON.stringify([readOnly, alarms.map((a) => [a.alarm_id, a.state, a.kind, a.message])]);
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...alarms.map((a) => alarmItem(subject, a, readOnly, done)));
  }

  // One line per active alarm, with its Acknowledge button when raised.
  function alarmItem(subject, alarm, readOnly, done) {
    const li = el("li", alarm.state);
    li.dataset.alarmId = String(alarm.alarm_id);
    li.append(el("span", "text", describeAlarm(alarm)));
    const b = ackButton(subject, alarm, readOnly, done);
    if (b) li.append(b);
    return li;
  }

  // A short message in the page's status line (`#status-line`), e.g. "acknowledged"; it
  // goes after a minute (the alarm list and history keep the record).
  let sayTimer = null;
  function say(text) {
    const line = document.getElementById("status-line");
    if (!line) return;
    line.textContent = text;
    line.hidden = !text;
    clearTimeout(sayTimer);
    if (text) sayTimer = setTimeout(() => say(""), 60000);
  }

  return { getJSON, subjectPath, el, liveFeed, drawLine, axis, BAND_COLOUR, token, acknowledge, showAlarms, say,
           READ_ONLY_WHY };
})();
