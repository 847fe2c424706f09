"""The ward API over real HTTP (uvicorn on a free port): schema, `since` paging, tokens and
binding rules, hostile subject ids, events, the live feed, TLS."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
from helpers import wait_until

from core.alarms import AlarmConfig, AlarmRules
from core.estimate import Estimate
from monitor.alarms import attach_alarms
from monitor.pipeline import Pipeline
from monitor.web import HttpOptions, WebServer, WebServerError, http_options, start_ward_server
from monitor.web.server import parse_hostport, read_token

TOKEN = "a-long-enough-test-token-0123456789"
HOSTILE = ["<script>alert(1)</script>", "\"quoted\" 'single' </b>&amp;", "ü/é %2F ?#", "y" * 60_000]


def call(url: str, method: str = "GET", body: dict | bytes | None = None, token: str | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def sid_url(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


@pytest.fixture
def ward():
    """A pipeline (no engine: estimates are delivered by the test) with alarms and a server
    on a free loopback port, with a token."""
    pipeline = Pipeline()
    pipeline.start()
    alarms = attach_alarms(pipeline, AlarmConfig(AlarmRules(level=60, level_for_s=0, enabled=("level",))))
    server = start_ward_server(pipeline, HttpOptions(port=0, token=TOKEN), alarms)
    try:
        yield pipeline, server
    finally:
        pipeline.stop()


def deliver(pipeline: Pipeline, subject: str, n: int, t0: float = 1000.0, headline: float = 40.0) -> None:
    for i in range(n):
        pipeline.deliver(Estimate(subject, t0 + i, headline, (0.5, 0.3, 0.2), smoothed=headline, state="ok"))


def test_openapi_schema_documents_every_api_route_and_the_answers_fit_it(ward):
    pipeline, server = ward
    deliver(pipeline, "bed-1", 3)
    status, schema = call(server.url + "/openapi.json")
    assert status == 200 and schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ("/api/subjects", "/api/subjects/{subject}", "/api/subjects/{subject}/estimates", "/api/health",
                 "/api/subjects/{subject}/alarms/{alarm_id}/ack", "/api/subjects/{subject}/events", "/api/stream"):
        assert path in paths, path
    assert paths["/api/subjects/{subject}/alarms/{alarm_id}/ack"]["post"]["security"] == [{"bearer": []}]
    tile_keys = set(schema["components"]["schemas"]["Tile"]["properties"])
    _, listing = call(server.url + "/api/subjects")
    assert listing["read_only"] is False  # a token is set: the pages offer Acknowledge
    assert set(listing) <= set(paths["/api/subjects"]["get"]["responses"]["200"]["content"]["application/json"]
                               ["schema"]["properties"])
    (tile,) = listing["subjects"]
    assert set(tile) == tile_keys | {"mode"} or set(tile) >= tile_keys
    assert tile["subject"] == "bed-1" and tile["headline"] == 40.0 and tile["band"] == "low"
    assert tile["state"] == "ok" and tile["state_text"] == "ok"
    assert tile["sparkline"] == [[1002.0, 40.0]]  # one point per 5 s: the newest of 1000-1004
    assert tile["instance"]["label"].endswith("shard 1/1")
    est_keys = set(schema["components"]["schemas"]["Estimate"]["properties"])
    _, page = call(server.url + "/api/subjects/bed-1/estimates")
    assert est_keys <= set(page["estimates"][0])
    alarm_keys = schema["components"]["schemas"]["AlarmEvent"]["required"]
    deliver(pipeline, "bed-1", 1, t0=2000.0, headline=90.0)  # level 60: raised
    _, detail = call(server.url + "/api/subjects/bed-1")
    assert list(detail["alarm_history"][0]) == alarm_keys
    assert detail["latest"]["headline"] == 90.0 and detail["alarms"][0]["state"] == "raised"
    status, health = call(server.url + "/api/health")
    assert status == 200 and health["subjects"] == 1 and health["read_only"] is False
    assert {"streams", "engine", "recording", "instance"} <= set(health)


def test_since_paging_walks_every_estimate_once(ward):
    pipeline, server = ward
    deliver(pipeline, "bed-2", 25, t0=500.0)
    base = server.url + "/api/subjects/bed-2/estimates"
    seen, since, pages = [], None, 0
    while True:
        q = {"limit": 10} | ({"since": repr(since)} if since is not None else {})
        status, page = call(base + "?" + urllib.parse.urlencode(q))
        assert status == 200
        seen += [e["t_end"] for e in page["estimates"]]
        pages += 1
        if page["next"] is None:
            break
        since = page["next"]
    assert seen == [500.0 + i for i in range(25)] and pages == 3
    _, tail = call(base + "?since=519.5")
    assert [e["t_end"] for e in tail["estimates"]] == [520.0 + i for i in range(5)] and tail["next"] is None
    assert call(base + "?since=524")[1]["estimates"] == []  # since is exclusive
    assert call(base + "?since=soon")[0] == 400
    assert call(base + "?since=nan")[0] == 400
    assert call(base + "?limit=0")[0] == 400
    assert len(call(base + "?limit=100000")[1]["estimates"]) == 25  # capped, not refused
    assert call(server.url + "/api/subjects/nobody/estimates")[0] == 404


def test_hostile_subject_ids_round_trip_as_data(ward):
    pipeline, server = ward
    for i, sid in enumerate(HOSTILE):
        deliver(pipeline, sid, 2, t0=100.0 * (i + 1), headline=70.0)  # each raises a level alarm
    _, listing = call(server.url + "/api/subjects")
    assert sorted(t["subject"] for t in listing["subjects"]) == sorted(HOSTILE)
    for sid in HOSTILE:
        status, detail = call(server.url + "/api/subjects/" + sid_url(sid))
        assert status == 200 and detail["subject"] == sid and detail["latest"]["subject"] == sid
        status, page = call(server.url + "/api/subjects/" + sid_url(sid) + "/estimates")
        assert status == 200 and len(page["estimates"]) == 2
        (alarm,) = detail["alarms"]
        status, event = call(f"{server.url}/api/subjects/{sid_url(sid)}/alarms/{alarm['alarm_id']}/ack",
                             "POST", {"by": "<b>nurse</b>"}, token=TOKEN)
        assert status == 200 and event["subject"] == sid and event["by"] == "<b>nurse</b>"
    # the page itself never contains data: everything arrives as JSON and is set as text
    with urllib.request.urlopen(server.url + "/", timeout=10) as r:
        html = r.read().decode()
        csp = r.headers["Content-Security-Policy"]
    assert "<script>alert" not in html and "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_posts_need_the_token_and_events_become_markers(ward):
    pipeline, server = ward
    deliver(pipeline, "bed-3", 1, headline=80.0)
    (alarm,) = call(server.url + "/api/subjects/bed-3")[1]["alarms"]
    ack = f"{server.url}/api/subjects/bed-3/alarms/{alarm['alarm_id']}/ack"
    assert call(ack, "POST", {})[0] == 401
    assert call(ack, "POST", {}, token=TOKEN + "x")[0] == 401
    assert call(ack, "POST", {"by": 3}, token=TOKEN)[0] == 400
    assert call(ack, "POST", b"[1, 2]", token=TOKEN)[0] == 400
    assert call(f"{server.url}/api/subjects/bed-3/alarms/999/ack", "POST", {}, token=TOKEN)[0] == 404
    assert call(ack, "POST", {}, token=TOKEN)[0] == 200
    events = f"{server.url}/api/subjects/bed-3/events"
    assert call(events, "POST", {"label": "medication given"})[0] == 401
    assert call(events, "POST", {"label": "x" * 201}, token=TOKEN)[0] == 400
    assert call(events, "POST", {"label": "  "}, token=TOKEN)[0] == 400
    assert call(events, "POST", {"label": "medication given"}, token=TOKEN)[0] == 200
    assert call(f"{server.url}/api/subjects/nobody/events", "POST", {"label": "x"}, token=TOKEN)[0] == 404
    labels = [(m.label, m.source) for m in pipeline.hub.markers("bed-3")]
    assert ("note:medication given", "user") in labels
    assert ("alarm:level:acknowledged", "alarm") in labels


def test_read_only_without_token_and_token_required_off_localhost():
    pipeline = Pipeline()
    pipeline.start()
    try:
        ro = start_ward_server(pipeline, HttpOptions(port=0), None)
        deliver(pipeline, "bed-4", 1)
        status, listing = call(ro.url + "/api/subjects")
        assert status == 200 and listing["read_only"] is True  # loopback reads need no token
        assert call(ro.url + "/api/subjects/bed-4")[1]["read_only"] is True  # the pages disable Acknowledge
        status, body = call(ro.url + "/api/subjects/bed-4/events", "POST", {"label": "x"}, token=TOKEN)
        assert status == 403 and "read-only" in body["error"]
        # any address beyond loopback: refused without a token ...
        with pytest.raises(WebServerError, match="needs a token"):
            WebServer(ro.ward, HttpOptions("0.0.0.0", 0))
        with pytest.raises(WebServerError, match="at least 16"):
            WebServer(ro.ward, HttpOptions("0.0.0.0", 0, token="short"))
        # ... and with one, every API read wants it too (the pages hold no data)
        wide = WebServer(ro.ward, HttpOptions("0.0.0.0", 0, token=TOKEN)).start()
        try:
            url = f"http://127.0.0.1:{wide.port}"
            assert call(url + "/api/subjects")[0] == 401
            assert call(url + "/api/health")[0] == 401
            assert call(url + "/api/stream")[0] == 401
            assert call(url + "/api/subjects", token=TOKEN)[0] == 200
            with urllib.request.urlopen(url + "/", timeout=10) as r:
                assert r.status == 200
        finally:
            wide.stop()
        assert TOKEN not in repr(HttpOptions("0.0.0.0", 1, token=TOKEN))
    finally:
        pipeline.stop()


def test_http_options_from_the_command_line(tmp_path):
    from argparse import Namespace

    def args(**kw):
        base = {"http": None, "http_token_file": None, "http_cert": None, "http_key": None}
        return Namespace(**(base | kw))

    assert http_options(args()) is None
    assert http_options(args(http="8080"), env={}) == HttpOptions("127.0.0.1", 8080)
    assert parse_hostport("[::1]:9000") == ("::1", 9000) and parse_hostport(":81") == ("127.0.0.1", 81)
    with pytest.raises(WebServerError, match="needs a token"):
        http_options(args(http="0.0.0.0:8080"), env={})
    assert http_options(args(http="0.0.0.0:8080"), env={"PAINMON_HTTP_TOKEN": TOKEN}).token == TOKEN
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert read_token({}, str(token_file)) == TOKEN
    (tmp_path / "empty").write_text("")
    with pytest.raises(WebServerError, match="empty"):
        read_token({}, str(tmp_path / "empty"))
    with pytest.raises(WebServerError, match="bad port"):
        parse_hostport("host:99999")
    with pytest.raises(WebServerError, match="both"):
        http_options(args(http="8080", http_cert=str(token_file)), env={})


def test_serve_refuses_a_wide_bind_without_token(capsys, monkeypatch):
    from monitor.cli import main

    monkeypatch.delenv("PAINMON_HTTP_TOKEN", raising=False)
    assert main(["serve", "--lsl", "--http", "0.0.0.0:8080"]) == 2
    assert "needs a token" in capsys.readouterr().out
    assert main(["serve", "--lsl", "--alarms", "/nonexistent/alarms.toml"]) == 2
    assert "cannot read alarm config" in capsys.readouterr().out


def test_live_feed_streams_estimates_and_alarms(ward):
    pipeline, server = ward
    req = urllib.request.Request(server.url + "/api/stream", headers={"Accept": "text/event-stream"})
    lines: list[str] = []
    with urllib.request.urlopen(req, timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.readline().startswith(b"retry:")
        deliver(pipeline, "bed-5", 1, headline=75.0)
        assert wait_until(lambda: lines.append(stream.readline().decode().rstrip("\n")) or
                          sum(x.startswith("event:") for x in lines) >= 2, 10, 0)
    events = [x.split(": ", 1)[1] for x in lines if x.startswith("event:")]
    data = [json.loads(x.split(": ", 1)[1]) for x in lines if x.startswith("data:")]
    assert sorted(events[:2]) == ["alarm", "estimate"]
    assert {d["subject"] for d in data} == {"bed-5"}


def test_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"  # openssl: .ci/run installs it
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    pipeline = Pipeline()
    pipeline.start()
    try:
        server = start_ward_server(pipeline, HttpOptions(port=0, certfile=str(cert), keyfile=str(key)), None)
        deliver(pipeline, "bed-6", 1)
        assert server.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        status, listing = call(server.url + "/api/subjects", context=context)
        assert status == 200 and listing["subjects"][0]["subject"] == "bed-6"
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP to the TLS port
            urllib.request.urlopen(server.url.replace("https", "http") + "/api/subjects", timeout=5).read()
    finally:
        pipeline.stop()


def test_a_port_in_use_is_a_clear_error(ward):
    _pipeline, server = ward
    with pytest.raises(WebServerError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        WebServer(server.ward, HttpOptions(port=server.port)).start()
