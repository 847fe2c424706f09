"""The ward page in a real browser: Debian's headless Chromium driven by Selenium (no
browser download) against a real ``painmon serve --http`` fed by ``painmon simulate`` over
LSL, and against an in-process server holding hostile subject ids.

Screenshots go to a temporary folder, or to $PAINMON_SCREENSHOTS (e.g. docs/, to refresh the
README's) when set, so a test run never rewrites tracked files."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import torch
from helpers import REPO_ROOT, wait_until
from mqtt_broker import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOCS = Path(os.environ.get("PAINMON_SCREENSHOTS") or tempfile.mkdtemp(prefix="painmon-shots-"))
TOKEN = "browser-test-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """A real PainMon model file (2 modalities, 2 s windows, freshly initialised encoder)."""
    from core.checkpoint import ModelMetadata, save_model
    from core.encoder import TinyBioMoE
    from core.fusion import FusionHead

    torch.manual_seed(0)
    head = FusionHead(("EDA", "BVP"), ("waveform",))
    meta = ModelMetadata(name="ward-test", modalities=["EDA", "BVP"], representations=["waveform"], window_s=2.0)
    path = tmp_path_factory.mktemp("model") / "ward-test.pt"
    return save_model(path, head, meta, encoder_state_dict=TinyBioMoE().state_dict())


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1280,860", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Output:
    """A subprocess's output, read on a thread so its pipe never fills."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(line.rstrip() for line in proc.stdout), daemon=True).start()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def painmon(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "monitor", *args], cwd=REPO_ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def api(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def tiles(driver) -> list[dict]:
    """What the page shows: per tile its subject, update count, texts and alarms."""
    return driver.execute_script("""
        return [...document.querySelectorAll('#tiles .tile')].map(t => ({
          subject: t.dataset.subject, updates: Number(t.dataset.updates || 0),
          value: t.querySelector('.value').textContent, state: t.querySelector('.state').textContent,
          name: t.querySelector('.name').textContent, instance: t.querySelector('.instance').textContent,
          health: [...t.querySelectorAll('.health .dot')].map(d => d.textContent),
          alarms: [...t.querySelectorAll('.alarms li')].map(li => ({id: Number(li.dataset.alarmId),
                                                                      cls: li.className, text: li.textContent}))}));
    """)


def test_ward_page_of_a_served_simulation_updates_raises_and_acknowledges(small_model, browser, tmp_path):
    tag = f"w{uuid.uuid4().hex[:6]}"
    subjects = [f"{tag}-{i}" for i in (1, 2, 3)]
    alarms = tmp_path / "alarms.toml"
    # only subject 2 can alarm: its level is 0 (raised at its first trusted estimate)
    alarms.write_text(f'[default]\nlevel = 100\nenabled = ["level"]\n[subjects."{subjects[1]}"]\nlevel = 0\n'
                      "level_for_s = 0\n")
    port = free_port()
    sim = painmon("simulate", "--subjects", "3", "--lsl", "--prefix", tag, "--quiet", "--seed", "5")
    srv = painmon("serve", "--lsl", "--lsl-name", f"^{tag}-", "--model", str(small_model), "--device", "cpu",
                  "--threads", "1", "--health-every", "2", "--alarms", str(alarms), "--http", f"127.0.0.1:{port}",
                  env={"PAINMON_HTTP_TOKEN": TOKEN})
    out = Output(srv)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: "ward page on" in out.text or srv.poll() is not None, 90, 0.2), out.text
        assert srv.poll() is None, out.text
        assert TOKEN not in out.text  # the token is never logged
        browser.get(base + "/")
        # three tiles, each updated live several times
        ok = wait_until(lambda: len(tiles(browser)) == 3 and all(t["updates"] >= 3 for t in tiles(browser)), 120, 0.5)
        assert ok, (tiles(browser), out.text[-3000:])
        shown = tiles(browser)
        assert sorted(t["subject"] for t in shown) == subjects
        assert [t["name"] for t in shown] == subjects  # sorted by name
        for t in shown:
            assert re.fullmatch(r"\d{1,3}|–", t["value"]) and t["state"].startswith("state: ")
            assert re.search(r"shard 1/1", t["instance"]) and str(srv.pid) in t["instance"]
            assert {"EDA", "BVP"} <= set(t["health"])
        # the raised alarm appears on subject 2's tile only
        assert wait_until(lambda: any(a["cls"] == "raised" for t in tiles(browser) for a in t["alarms"]), 30, 0.5)
        by_subject = {t["subject"]: t for t in tiles(browser)}
        (alarm,) = by_subject[subjects[1]]["alarms"]
        assert "LEVEL raised" in alarm["text"]
        assert not by_subject[subjects[0]]["alarms"] and not by_subject[subjects[2]]["alarms"]
        DOCS.mkdir(exist_ok=True)
        browser.save_screenshot(str(DOCS / "ward-browser.png"))
        # acknowledging needs the token; with it, the page shows the alarm acknowledged
        ack = f"{base}/api/subjects/{subjects[1]}/alarms/{alarm['id']}/ack"
        assert api(ack, "POST", {"by": "nurse station"})[0] == 401
        status, event = api(ack, "POST", {"by": "nurse station"}, token=TOKEN)
        assert status == 200 and event["transition"] == "acknowledged" and event["by"] == "nurse station"
        assert api(ack, "POST", {}, token=TOKEN)[0] == 409
        assert wait_until(lambda: [a["cls"] for a in {t["subject"]: t for t in tiles(browser)}[subjects[1]]["alarms"]]
                          == ["acknowledged"], 15, 0.3)
        # the subject page: trend, states, alarm history
        link = browser.execute_script(
            "return [...document.querySelectorAll('#tiles .tile')].find(t => t.dataset.subject === arguments[0]).href",
            subjects[1])
        browser.get(link)
        history = lambda: browser.find_element("id", "history").text  # noqa: E731
        assert wait_until(lambda: "acknowledged by nurse station" in history(), 15, 0.3)
        assert browser.find_element("id", "title").text == subjects[1]
        assert "states over the hour" in browser.find_element("id", "states").text
        browser.save_screenshot(str(DOCS / "ward-subject.png"))
    finally:
        rc = stop(srv)
        stop(sim)
    assert rc == 0, out.text[-3000:]


