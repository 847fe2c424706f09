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
            "return [...document.querySelectorAll('#tiles .tile')].find(t => t.dataset.subject === arguments[0])"
            ".querySelector('a.tile-link').href",
            subjects[1])
        browser.get(link)
        history = lambda: browser.find_element("id", "history").text  # noqa: E731
        assert wait_until(lambda: "acknowledged by nurse station" in history(), 15, 0.3)
        assert browser.find_element("id", "title").text == subjects[1]
        # the trend and its state counts come from a request of their own, which may answer later
        assert wait_until(lambda: "states over the hour" in browser.find_element("id", "states").text, 15, 0.3)
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
        # no token on this server: every raised alarm's button is there but disabled, saying why
        buttons = browser.execute_script("""return [...document.querySelectorAll('#tiles .tile')].map(t =>
            [...t.querySelectorAll('button.ack')].map(b => ({disabled: b.disabled, title: b.title})))""")
        assert [len(b) for b in buttons] == [1] * len(hostile)
        assert all(b[0]["disabled"] and b[0]["title"].startswith("Read-only server") for b in buttons)
        assert browser.find_element("id", "mode").is_displayed()
        hrefs = browser.execute_script("return [...document.querySelectorAll('#tiles a.tile-link')].map(a => a.href)")
        for sid in hostile[:3]:
            link = server.url + "/subject?" + urllib.parse.urlencode({"id": sid})
            assert link in hrefs
            browser.get(link)
            assert wait_until(lambda s=sid: browser.find_element("id", "title").text == s, 10, 0.2)
            assert browser.execute_script("return document.title") == "PainMon — " + sid
            assert browser.execute_script("return window.__pwned") is None
    finally:
        pipeline.stop()


def _alarm_state(url: str, subject: str, alarm_id: int) -> str | None:
    """The alarm's state as the API reports it (None: not active)."""
    status, data = api(f"{url}/api/subjects/{urllib.parse.quote(subject, safe='')}")
    assert status == 200, data
    return next((a["state"] for a in data["alarms"] if a["alarm_id"] == alarm_id), None)


def _ack_button(driver, subject: str):
    from selenium.webdriver.common.by import By

    (tile,) = [t for t in driver.find_elements(By.CSS_SELECTOR, "#tiles .tile")
               if t.get_attribute("data-subject") == subject]
    return tile.find_element(By.CSS_SELECTOR, "button.ack")


