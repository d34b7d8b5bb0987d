"""``reldist preview``: the static page of every recipient's message, read back and driven in Chromium.

The page's files are read back (the index and each recipient's data, compared with the .eml a
real send writes); the browser test opens the page from file:// in headless Chromium through
chromedriver (the W3C WebDriver protocol spoken over HTTP on 127.0.0.1, no client library),
switches recipients, reads the HTML part inside the sandboxed frame, takes a screenshot, and
checks with a local HTTP server that a remote image in the release is never fetched.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import RELEASE_ID, make_workspace, parse, run, set_lists, write_contacts
from reldist.job import Job
from reldist.preview import write_preview
from reldist.release import find_release, load_release
from reldist.workspace import open_workspace

RELEASE = f"releases/{RELEASE_ID}"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def recipient_data(folder: Path) -> dict[str, dict[str, Any]]:
    """Each recipients/N.js of a preview, by address."""
    found = {}
    for path in (folder / "recipients").glob("*.js"):
        text = path.read_text(encoding="utf-8")
        match = re.fullmatch(r"reldistPreview\.receive\((\d+), (.*)\);\n", text, re.DOTALL)
        assert match, path
        data = json.loads(match.group(2))
        assert data["n"] == int(match.group(1)) == int(path.stem)
        found[data["address"]] = data
    return found


def test_every_recipient_grouped_with_counts_and_the_skipped_rows(office: Path) -> None:
    write_contacts(
        office,
        "extra",
        ["ivan@@mail.kz,Плохой,ru,,,,,,,", "R.Walsh@example.org,Rachel again,en,,,,,,,"],
    )
    toml = office / "releases" / RELEASE_ID / "release.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('lists = ["example"]', 'lists = ["example", "extra"]'),
        encoding="utf-8",
    )
    code, out = run("preview", RELEASE)
    assert code == 0, out
    folder = office / "preview" / RELEASE_ID
    index = (folder / "index.html").read_text(encoding="utf-8")
    data = recipient_data(folder)
    code, check = run("check", RELEASE)
    ready = int(re.search(r"(\d+) recipients? ready", check).group(1))  # type: ignore[union-attr]
    assert len(data) == ready and f"{ready} recipients" in out

    # groups by languages and template, each with its count, and every recipient listed once
    groups = re.findall(r'<h2>([^<]+?) <span class="count">(\d+)</span></h2>', index)
    combos = {name: int(n) for name, n in groups if name != "Not sent"}
    assert sum(combos.values()) == ready
    assert combos["en, ru, kk · release"] == sum(
        1 for d in data.values() if d["languages"] == ["en", "ru", "kk"] and d["template"] == "release"
    )
    assert "en · wire" in combos
    for address in data:
        assert index.count(f'<span class="addr">{address}</span>') == 1
    # skipped, do-not-contact and merged rows, each with its place and reason
    assert "contacts/extra.csv:2" in index and "is not an email address" in index
    assert "old.newsdesk@example.net is on the do-not-contact list" in index
    assert "contacts/extra.csv:3" in index and "merged" in index
    assert dict(groups)["Not sent"] == "3"


def test_a_recipients_data_is_the_message_a_send_writes(office: Path) -> None:
    assert run("preview", RELEASE)[0] == 0
    walsh = recipient_data(office / "preview" / RELEASE_ID)["r.walsh@example.org"]
    assert run("send", RELEASE, "--yes")[0] == 0
    (eml,) = (office / "outbox" / RELEASE_ID).glob("*-r.walsh@example.org.eml")
    sent = parse(eml.read_bytes())

    headers = dict(walsh["headers"])
    assert headers["From"] == "ЭкоМузей Караганда <press@ecomuseum.example>"  # decoded, not =?utf-8?b?
    assert headers["To"] == "Rachel Walsh <r.walsh@example.org>"
    assert headers["Subject"] == str(sent["Subject"]) == walsh["subject"]
    assert headers["List-Unsubscribe"] == str(sent["List-Unsubscribe"])
    assert walsh["languages"] == ["en", "ru", "kk"] and walsh["template"] == "release"
    assert walsh["text"] == sent.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    html = sent.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert walsh["html"].rstrip("\n") == html.replace("\r\n", "\n").rstrip("\n")
    # size on the wire: the same message but for the Date and Message-ID
    assert abs(walsh["size"] - eml.stat().st_size) < 40
    assert walsh["attachments"] == []
    assert 10_000 < walsh["html_sent"] < walsh["size"]


def test_attachments_are_listed(office: Path) -> None:
    folder = office / "releases" / RELEASE_ID
    (folder / "files").mkdir()
    (folder / "files" / "memorandum.pdf").write_bytes(b"%PDF-1.4\n" + b"x" * 1000)
    toml = folder / "release.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            'template = "release"', 'template = "release"\nattachments = ["files/memorandum.pdf"]'
        ),
        encoding="utf-8",
    )
    assert run("preview", RELEASE)[0] == 0
    for data in recipient_data(office / "preview" / RELEASE_ID).values():
        assert data["attachments"] == [
            {"filename": "memorandum.pdf", "content_type": "application/pdf", "size": 1009}
        ]


def test_the_page_itself_refers_to_nothing_outside_its_folder(office: Path) -> None:
    assert run("preview", RELEASE)[0] == 0
    index = (office / "preview" / RELEASE_ID / "index.html").read_text(encoding="utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', index)
    assert csp is not None
    assert "default-src 'none'" in csp.group(1) and "img-src data:" in csp.group(1)
    targets = re.findall(r'(?:src|href)="([^"]*)"', index)
    assert targets and all(t.startswith("#recipient=") for t in targets), targets
    assert "recipients/" in index  # the per-recipient files are loaded from the folder


def test_out_replaces_an_old_preview_and_open_opens_it(
    office: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "elsewhere"
    (out / "recipients").mkdir(parents=True)
    (out / "recipients" / "999.js").write_text("stale", encoding="utf-8")
    (out / "recipients" / "notes.txt").write_text("mine", encoding="utf-8")
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    code, output = run("preview", RELEASE, "--out", str(out), "--open")
    assert code == 0, output
    assert not (out / "recipients" / "999.js").exists()
    assert (out / "recipients" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert opened == [(out / "index.html").resolve().as_uri()]
    assert not (office / "preview").exists()


def test_memory_stays_flat_as_the_list_grows(tmp_path: Path) -> None:
    def peak(recipients: int) -> tuple[int, int]:
        root = make_workspace(tmp_path / f"office{recipients}")
        rows = ["email,name,lang"] + [
            f"j{n:04d}@example.org,Журналист {n},{('ru', 'en')[n % 2]}" for n in range(recipients)
        ]
        (root / "contacts" / "generated.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        set_lists(root, "generated")
        ws = open_workspace(start=root)
        job = Job(ws, load_release(find_release(RELEASE_ID, ws.root), workspace=ws.root))
        write_preview(job)  # warm up: templates compiled, caches filled
        tracemalloc.start()
        try:
            write_preview(job)
            top = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        written = sum(p.stat().st_size for p in (root / "preview").rglob("*.js"))
        return top, written

    small_peak, small_written = peak(10)
    large_peak, large_written = peak(160)
    assert large_written - small_written > 4_000_000  # 150 more messages of ~33 KB written...
    assert large_peak - small_peak < 1_000_000  # ...without holding them


# -- in a real browser -----------------------------------------------------------------------------

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriver:
    """Just enough of the W3C WebDriver protocol to drive chromedriver on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["value"]

    def do(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def find(self, css: str) -> str:
        return str(self.do("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css: str) -> list[str]:
        return [e[ELEMENT] for e in self.do("POST", "/elements", {"using": "css selector", "value": css})]

    def text(self, css: str) -> str:
        return str(self.do("GET", f"/element/{self.find(css)}/text"))

    def click(self, css: str) -> None:
        self.do("POST", f"/element/{self.find(css)}/click", {})

    def wait(self, predicate: Any, what: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(urllib.error.URLError):
                value = predicate()
                if value:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert CHROMEDRIVER is not None and CHROMIUM is not None
    process = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}", "--allowed-ips=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = WebDriver(port)
    try:
        driver.wait(lambda: driver.call("GET", "/status")["ready"], "chromedriver")
        options = {
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1400,1000",
            ],
        }
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        driver.session = driver.call("POST", "/session", {"capabilities": capabilities})["sessionId"]
        try:
            yield driver
        finally:
            driver.call("DELETE", f"/session/{driver.session}")
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []  # noqa: RUF012 - one list per test, set on a subclass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason="needs chromium and chromedriver")
def test_in_chromium_switching_recipients_shows_their_messages(office: Path, tmp_path: Path) -> None:
    handler = type("Handler", (_Counting,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pixel = f"http://127.0.0.1:{server.server_address[1]}/pixel.png"
    en = office / "releases" / RELEASE_ID / "en.md"
    en.write_text(en.read_text(encoding="utf-8") + f"\n![EcoMuseum logo]({pixel})\n", encoding="utf-8")
    try:
        assert run("preview", RELEASE)[0] == 0
        folder = office / "preview" / RELEASE_ID
        data = recipient_data(folder)
        walsh, first = data["r.walsh@example.org"], min(data.values(), key=lambda d: d["n"])
        url = (folder / "index.html").resolve().as_uri()
        with chromium(tmp_path / "profile") as browser:
            browser.do("POST", "/url", {"url": url})
            # without a hash the first recipient is shown
            browser.wait(lambda: first["address"] in browser.text("#meta"), "the first recipient")
            assert browser.text("#subject") == first["subject"]

            # choose Rachel Walsh in the list
            browser.click(f'li[data-n="{walsh["n"]}"] a')
            browser.wait(lambda: "r.walsh@example.org" in browser.text("#meta"), "Rachel Walsh's message")
            assert browser.do("GET", "/url").endswith(f"#recipient={walsh['n']}")
            assert (
                browser.text("#subject") == "EU project supports Karaganda region in tackling climate change"
            )
            assert "Dear Ms Walsh," in browser.text("#text")
            assert "List-Unsubscribe" in browser.text("#headers")
            active = browser.find_all("li.active")
            assert len(active) == 1
            assert browser.do("GET", f"/element/{active[0]}/attribute/data-n") == str(walsh["n"])

            # the HTML part, inside the sandboxed frames, at both widths
            desktop = browser.do("GET", f"/element/{browser.find('#desktop')}/rect")
            mobile = browser.do("GET", f"/element/{browser.find('#mobile')}/rect")
            assert desktop["width"] >= 600 and 375 <= mobile["width"] < 420
            browser.do("POST", "/frame", {"id": {ELEMENT: browser.find("#desktop")}})
            body = browser.wait(lambda: browser.text("body"), "the HTML part")
            assert "Dear Ms Walsh," in body and "Русская версия" in body
            image = browser.find(f'img[src="{pixel}"]')  # the remote image is in the message...
            assert browser.do("GET", f"/element/{image}/attribute/alt") == "EcoMuseum logo"
            browser.do("POST", "/frame/parent", {})
            screenshot = base64.b64decode(browser.do("GET", "/screenshot"))
            (tmp_path / "preview.png").write_bytes(screenshot)
            assert screenshot.startswith(b"\x89PNG") and len(screenshot) > 50_000

            # Next goes down the list; a URL with a hash opens that recipient
            browser.click("#next")
            after = next(d for d in data.values() if d["n"] == walsh["n"] + 1)
            browser.wait(lambda: after["address"] in browser.text("#meta"), "the next recipient")
            browser.do("POST", "/url", {"url": f"{url}#recipient={first['n'] + 1}"})
            second = next(d for d in data.values() if d["n"] == first["n"] + 1)
            browser.wait(lambda: second["address"] in browser.text("#meta"), "the recipient named in the URL")

            # the filter narrows the list
            browser.do("POST", f"/element/{browser.find('#filter')}/value", {"text": "walsh"})
            shown = browser.wait(
                lambda: (
                    [
                        e
                        for e in browser.find_all("li[data-n]")
                        if browser.do("GET", f"/element/{e}/displayed") is True
                    ]
                    if len(browser.find_all("li.hidden")) > 0
                    else None
                ),
                "the filter",
            )
            assert len(shown) == 1
        assert handler.requests == []  # ...and was never fetched
    finally:
        server.shutdown()
        server.server_close()