def test_hostile_subject_ids_are_shown_as_text_never_run(browser):
    from core import clock
    from core.alarms import AlarmConfig, AlarmRules
    from core.estimate import Estimate
    from monitor.alarms import attach_alarms
    from monitor.pipeline import Pipeline
    from monitor.web import HttpOptions, start_ward_server

    hostile = [
        "<script>window.__pwned=1</script>",
        "<img src=x onerror=\"window.__pwned=2\">",
        "\"'><b>quote's</b>",
        "x" * 60_000,
    ]
    pipeline = Pipeline()
    pipeline.start()
    alarms = attach_alarms(pipeline, AlarmConfig(AlarmRules(level=0, level_for_s=0, enabled=("level",))))
    server = start_ward_server(pipeline, HttpOptions(port=0), alarms)
    try:
        t = clock.now()
        for i, sid in enumerate(hostile):
            pipeline.deliver(Estimate(sid, t, 50.0, (0.2, 0.5, 0.3), smoothed=40.0 + 10 * i))
        browser.get(server.url + "/")
        assert wait_until(lambda: len(tiles(browser)) == len(hostile), 20, 0.3)
        shown = {t["subject"]: t for t in tiles(browser)}
        assert set(shown) == set(hostile)
        for sid in hostile:
            assert shown[sid]["name"] == sid  # the text itself, not markup
            assert shown[sid]["alarms"] and "LEVEL raised" in shown[sid]["alarms"][0]["text"]
        assert browser.execute_script("return window.__pwned") is None
        markup = "return document.querySelectorAll('#tiles script, #tiles img, #tiles b').length"
        assert browser.execute_script(markup) == 0
        browser.save_screenshot(str(DOCS / "ward-hostile-ids.png"))
        # each subject page shows its id as the title, also for the 60 k one
        hrefs = browser.execute_script("return [...document.querySelectorAll('#tiles .tile')].map(t => t.href)")
        for sid in hostile[:3]:
            link = server.url + "/subject?" + urllib.parse.urlencode({"id": sid})
            assert link in hrefs
            browser.get(link)
            assert wait_until(lambda s=sid: browser.find_element("id", "title").text == s, 10, 0.2)
            assert browser.execute_script("return document.title") == "PainMon — " + sid
            assert browser.execute_script("return window.__pwned") is None
    finally:
        pipeline.stop()