def test_acknowledging_in_the_page_asks_for_the_token_and_uses_the_post_api(browser):
    """Ward tile: click Acknowledge, a wrong token is refused with a clear message (and the
    alarm stays raised), the right one acknowledges it; the subject page then acknowledges
    another alarm with the token this tab already holds; the token never enters a URL."""
    from selenium.webdriver.common.by import By

    from core import clock
    from core.alarms import AlarmConfig, AlarmRules
    from core.estimate import Estimate
    from monitor.alarms import attach_alarms
    from monitor.pipeline import Pipeline
    from monitor.web import HttpOptions, start_ward_server

    pipeline = Pipeline()
    pipeline.start()
    alarms = attach_alarms(pipeline, AlarmConfig(AlarmRules(level=60, level_for_s=0, enabled=("level",))))
    server = start_ward_server(pipeline, HttpOptions(port=0, token=TOKEN), alarms)
    beds = ["bed-1", "bed-2", "bed-3"]
    try:
        t = clock.now()
        for i, sid in enumerate(beds):  # bed-2 and bed-3 alarm, bed-1 does not
            pipeline.deliver(Estimate(sid, t, 50.0, (0.2, 0.5, 0.3), smoothed=40.0 + 20 * i, state="ok"))
        (alarm2,) = alarms.active("bed-2")
        (alarm3,) = alarms.active("bed-3")
        browser.get(server.url + "/")
        DOCS.mkdir(exist_ok=True)
        assert wait_until(lambda: sum(len(t["alarms"]) for t in tiles(browser)) == 2, 20, 0.2), tiles(browser)
        assert not browser.find_element(By.ID, "mode").is_displayed()  # not read-only
        assert browser.find_elements(By.CSS_SELECTOR, '#tiles .tile[data-subject="bed-1"] button') == []
        # the dialog asks for the token (a password field) and who acknowledges
        _ack_button(browser, "bed-2").click()
        dialog = browser.find_element(By.ID, "access-dialog")
        assert wait_until(dialog.is_displayed, 5, 0.05)
        assert browser.current_url == server.url + "/"  # the tile's link was not followed
        assert "bed-2" in browser.find_element(By.ID, "access-what").text
        token_field = browser.find_element(By.ID, "access-token")
        assert token_field.get_attribute("type") == "password" and token_field.is_displayed()
        browser.find_element(By.ID, "access-by").send_keys("nurse <b>station</b>")
        token_field.send_keys("not-the-token")
        browser.save_screenshot(str(DOCS / "ward-ack-dialog.png"))
        browser.find_element(By.ID, "access-ok").click()
        error = browser.find_element(By.ID, "access-error")
        assert wait_until(lambda: "refused the token (401)" in error.text, 10, 0.05), error.text
        assert dialog.is_displayed() and _alarm_state(server.url, "bed-2", alarm2.alarm_id) == "raised"
        assert browser.execute_script("return sessionStorage.getItem('painmon-token')") is None
        browser.save_screenshot(str(DOCS / "ward-ack-401.png"))
        # the right token: acknowledged through the POST API, by the name typed in
        token_field = browser.find_element(By.ID, "access-token")
        assert token_field.is_displayed() and token_field.get_attribute("value") == ""
        token_field.send_keys(TOKEN)
        browser.find_element(By.ID, "access-ok").click()
        assert wait_until(lambda: not dialog.is_displayed(), 10, 0.05)
        assert _alarm_state(server.url, "bed-2", alarm2.alarm_id) == "acknowledged"
        (ack,) = [e for e in alarms.history("bed-2") if e.transition == "acknowledged"]
        assert ack.by == "nurse <b>station</b>"
        assert wait_until(lambda: [a["cls"] for a in {t["subject"]: t for t in tiles(browser)}["bed-2"]["alarms"]]
                          == ["acknowledged"], 10, 0.1)
        assert "acknowledged by nurse <b>station</b>" in browser.find_element(By.ID, "status-line").text
        assert browser.execute_script("return document.querySelectorAll('#status-line b, #tiles b').length") == 0
        assert browser.find_elements(By.CSS_SELECTOR, '#tiles .tile[data-subject="bed-2"] button') == []
        assert _ack_button(browser, "bed-3").is_enabled()
        browser.save_screenshot(str(DOCS / "ward-ack.png"))
        # kept in this tab's session storage only, never in a URL or in local storage
        assert browser.execute_script("return sessionStorage.getItem('painmon-token')") == TOKEN
        assert browser.execute_script("return localStorage.length === 0 || localStorage.getItem('painmon-token')") \
            in (True, None)
        assert TOKEN not in browser.current_url
        # the subject page: the tab has the token, so the dialog asks only who acknowledges
        browser.get(server.url + "/subject?id=bed-3")
        buttons = lambda: browser.find_elements(By.CSS_SELECTOR, "#alarms button.ack")  # noqa: E731
        assert wait_until(lambda: len(buttons()) == 1 and buttons()[0].is_enabled(), 10, 0.1)
        buttons()[0].click()
        assert wait_until(dialog_shown := lambda: browser.find_element(By.ID, "access-dialog").is_displayed(), 5, 0.05)
        assert not browser.find_element(By.ID, "access-token").is_displayed()
        assert browser.find_element(By.ID, "access-by").get_attribute("value") == "nurse <b>station</b>"
        browser.find_element(By.ID, "access-ok").click()
        assert wait_until(lambda: not dialog_shown(), 10, 0.05)
        assert _alarm_state(server.url, "bed-3", alarm3.alarm_id) == "acknowledged"
        history = lambda: browser.find_element(By.ID, "history").text  # noqa: E731
        assert wait_until(lambda: "level acknowledged by nurse <b>station</b>" in history(), 10, 0.1), history()
        assert browser.find_elements(By.CSS_SELECTOR, "#alarms button.ack") == []
        assert TOKEN not in browser.current_url
        browser.save_screenshot(str(DOCS / "ward-ack-subject.png"))
    finally:
        pipeline.stop()


