"""``reldist serve`` under a real uvicorn on 127.0.0.1 (the real command, in a subprocess):
RFC 8058 one-click POST (urlencoded and multipart), the GET page and its button (clicked in
headless Chromium), forged and unknown tokens, /health, the access log and SIGTERM, each checked
against the ledger file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import RELEASE_ID, parse, run
from test_preview import CHROMEDRIVER, CHROMIUM, chromium

BASE = "https://press.ecomuseum.example/unsubscribe/{token}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def sent(office: Path) -> dict[str, str]:
    """The example sent to the outbox with one-click links on: {address: token}."""
    toml = office / "reldist.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("# url = ", "url = ", 1), encoding="utf-8")
    code, output = run("send", RELEASE_ID, "--yes")
    assert code == 0, output
    tokens = {}
    for path in (office / "outbox" / RELEASE_ID).glob("*.eml"):
        message = parse(path.read_bytes())
        url = str(message["List-Unsubscribe"]).split("<https://press.ecomuseum.example", 1)[1].split(">")[0]
        tokens[message["To"].addresses[0].addr_spec] = url.rsplit("/", 1)[1]
    return tokens


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read().decode()


@contextlib.contextmanager
def serving(root: Path, log: Path) -> Iterator[Server]:
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "reldist", "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=root,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        server = Server(process, port)
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError):
                    if server.request("GET", "/health")[0] == 200:
                        break
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "reldist serve did not start"
                time.sleep(0.05)
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)


def ledger(root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(suppressions as (address, source), events as (address, kind, source))."""
    with sqlite3.connect(root / "reldist.db") as db:
        suppressed = sorted(db.execute("SELECT address, source FROM suppressions"))
        events = sorted(
            db.execute(
                "SELECT d.address, e.kind, e.source FROM events e JOIN deliveries d ON d.id = e.delivery_id"
            )
        )
    return suppressed, events


def suppressed_before(root: Path) -> list[tuple[str, str]]:
    return ledger(root)[0]


def test_one_click_get_forged_health_log_and_sigterm(
    office: Path, sent: dict[str, str], tmp_path: Path
) -> None:
    before = suppressed_before(office)
    ivan, olga, rachel = "aigerim.nurlanova@example.org", "d.volkov@example.net", "r.walsh@example.org"
    assert {ivan, olga, rachel} <= set(sent)
    log = tmp_path / "serve.log"
    with serving(office, log) as server:
        assert server.request("GET", "/health")[:1] == (200,)

        # GET changes nothing: a page in the recipient's language with one POST button
        status, kind, page = server.request("GET", f"/unsubscribe/{sent[ivan]}")
        assert status == 200 and kind.startswith("text/html")
        assert '<html lang="ru">' in page and "Отписаться" in page and "ЭкоМузей" in page
        assert page.count("<form") == 1 and 'method="post"' in page and "<script" not in page
        assert ivan not in page
        status, _, page = server.request("GET", f"/unsubscribe/{sent[rachel]}")
        assert status == 200 and '<html lang="en">' in page and "Unsubscribe" in page
        assert ledger(office) == (before, [])

        # RFC 8058: urlencoded one-click, then the same again (harmless), then multipart
        one_click = b"List-Unsubscribe=One-Click"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for _ in range(2):
            status, _, body = server.request("POST", f"/unsubscribe/{sent[ivan]}", one_click, form)
            assert status == 200, body
        boundary = "reldist-test-boundary"
        multipart = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            f"One-Click\r\n--{boundary}--\r\n"
        ).encode()
        status, _, _ = server.request(
            "POST",
            f"/unsubscribe/{sent[olga]}",
            multipart,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert status == 200
        suppressed, events = ledger(office)
        assert suppressed == sorted([*before, (ivan, "unsubscribe-link"), (olga, "unsubscribe-link")])
        assert events == sorted(
            [(ivan, "unsubscribed", "unsubscribe-link"), (olga, "unsubscribed", "unsubscribe-link")]
        )

        # forged, cut short, or signed but naming nobody in the ledger: 404, nothing changes
        token = sent[rachel]
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        from reldist.tokens import load_keys

        keys = load_keys(key_file=office / "unsubscribe.key", key_env=None, place="")
        assert keys is not None
        stranger = keys.sign(RELEASE_ID, "stranger@example.org")
        other_release = keys.sign("2025-01-other", rachel)
        for bad in (forged, token[:30], stranger, other_release):
            for method, body in (("GET", None), ("POST", one_click)):
                status, kind, page = server.request(method, f"/unsubscribe/{bad}", body, form if body else {})
                assert status == 404 and "not valid" in page, (bad, method)
        assert server.request("GET", "/somewhere/else")[0] == 404
        assert ledger(office)[0] == suppressed

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=10) == 0
    text = log.read_text(encoding="utf-8")
    assert "POST <link> 200" in text and "GET <link> 404" in text and "GET /health 200" in text
    for address, token in sent.items():
        assert address not in text and token not in text


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason="needs chromium and chromedriver")
def test_the_page_button_unsubscribes_in_chromium(office: Path, sent: dict[str, str], tmp_path: Path) -> None:
    rachel = "r.walsh@example.org"
    before = suppressed_before(office)
    with serving(office, tmp_path / "serve.log") as server, chromium(tmp_path / "profile") as browser:
        browser.do("POST", "/url", {"url": f"{server.base}/unsubscribe/{sent[rachel]}"})
        assert browser.wait(lambda: browser.text("h1"), "the page") == "Unsubscribe"
        assert ledger(office) == (before, [])  # a browser's GET changes nothing
        browser.click("button")
        assert browser.wait(lambda: browser.text("h1") == "You are unsubscribed", "the confirmation")
        assert "will not send press releases" in browser.text("body")
    suppressed, events = ledger(office)
    assert (rachel, "unsubscribe-link") in suppressed
    assert events == [(rachel, "unsubscribed", "unsubscribe-link")]


def test_listen_must_be_host_and_port(office: Path) -> None:
    code, output = run("serve", "--listen", "localhost")
    assert code == 2 and "HOST:PORT" in output
    os.unlink(office / "unsubscribe.key")
    code, output = run("serve", "--listen", f"127.0.0.1:{free_port()}")
    assert code == 1 and "reldist keygen" in output
