// A subject's page: headline, state, trend of the last hour, active alarms and their history.
"use strict";

(() => {
  const id = new URLSearchParams(location.search).get("id") || "";
  const { el, getJSON, subjectPath, drawLine } = PainMon;
  const TREND_S = 3600;
  let points = [];
  let since = null;
  document.getElementById("title").textContent = id;
  document.title = "PainMon — " + id;

  async function loadEstimates() {
    // page through everything after `since` (the API returns at most 1000 a page)
    for (let guard = 0; guard < 50; guard++) {
      const q = new URLSearchParams({ limit: "1000" });
      if (since !== null) q.set("since", String(since));
      const r = await getJSON(subjectPath(id) + "/estimates?" + q.toString());
      for (const e of r.estimates) { points.push([e.t_end, e.headline, e.state]); since = e.t_end; }
      if (r.next === null) break;
    }
    const t1 = points.length ? points[points.length - 1][0] : 0;
    points = points.filter((p) => p[0] > t1 - TREND_S);
    const [t0] = PainMon.axis(points, TREND_S);
    drawLine(document.getElementById("trend"), points, t0, t1, { width: 2 });
    document.getElementById("span").textContent = "last " + Math.round((t1 - t0) / 60) + " min";
    const counts = {};
    for (const p of points) counts[p[2]] = (counts[p[2]] || 0) + 1;
    document.getElementById("states").textContent = "states over the hour: " +
      Object.entries(counts).map(([s, n]) => s.replace("_", " ") + " " + n).join(", ");
  }

  async function loadSubject() {
    const d = await getJSON(subjectPath(id));
    document.getElementById("instance").textContent = "on " + d.instance.label;
    document.getElementById("value").textContent = d.headline === null ? "–" : Math.round(d.headline);
    const band = document.getElementById("band");
    band.textContent = d.band ? d.band + " pain" : "no value";
    band.className = "band " + (d.band || "");
    const state = document.getElementById("state");
    state.textContent = "state: " + d.state_text;
    state.className = "state " + d.state;
    document.getElementById("health").replaceChildren(...Object.entries(d.health).map(([m, level]) => {
      const dot = el("span", "dot " + level, m + " " + level);
      return dot;
    }));
    const readOnly = d.read_only !== false;
    const mode = document.getElementById("mode");
    mode.hidden = !readOnly;
    mode.title = PainMon.READ_ONLY_WHY;
    PainMon.showAlarms(document.getElementById("alarms"), id, d.alarms, readOnly, (event) => {
      PainMon.say(event.kind.toUpperCase() + " alarm acknowledged" + (event.by ? " by " + event.by : "") + ".");
      refresh();
    });
    document.getElementById("history").replaceChildren(...d.alarm_history.slice().reverse().map((a) =>
      el("li", "", a.kind + " " + a.transition + (a.by ? " by " + a.by : "") + " — " + a.message)));
  }

  async function refresh() {
    try {
      await loadSubject();
      await loadEstimates();
    } catch (e) { document.getElementById("live").textContent = String(e.message || e); }
  }

  PainMon.liveFeed((kind, payload) => {
    if (payload.subject !== id) return;
    refresh();
  }, (up) => {
    const live = document.getElementById("live");
    live.textContent = up ? "live" : "reconnecting…";
    live.classList.toggle("down", !up);
  });
  refresh();
})();