def test_a_read_only_server_answers_the_page_with_a_clear_403_message(browser):
    """Without a token the buttons are disabled; should a page still try (a server restarted
    read-only under an open page), the dialog says why nothing was acknowledged."""
    from selenium.webdriver.common.by import By

    from core import clock
    from core.alarms import AlarmConfig, AlarmRules
    from core.estimate import Estimate
    from monitor.alarms import attach_alarms
    from monitor.pipeline import Pipeline
    from monitor.web import HttpOptions, start_ward_server

    pipeline = Pipeline()
    pipeline.start()
    alarms = attach_alarms(pipeline, AlarmConfig(AlarmRules(level=0, level_for_s=0, enabled=("level",))))
    server = start_ward_server(pipeline, HttpOptions(port=0), alarms)
    try:
        pipeline.deliver(Estimate("bed-9", clock.now(), 50.0, (0.2, 0.5, 0.3), smoothed=50.0, state="ok"))
        (alarm,) = alarms.active("bed-9")
        browser.get(server.url + "/")
        assert wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#tiles button.ack")) == 1, 20, 0.2)
        button = _ack_button(browser, "bed-9")
        assert not button.is_enabled() and "without an access token" in button.get_attribute("title")
        assert browser.find_element(By.ID, "mode").is_displayed()  # "read-only" in the header
        DOCS.mkdir(exist_ok=True)
        browser.save_screenshot(str(DOCS / "ward-ack-read-only.png"))
        browser.execute_script("PainMon.acknowledge(arguments[0], arguments[1])", "bed-9",
                               {"alarm_id": alarm.alarm_id, "kind": "level", "state": "raised", "message": "m"})
        browser.find_element(By.ID, "access-token").send_keys("some-token-of-another-server")
        browser.find_element(By.ID, "access-ok").click()
        error = browser.find_element(By.ID, "access-error")
        assert wait_until(lambda: "read-only (403)" in error.text, 10, 0.05), error.text
        assert _alarm_state(server.url, "bed-9", alarm.alarm_id) == "raised"
        assert browser.execute_script("return sessionStorage.getItem('painmon-token')") is None
    finally:
        pipeline.stop()


def test_a_server_beyond_loopback_asks_the_page_for_the_token_before_it_shows_data(browser):
    """Every read of such a server needs the token: the page asks for it in the dialog (a
    wrong one is refused with the reason), then shows the ward; the address never holds it."""
    from selenium.webdriver.common.by import By

    from core import clock
    from core.estimate import Estimate
    from monitor.pipeline import Pipeline
    from monitor.ward import WardState
    from monitor.web import HttpOptions, WebServer

    pipeline = Pipeline()
    pipeline.start()
    ward = WardState(hub=pipeline.hub)
    pipeline.add_listener(ward.on_estimate)
    server = WebServer(ward, HttpOptions("0.0.0.0", 0, token=TOKEN)).start()
    try:
        pipeline.deliver(Estimate("bed-5", clock.now(), 30.0, (0.6, 0.3, 0.1), smoothed=30.0, state="ok"))
        url = f"http://127.0.0.1:{server.port}/"
        browser.get(url)
        dialog = browser.find_element(By.ID, "access-dialog")
        assert wait_until(dialog.is_displayed, 10, 0.05)
        assert "needs its access token" in browser.find_element(By.ID, "access-title").text
        assert not browser.find_element(By.ID, "access-by").is_displayed()
        assert tiles(browser) == []
        browser.find_element(By.ID, "access-token").send_keys("wrong-token-0123456789")
        browser.find_element(By.ID, "access-ok").click()
        error = browser.find_element(By.ID, "access-error")
        assert wait_until(lambda: "refused this token (401)" in error.text, 10, 0.05), error.text
        browser.find_element(By.ID, "access-token").send_keys(TOKEN)
        browser.find_element(By.ID, "access-ok").click()
        assert wait_until(lambda: [t["subject"] for t in tiles(browser)] == ["bed-5"], 15, 0.1)
        assert not dialog.is_displayed()
        assert wait_until(lambda: browser.find_element(By.ID, "live").text == "live", 10, 0.1)  # the feed too
        assert browser.current_url == url and TOKEN not in browser.current_url
        assert browser.execute_script("return sessionStorage.getItem('painmon-token')") == TOKEN
    finally:
        server.stop()
        pipeline.stop()
