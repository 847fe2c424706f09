"""Makes the README's ward screenshots from one real run: the dashboard (offscreen) with the
bundled model on simulated subjects with random pain schedules, alarms on, and its ward
page (``--http``) in Debian's headless Chromium.

    PYTHONPATH=. QT_QPA_PLATFORM=offscreen python docs/make_ward_screenshots.py --subjects 6 --seconds 240

Writes docs/ward-overview.png (the overview tab) and docs/ward-browser-demo.png (the page).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    """Run the dashboard for --seconds, then grab the overview and the ward page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PAINMON_SETTINGS", str(Path(tempfile.mkdtemp()) / "settings.ini"))

    from core.alarms import AlarmConfig, AlarmRules
    from devices.simulator import PainSchedule, SimulatedWearable, SimulatorSource, subject_seed
    from monitor.gui.app import application, build_window
    from monitor.gui.settings import GuiSettings
    from monitor.web import HttpOptions

    app = application()
    schedules = [PainSchedule.random(args.seconds + 60, subject_seed(args.seed, i)) for i in range(args.subjects)]
    wearable = SimulatedWearable(args.subjects, args.seed, schedules, subject_prefix="bed")
    # alarms a little more eager than the defaults, so a few minutes show some
    rules = AlarmRules(level=60.0, level_for_s=20.0, rise_points=20.0, rise_within_min=2.0)
    window = build_window([SimulatorSource(wearable)], settings=GuiSettings(),
                          ward=(AlarmConfig(rules), HttpOptions(port=0)))
    window.resize(1280, 800)
    window.show()
    (server,) = [h for h in window.session.pipeline.helpers if hasattr(h, "url")]
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    window.tabs.setCurrentWidget(window.overview)
    # the status bar lists every stream of every subject on one line; with six subjects it
    # would stretch the offscreen window to thousands of pixels: hide it for this picture
    window.statusBar().hide()
    for _ in range(3):
        app.processEvents()
        window.resize(1280, 560)
    window.overview.refresh(force=True)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    print(f"window {window.width()} x {window.height()}")
    window.grab().save(str(ROOT / "docs" / "ward-overview.png"))

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,800",
                f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(server.url + "/")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:  # the page fills from the API, then live
            app.processEvents()
            time.sleep(0.05)
        driver.save_screenshot(str(ROOT / "docs" / "ward-browser-demo.png"))
    finally:
        driver.quit()
        window.close()
    print("wrote docs/ward-overview.png and docs/ward-browser-demo.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
