// Shared by the ward and subject pages. Data from the server is only ever written with
// textContent or as attribute values, never parsed as HTML.
"use strict";

const PainMon = (() => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {  // a token in the fragment never reaches the server or its logs
    sessionStorage.setItem("painmon-token", fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem("painmon-token");

  function headers(extra) {
    const h = Object.assign({ "Accept": "application/json" }, extra || {});
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: headers(), cache: "no-store" });
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

  return { getJSON, subjectPath, el, liveFeed, drawLine, axis, BAND_COLOUR, token };
})();
