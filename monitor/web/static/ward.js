// The ward page: one tile per subject, live from /api/stream, refreshed from /api/subjects.
"use strict";

(() => {
  const SPARK_S = 15 * 60;
  const tiles = new Map();   // subject id -> { root, parts, data }
  const main = document.getElementById("tiles");
  const sortSel = document.getElementById("sort");
  const live = document.getElementById("live");
  const { el, getJSON, drawLine } = PainMon;

  sortSel.value = localStorage.getItem("painmon-sort") || "name";
  sortSel.addEventListener("change", () => { localStorage.setItem("painmon-sort", sortSel.value); reorder(); });

  let readOnly = true;  // until /api/subjects says otherwise: no button that cannot work

  // A tile: the link to the subject's page (name, headline, state, sparkline, health), then
  // the active alarms with their Acknowledge buttons (outside the link: a button inside a
  // link is not valid HTML and would open the subject page).
  function makeTile(id) {
    const root = el("article", "tile");
    const link = el("a", "tile-link");
    const q = new URLSearchParams({ id });
    link.href = "/subject?" + q.toString();
    root.dataset.subject = id;
    const parts = {
      name: el("div", "name", id),
      value: el("span", "value", "–"),
      band: el("span", "band", ""),
      state: el("div", "state", ""),
      spark: el("canvas", "spark"),
      health: el("div", "health"),
      alarms: el("ul", "alarms"),
      instance: el("div", "instance", ""),
    };
    parts.name.title = id;
    const head = el("div", "headline");
    head.append(parts.value, parts.band);
    parts.spark.setAttribute("aria-hidden", "true");
    link.append(parts.name, head, parts.state, parts.spark, parts.health);
    root.append(link, parts.alarms, parts.instance);
    const tile = { root, link, parts, data: { subject: id, sparkline: [], alarms: [], health: {} } };
    tiles.set(id, tile);
    main.append(root);
    document.getElementById("empty").hidden = true;
    return tile;
  }

  function tileFor(id) { return tiles.get(id) || makeTile(id); }

  function render(tile) {
    const d = tile.data, p = tile.parts;
    p.value.textContent = d.headline === null || d.headline === undefined ? "–" : Math.round(d.headline);
    p.band.textContent = d.band ? d.band + " pain" : "no value";
    p.band.className = "band " + (d.band || "");
    const stateText = d.state_text || d.state || "";
    p.state.textContent = "state: " + stateText;
    p.state.className = "state " + (d.state || "");
    tile.root.className = "tile" + (d.band ? " band-" + d.band : "") +
      ((d.alarms || []).some((a) => a.state === "raised") ? " alarming" : "");
    tile.link.setAttribute("aria-label", d.subject + ": " + p.value.textContent + ", " + stateText +
      ((d.alarms || []).length ? ", " + d.alarms.length + " alarm(s)" : ""));
    p.health.replaceChildren(...Object.entries(d.health || {}).map(([m, level]) => {
      const dot = el("span", "dot " + level, m);
      dot.title = m + ": " + level;
      return dot;
    }));
    PainMon.showAlarms(p.alarms, d.subject, d.alarms || [], readOnly, (event) => {
      PainMon.say(event.kind.toUpperCase() + " alarm of " + event.subject + " acknowledged" +
        (event.by ? " by " + event.by : "") + ".");
      refresh();
    });
    if (d.instance) p.instance.textContent = "on " + d.instance.label;
    const pts = d.sparkline || [];
    const [t0, t1] = PainMon.axis(pts, SPARK_S);
    drawLine(p.spark, pts, t0, t1, { colour: PainMon.BAND_COLOUR[d.band] || "#777", width: 1.5 });
  }

  function alarmRank(d) {
    const a = d.alarms || [];
    return a.some((x) => x.state === "raised") ? 2 : a.length ? 1 : 0;
  }

  function reorder() {
    const list = [...tiles.values()];
    if (sortSel.value === "alarm") {
      list.sort((a, b) => alarmRank(b.data) - alarmRank(a.data) ||
        (b.data.headline ?? -1) - (a.data.headline ?? -1) || (a.data.subject < b.data.subject ? -1 : 1));
    } else {
      list.sort((a, b) => (a.data.subject < b.data.subject ? -1 : a.data.subject > b.data.subject ? 1 : 0));
    }
    list.forEach((t, i) => { if (main.children[i] !== t.root) main.insertBefore(t.root, main.children[i] || null); });
  }

  async function refresh() {
    try {
      const r = await getJSON("/api/subjects");
      document.getElementById("instance").textContent = "instance " + r.instance.label;
      readOnly = r.read_only !== false;
      const mode = document.getElementById("mode");
      mode.hidden = !readOnly;
      mode.title = PainMon.READ_ONLY_WHY;
      for (const s of r.subjects) {
        const tile = tileFor(s.subject);
        tile.data = s;
        render(tile);
      }
      reorder();
    } catch (e) { live.textContent = "cannot reach the server"; live.classList.add("down"); }
  }

  function onEvent(kind, payload) {
    if (kind === "estimate") {
      const tile = tileFor(payload.subject);
      const d = tile.data;
      d.headline = payload.headline; d.band = payload.band; d.state = payload.state;
      d.state_text = payload.state.replace("_", " ");
      d.sparkline = (d.sparkline || []).filter((p) => p[0] > payload.t_end - SPARK_S);
      d.sparkline.push([payload.t_end, payload.headline]);
      tile.root.dataset.updates = String(Number(tile.root.dataset.updates || 0) + 1);
      render(tile);
      if (sortSel.value === "alarm") reorder();
    } else if (kind === "alarm") {
      refresh();
    }
  }

  PainMon.liveFeed(onEvent, (up) => {
    live.textContent = up ? "live" : "reconnecting…";
    live.classList.toggle("down", !up);
    if (up) refresh();
  });
  refresh();
  setInterval(refresh, 5000);  // health dots and alarm states between events
})();
