"""``reldist dispatch`` and ``reldist schedule``: due releases go out from cron once, in order.

Real workspaces (copies of the example with a six-journalist list), real SQLite ledgers, the
outbox transport and a real aiosmtpd server. The library runs with an injected clock (nothing
sleeps); the commands run through CliRunner and as ``python -m reldist`` subprocesses: two at
once, and one killed with SIGKILL in the middle of a message.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from helpers import RELEASE_ID, make_workspace, parse, parts, set_lists, write_contacts
from reldist.cli import main
from reldist.describe import describe_time
from reldist.dispatch import dispatch
from reldist.job import Job
from reldist.release import load_release
from reldist.schedule import LATE_AFTER, Progress, decide, scan, schedule
from reldist.send import send_release
from reldist.workspace import Workspace, open_workspace
from smtpfixtures import SmtpServer, smtp_server

ALMATY = ZoneInfo("Asia/Almaty")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC)  # 10:00 in Almaty
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)

CONTACTS = [
    "aigerim@example.org,Айгерим Нурланова,ru,,Карагандинское обозрение,,,,,",
    "denis@example.net,Денис Волков,ru,,Регион-ТВ,,,,,",
    "laura@example.org,Laura Dzhaksybekova,en,,Steppe Standard,,,,,",
    "rachel@example.org,Rachel Walsh,en,,Eurasia Climate Review,,,,,",
    "saltanat@example.com,Салтанат Ахметова,kk,,Арқа тынысы,,,,,",
    "baurzhan@example.org,Бауыржан Сейтқали,kk,,Дала толқыны,,,,,",
]
ADDRESSES = sorted(row.split(",")[0] for row in CONTACTS)


@pytest.fixture
def office(tmp_path: Path) -> Path:
    """The example workspace (Asia/Almaty) whose release goes to six journalists in ru, en and kk."""
    root = make_workspace(tmp_path / "office")
    write_contacts(root, "press", CONTACTS)
    set_lists(root, "press")
    return root


def add_release(root: Path, rid: str, send_at: str | None = None, **keys: str) -> Path:
    """A copy of the example release as releases/<rid> with top-level keys (TOML values) added."""
    folder = root / "releases" / rid
    shutil.copytree(root / "releases" / RELEASE_ID, folder)
    lines = [f"send_at = {send_at}"] if send_at is not None else []
    lines += [f"{key} = {value}" for key, value in keys.items()]
    toml = folder / "release.toml"
    toml.write_text("\n".join([*lines, toml.read_text(encoding="utf-8")]), encoding="utf-8")
    return folder


def at(when: dt.datetime) -> str:
    """A TOML offset date-time."""
    return when.isoformat(timespec="seconds")


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def configure(root: Path, text: str) -> None:
    with (root / "reldist.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)


def use_smtp(root: Path, port: int) -> None:
    configure(
        root,
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = 1\n'
        "timeout = 10\nretries = 2\nbackoff = 1\n",
    )


def workspace(root: Path) -> Workspace:
    return open_workspace(start=root)


def statuses(root: Path, rid: str) -> dict[str, str]:
    """{address: status} of a release, read from the SQLite file."""
    if not (root / "reldist.db").exists():
        return {}
    with sqlite3.connect(root / "reldist.db") as db:
        return dict(db.execute("SELECT address, status FROM deliveries WHERE release_id = ?", (rid,)))


def counts(root: Path, rid: str) -> Counter[str]:
    return Counter(statuses(root, rid).values())


def outbox(root: Path, rid: str) -> Counter[str]:
    """How many .eml files each address got."""
    return Counter(
        parse(path.read_bytes())["To"].addresses[0].addr_spec
        for path in (root / "outbox" / rid).glob("*.eml")
    )


def log_lines(root: Path, name: str = "dispatch.log") -> list[str]:
    path = root / name
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def received(server: SmtpServer) -> Counter[str]:
    return Counter(rcpt for message in server.messages for rcpt in message.rcpt_tos)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def start_dispatcher(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reldist", "dispatch", "--workspace", str(root)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class FakeClock:
    """A ``time.time`` stand-in that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# -- states and time zones ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "progress", "state"),
    [
        (NOW - dt.timedelta(microseconds=1), Progress(), "waiting"),
        (NOW, Progress(), "due"),
        (NOW + LATE_AFTER, Progress(), "due"),
        (NOW + LATE_AFTER + dt.timedelta(seconds=1), Progress(), "late"),
        (NOW + 24 * HOUR, Progress(), "late"),
        (NOW + 24 * HOUR + dt.timedelta(seconds=1), Progress(), "too late"),
        (NOW + HOUR, Progress({"sent": 2, "queued": 1}, started=True), "in progress"),
        (NOW + HOUR, Progress({"sent": 2, "sending": 1}, started=True), "in progress"),
        (NOW + 48 * HOUR, Progress({"sent": 2, "deferred": 1}, started=True), "too late"),
        # a daily rate held it back: continued however long that takes
        (NOW + 48 * HOUR, Progress({"sent": 2, "queued": 1}, started=True, held=True), "in progress"),
        (NOW + 48 * HOUR, Progress({"sent": 2, "queued": 1}, started=True, held=False), "too late"),
        (NOW + 48 * HOUR, Progress({"sent": 2, "failed": 1, "unknown": 1}, started=True), "done"),
        (NOW - HOUR, Progress({"sent": 3}, started=True), "done"),  # sent by hand before its time
        (NOW + HOUR, Progress({}, started=True), "done"),  # planned, and nobody was on the list
    ],
)
def test_decide(now: dt.datetime, progress: Progress, state: str) -> None:
    assert decide(NOW, now, max_late=24 * HOUR, progress=progress) == state


def test_almaty_is_utc_plus_5_since_march_2024_and_a_release_is_due_at_its_minute(office: Path) -> None:
    assert ALMATY.utcoffset(dt.datetime(2024, 2, 29, 12)) == dt.timedelta(hours=6)
    assert ALMATY.utcoffset(dt.datetime(2024, 3, 1, 12)) == dt.timedelta(hours=5)
    assert ALMATY.utcoffset(dt.datetime(2026, 7, 1, 12)) == dt.timedelta(hours=5)  # no summer time
    add_release(office, "almaty", '"2026-11-28 10:00 Asia/Almaty"')
    ws = workspace(office)

    [entry] = scan(ws, now=NOW - dt.timedelta(seconds=1), ledger=None).entries
    assert (entry.release_id, entry.state, entry.send_at) == ("almaty", "waiting", NOW)
    assert describe_time(entry.send_at, ws.config.timezone) == "2026-11-28 10:00 (UTC+5)"

    early = dispatch(ws, now=NOW - dt.timedelta(seconds=1))
    assert (early.releases, early.exit_code) == ([], 0)
    assert statuses(office, "almaty") == {}

    result = dispatch(ws, now=NOW)
    assert [(r.release_id, r.action, r.exit_code) for r in result.releases] == [("almaty", "sent", 0)]
    assert statuses(office, "almaty") == dict.fromkeys(ADDRESSES, "sent")
    assert outbox(office, "almaty") == Counter(ADDRESSES)
    empty_run, release_line, run_line = log_lines(office)
    assert empty_run.startswith("2026-11-28T09:59:59+05:00 ") and "event=run releases=0 sent=0 " in empty_run
    assert release_line.startswith(
        f"2026-11-28T10:00:00+05:00 pid={os.getpid()} event=release release=almaty "
    )
    assert "send_at=2026-11-28T10:00:00+05:00 state=due action=sent " in release_line
    assert 'outcome="sent 6" exit=0' in release_line
    assert "event=run releases=1 sent=6 problems=0 exit=0" in run_line
    # The example release has no send_at: dispatch never sends it.
    assert statuses(office, RELEASE_ID) == {}


def test_dst_zone_europe_berlin_around_the_october_change(office: Path) -> None:
    toml = office / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('timezone = "Asia/Almaty"', 'timezone = "Europe/Berlin"'),
        encoding="utf-8",
    )
    # On 25 October 2026 Berlin's clocks go from 03:00 CEST back to 02:00 CET: 02:30 happens twice.
    add_release(office, "first-0230", "2026-10-25T02:30:00+02:00")
    add_release(office, "second-0230", "2026-10-25T02:30:00+01:00")
    add_release(office, "by-name", '"2026-10-25 02:30 Europe/Berlin"')  # a zone name: the first 02:30
    ws = workspace(office)
    assert ws.config.timezone == BERLIN

    before = dt.datetime(2026, 10, 25, 0, 45, tzinfo=dt.UTC)  # 02:45 CEST
    entries = {e.release_id: e for e in scan(ws, now=before, ledger=None).entries}
    assert {rid: e.state for rid, e in entries.items()} == {
        "by-name": "due",
        "first-0230": "due",
        "second-0230": "waiting",
    }
    assert entries["by-name"].send_at == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    assert describe_time(entries["by-name"].send_at, BERLIN) == "2026-10-25 02:30 CEST (UTC+2)"
    assert describe_time(entries["second-0230"].send_at, BERLIN) == "2026-10-25 02:30 CET (UTC+1)"

    first = dispatch(ws, now=before)
    assert [(r.release_id, r.action) for r in first.releases] == [("by-name", "sent"), ("first-0230", "sent")]
    assert statuses(office, "second-0230") == {}

    after = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)  # 02:30 CET, the second time round
    second = dispatch(ws, now=after)
    assert [(r.release_id, r.action, r.exit_code) for r in second.releases] == [("second-0230", "sent", 0)]
    assert outbox(office, "second-0230") == Counter(ADDRESSES)
    lines = log_lines(office)
    assert lines[0].startswith("2026-10-25T02:45:00+02:00 ")
    assert lines[-2].startswith("2026-10-25T02:30:00+01:00 ")
    assert "release=second-0230 send_at=2026-10-25T02:30:00+01:00 " in lines[-2]


def test_due_waiting_late_and_too_late(office: Path) -> None:
    add_release(office, "a-too-late", at(NOW - 25 * HOUR))
    add_release(office, "b-late", at(NOW - 3 * HOUR))
    add_release(office, "c-due", at(NOW))
    add_release(office, "d-waiting", at(NOW + MINUTE))
    ws = workspace(office)
    found = scan(ws, now=NOW, ledger=None)
    assert [(e.release_id, e.state) for e in found.entries] == [
        ("a-too-late", "too late"),
        ("b-late", "late"),
        ("c-due", "due"),
        ("d-waiting", "waiting"),
    ]
    assert found.unscheduled == [RELEASE_ID]

    result = dispatch(ws, now=NOW)
    assert [(r.release_id, r.action, r.exit_code) for r in result.releases] == [
        ("a-too-late", "too late", 3),
        ("b-late", "sent", 0),
        ("c-due", "sent", 0),
    ]
    assert result.exit_code == 3
    assert result.problems == [
        "a-too-late: too late: due 2026-11-27 09:00 (UTC+5), 1 d 1 h ago, more than max_late (1 d); "
        "it was not sent. To send it anyway: reldist send releases/a-too-late"
    ]
    assert statuses(office, "a-too-late") == {}
    assert counts(office, "b-late") == counts(office, "c-due") == Counter(sent=6)
    assert statuses(office, "d-waiting") == {}
    lines = log_lines(office)
    assert len(lines) == 4
    assert "release=a-too-late" in lines[0] and "action=too late" not in lines[0]  # logfmt quotes it
    assert 'action="too late"' in lines[0] and "exit=3" in lines[0]
    assert "release=b-late" in lines[1] and "state=late" in lines[1] and 'late="3 h"' in lines[1]
    assert "release=c-due" in lines[2] and "late=" not in lines[2]
    assert "event=run releases=3 sent=12 problems=1 exit=3" in lines[3]
    assert "next=d-waiting@2026-11-28T10:01:00+05:00" in lines[3]

    # Thirty seconds later there is nothing to do; the too-late release is not reported again.
    again = dispatch(ws, now=NOW + dt.timedelta(seconds=30))
    assert (again.releases, again.exit_code, again.problems) == ([], 0, [])
    # Two minutes later the waiting one is due.
    later = dispatch(ws, now=NOW + 2 * MINUTE)
    assert [(r.release_id, r.action, r.exit_code) for r in later.releases] == [("d-waiting", "sent", 0)]
    assert outbox(office, "d-waiting") == Counter(ADDRESSES)
    assert statuses(office, "a-too-late") == {}


def test_max_late_and_log_file_are_configurable(office: Path) -> None:
    configure(office, '[dispatch]\nmax_late = "2h"\nlog_file = "var/log/reldist-dispatch.log"\n')
    add_release(office, "three-hours", at(NOW - 3 * HOUR))
    add_release(office, "one-hour", at(NOW - HOUR))
    result = dispatch(workspace(office), now=NOW)
    assert [(r.release_id, r.action) for r in result.releases] == [
        ("three-hours", "too late"),
        ("one-hour", "sent"),
    ]
    assert "more than max_late (2 h)" in result.problems[0]
    assert not (office / "dispatch.log").exists()
    assert len(log_lines(office, "var/log/reldist-dispatch.log")) == 3

    toml = office / "reldist.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("var/log/reldist-dispatch.log", ""), "utf-8")
    add_release(office, "now", at(NOW))
    quiet = dispatch(workspace(office), now=NOW)
    assert [r.release_id for r in quiet.releases] == ["now"]
    assert len(log_lines(office, "var/log/reldist-dispatch.log")) == 3  # log_file = "": no log
    assert not (office / "dispatch.log").exists()


def test_a_log_that_cannot_be_written_is_a_warning_not_a_failure(office: Path) -> None:
    configure(office, '[dispatch]\nlog_file = "reldist.toml/dispatch.log"\n')  # under a file
    add_release(office, "now", at(real_now() - MINUTE))
    result = invoke("dispatch", "-w", str(office))
    assert result.exit_code == 0
    assert result.stdout == ""
    [warning] = result.stderr.splitlines()
    assert warning.startswith("reldist: warning: cannot write the dispatch log ")
    assert "reldist.toml/dispatch.log" in warning
    assert counts(office, "now") == Counter(sent=6)


def test_oldest_first_and_a_release_that_falls_due_during_the_run(office: Path) -> None:
    add_release(office, "a-newer", at(NOW - 5 * MINUTE))
    add_release(office, "z-older", at(NOW - 10 * MINUTE))
    add_release(office, "m-soon", at(NOW + 5 * MINUTE))
    clock = FakeClock()

    def four_minutes_each(run: object) -> None:
        clock.now += 240

    result = dispatch(workspace(office), now=NOW, clock=clock, on_release=four_minutes_each)
    # m-soon fell due (at NOW+5 min) while the run was sending the other two (until NOW+8 min).
    assert [(r.release_id, r.state) for r in result.releases] == [
        ("z-older", "due"),
        ("a-newer", "due"),
        ("m-soon", "due"),
    ]
    assert [line.split()[0] for line in log_lines(office)] == [
        "2026-11-28T10:00:00+05:00",
        "2026-11-28T10:04:00+05:00",
        "2026-11-28T10:08:00+05:00",  # m-soon, due at 10:05
        "2026-11-28T10:12:00+05:00",  # the run line
    ]


def test_a_broken_release_is_reported_and_the_others_go_out(office: Path) -> None:
    add_release(office, "good", at(NOW - MINUTE))
    syntax = add_release(office, "syntax", at(NOW - 2 * MINUTE))
    with (syntax / "release.toml").open("a", encoding="utf-8") as handle:
        handle.write("\nlists = [\n")
    add_release(office, "naive", "2026-11-28T09:00:00")  # no zone: an error, not a guess
    no_list = add_release(office, "no-list", at(NOW - 3 * MINUTE))
    toml = no_list / "release.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('["press"]', '["gone"]'), encoding="utf-8")
    add_release(office, "twin-a", at(NOW - 4 * MINUTE), id='"twin"')
    add_release(office, "twin-b", at(NOW + HOUR), id='"twin"')
    future = add_release(office, "future", at(NOW + 24 * HOUR))
    (future / "en.md").unlink()
    ws = workspace(office)

    result = dispatch(ws, now=NOW)
    assert result.exit_code == 1
    assert [(r.release_id, r.action, r.exit_code) for r in result.releases] == [
        ("naive", "broken", 1),
        ("syntax", "broken", 1),
        ("twin", "broken", 1),
        ("twin", "broken", 1),
        ("no-list", "broken", 1),
        ("good", "sent", 0),
    ]
    naive, syntax_line, twin_a, twin_b, no_list_line = result.problems
    assert (
        twin_a
        == twin_b
        == (
            "twin: not sent: releases/twin-a and releases/twin-b have the same id 'twin'; "
            "give each release its own id"
        )
    )
    assert statuses(office, "twin") == {}
    assert naive.startswith(
        "naive: not sent: releases/naive/release.toml: 'send_at' = 2026-11-28T09:00:00 has no time zone"
    )
    assert syntax_line.startswith("syntax: not sent: releases/syntax/release.toml: ")
    assert no_list_line.startswith("no-list: not sent: ") and "gone" in no_list_line
    assert statuses(office, "good") == dict.fromkeys(ADDRESSES, "sent")
    assert statuses(office, "no-list") == {}
    assert statuses(office, "future") == {}  # not due: not loaded, not reported
    # schedule loads every release, so it shows the future one as broken before it is due.
    states = {e.release_id: (e.state, e.error) for e in schedule(ws, now=NOW).entries}
    assert states["future"][0] == "broken" and "en.md" in states["future"][1]
    assert states["good"] == ("done", "")


def test_resumes_a_release_left_incomplete(office: Path) -> None:
    add_release(office, "half", at(NOW - HOUR))
    ws = workspace(office)
    release = load_release(office / "releases" / "half", workspace=office)
    with ws.lock("reldist send half"), ws.open_ledger() as ledger:
        job = Job(ws, release, ledger=ledger)
        job.preflight()
        assert send_release(job, ledger, limit=2).outcomes == Counter(sent=2)
        [entry] = scan(ws, now=NOW, ledger=ledger).entries
    assert (entry.state, entry.progress.sent, entry.progress.pending) == ("in progress", 2, 4)

    result = dispatch(ws, now=NOW)
    [run] = result.releases
    assert (run.state, run.action, run.exit_code) == ("in progress", "sent", 0)
    assert run.result is not None and run.result.outcomes == Counter(sent=4)
    assert outbox(office, "half") == Counter(ADDRESSES)  # each journalist exactly once
    assert counts(office, "half") == Counter(sent=6)


def test_unreachable_server_stops_the_run_with_exit_4(office: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_smtp(office, port)
    add_release(office, "first", at(NOW - 2 * MINUTE))
    add_release(office, "second", at(NOW - MINUTE))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    result = dispatch(workspace(office), now=NOW, sleep=sleep)
    assert result.exit_code == 4
    assert [(r.release_id, r.action, r.exit_code) for r in result.releases] == [
        ("first", "stopped", 4),
        ("second", "not tried", 0),
    ]
    [problem] = result.problems
    assert problem.startswith("first: stopped: ") and problem.endswith("; 6 recipients left for the next run")
    assert waits == [1.0]  # one retry after the backoff, without waiting for real
    assert counts(office, "first") == Counter(queued=6)
    assert statuses(office, "second") == {}
    assert "release=second" in log_lines(office)[1] and 'action="not tried"' in log_lines(office)[1]


def test_failed_recipient_is_one_line_and_exit_3_then_quiet(office: Path, smtpd: SmtpServer) -> None:
    smtpd.faults.rcpt["rachel@example.org"] = "550 5.1.1 No such user"
    use_smtp(office, smtpd.port)
    add_release(office, "r", at(NOW))
    ws = workspace(office)
    result = dispatch(ws, now=NOW)
    assert result.exit_code == 3
    [problem] = result.problems
    assert re.fullmatch(
        r"r: failed: rachel@example\.org \(contacts/press\.csv:\d+\): 550 5\.1\.1 No such user", problem
    )
    assert received(smtpd) == Counter(a for a in ADDRESSES if a != "rachel@example.org")
    assert statuses(office, "r")["rachel@example.org"] == "failed"
    # The failure was reported; the release is done, and the next run says nothing.
    again = dispatch(ws, now=NOW + 5 * MINUTE)
    assert (again.releases, again.exit_code, again.problems) == ([], 0, [])
    assert len(smtpd.messages) == 5


def test_embargo_notice_in_ru_en_kk_and_subject_prefix(office: Path) -> None:
    folder = add_release(
        office, "embargoed", at(NOW), embargo="2026-11-28T12:00:00+05:00", embargo_subject="true"
    )
    toml = folder / "release.toml"
    text = toml.read_text(encoding="utf-8").replace(
        'languages = ["ru", "en"]', 'languages = ["ru", "en", "kk"]'
    )
    text = re.sub(r"\n\[kk\][^\[]*", "\n", text)  # the example's own kk, replaced below
    text += '\n[kk]\nfile = "kk.md"\nsubject = "ЕО жобасы Қарағанды облысына климаттың өзгеруімен күресуге көмектеседі"\n'
    toml.write_text(text, encoding="utf-8")
    (folder / "kk.md").write_text(
        "# ЕО жобасы Қарағанды облысын қолдайды\n\n"
        "**Қарағанды, 2026 жылғы 28 қараша.** ЭкоМузей мен облыстық басқарма меморандумға қол қойды.\n",
        encoding="utf-8",
    )
    result = dispatch(workspace(office), now=NOW)
    assert result.exit_code == 0, result.problems

    notices = {
        "ru": "ЭМБАРГО ДО 28 ноября 2026 г., 12:00 (UTC+5)",
        "en": "EMBARGOED UNTIL 28 November 2026, 12:00 (UTC+5)",
        "kk": "ЭМБАРГО: ЖАРИЯЛАУ УАҚЫТЫ — 2026 ж. 28 қараша, 12:00 (UTC+5)",
    }
    first_language: dict[str, str] = {}
    files = sorted((office / "outbox" / "embargoed").glob("*.eml"))
    assert len(files) == 6
    for path in files:
        message = parse(path.read_bytes())
        # Babel puts a narrow no-break space in "2026 г."; compare the words, not the spaces.
        plain, html = (text.replace("\u202f", " ").replace("\xa0", " ") for text in parts(message))
        for notice in notices.values():  # every language's notice, in both parts
            assert notice in plain
            assert notice in html
        lang = message["Content-Language"].split(",")[0].strip()
        assert message["Subject"].startswith(f"{notices[lang]}: ")
        first_language[message["To"].addresses[0].addr_spec] = lang
    assert first_language == {row.split(",")[0]: row.split(",")[2] for row in CONTACTS}


# -- the commands ---------------------------------------------------------------------------------


def test_cli_is_quiet_on_success_and_says_more_with_v(office: Path) -> None:
    add_release(office, "now", at(real_now() - MINUTE))
    result = invoke("dispatch", "--workspace", str(office))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert outbox(office, "now") == Counter(ADDRESSES)
    release_line, run_line = log_lines(office)
    assert "event=release release=now " in release_line and "action=sent" in release_line
    assert "event=run releases=1 sent=6 problems=0 exit=0" in run_line

    again = invoke("dispatch", "-w", str(office), "-v")
    assert (again.exit_code, again.stdout, again.stderr) == (0, "Nothing is due now.\n", "")
    assert len(log_lines(office)) == 3


def test_cli_problems_go_to_stderr_one_line_each(office: Path) -> None:
    add_release(office, "too-late", at(real_now() - 30 * HOUR))
    add_release(office, "naive", "2026-11-28T09:00:00")
    add_release(office, "now", at(real_now() - MINUTE))
    result = invoke("dispatch", "-w", str(office))
    assert result.exit_code == 1  # a broken release outranks a late one (3)
    assert result.stdout == ""
    naive, too_late = result.stderr.splitlines()
    assert naive.startswith("reldist: naive: not sent: releases/naive/release.toml: 'send_at' = ")
    assert too_late.startswith("reldist: too-late: too late: due ")
    assert too_late.endswith("To send it anyway: reldist send releases/too-late")
    assert counts(office, "now") == Counter(sent=6)


def test_cli_dry_run_sends_records_and_logs_nothing(office: Path) -> None:
    add_release(office, "now", at(real_now() - 2 * MINUTE))
    add_release(office, "later", '"2030-11-28 10:00 Asia/Almaty"')
    result = invoke("dispatch", "--dry-run", "-w", str(office))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"now: would send 6; due \d{4}-\d\d-\d\d \d\d:\d\d \(UTC\+5\), 2 min ago", lines[0])
    assert lines[1:] == [
        "Next: later at 2030-11-28 10:00 (UTC+5).",
        "Dry run: nothing was sent, recorded or logged.",
    ]
    assert not (office / "reldist.db").exists()
    assert not (office / "dispatch.log").exists()
    assert not (office / "outbox" / "now").exists()


def test_cli_schedule_shows_zone_utc_recipients_and_state(office: Path) -> None:
    add_release(office, "almaty", '"2030-11-28 10:00 Asia/Almaty"')
    add_release(office, "sent", at(real_now() - MINUTE))
    assert invoke("dispatch", "-w", str(office)).exit_code == 0
    add_release(office, "old", at(real_now() - 30 * HOUR))

    result = invoke("schedule", "-w", str(office))
    assert result.exit_code == 0, result.output
    header, *rows, unscheduled = result.stdout.splitlines()
    assert re.fullmatch(r"Release\s+Due \(Asia/Almaty\)\s+Due \(UTC\)\s+Recipients\s+State", header)
    assert [row.split()[0] for row in rows] == ["old", "sent", "almaty"]
    assert re.search(
        r"\s+6\s+too late: 1 d 6 h after send_at, more than max_late \(1 d\); not sent$", rows[0]
    )
    assert rows[1].endswith("  6           done: 6 sent")
    # "in 1458 d" with no hours when the time of day matches send_at's within the hour
    assert re.fullmatch(
        r"almaty\s+2030-11-28 10:00 \(UTC\+5\)\s+2030-11-28 05:00\s+6\s+waiting \(in \d+ d( \d+ h)?\)",
        rows[2],
    )
    assert unscheduled == f"Not scheduled (no send_at; dispatch never sends them): {RELEASE_ID}"
    assert "release=old" not in "".join(log_lines(office))  # schedule only looks


def test_lock_held_exits_75_at_once_with_one_line(office: Path) -> None:
    add_release(office, "now", at(real_now() - MINUTE))
    ws = workspace(office)
    with ws.lock("reldist dispatch"):
        result = invoke("dispatch", "-w", str(office))
    assert result.exit_code == 75
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"reldist: error: reldist.db.lock: the workspace is busy: pid {os.getpid()} (reldist dispatch) holds the lock"
    ]
    assert statuses(office, "now") == {}
    [busy] = log_lines(office)
    assert "event=busy" in busy and "exit=75" in busy


# -- real processes -------------------------------------------------------------------------------


def test_two_dispatchers_at_once_exactly_one_sends(office: Path) -> None:
    # The first message takes two seconds to be answered, so the winner holds the lock long
    # after the loser, started at the same moment, has tried it.
    with smtp_server(slow_data={1}, delay=2.0) as server:
        use_smtp(office, server.port)
        add_release(office, "now", at(real_now() - MINUTE))
        processes = [start_dispatcher(office), start_dispatcher(office)]
        outputs = [p.communicate(timeout=60) for p in processes]
    assert sorted(p.returncode for p in processes) == [0, 75], outputs
    win = 0 if processes[0].returncode == 0 else 1
    winner, loser = processes[win], processes[1 - win]
    assert outputs[win] == ("", "")
    out, err = outputs[1 - win]
    assert out == ""
    [line] = err.splitlines()
    # Workspace.lock writes the holder's pid just after taking the flock; a loser that looks in
    # that instant finds the file still empty and says "another process" (reported to the lead).
    holder = rf"(pid {winner.pid} \(reldist dispatch\)|another process)"
    assert re.fullmatch(
        rf"reldist: error: reldist\.db\.lock: the workspace is busy: {holder} holds the lock", line
    )
    assert received(server) == Counter(ADDRESSES)  # every journalist exactly once
    assert counts(office, "now") == Counter(sent=6)
    lines = log_lines(office)
    assert next(line for line in lines if "event=busy" in line).split()[1] == f"pid={loser.pid}"
    assert sum(f"pid={winner.pid} event=release release=now" in line for line in lines) == 1


def test_dispatcher_killed_mid_release_next_run_completes_without_duplicates(office: Path) -> None:
    with smtp_server(slow_data={3}, delay=30.0) as server:
        use_smtp(office, server.port)
        add_release(office, "now", at(real_now() - MINUTE))
        process = start_dispatcher(office)
        deadline = time.monotonic() + 30
        while not server.unanswered:  # the third message is in, its reply is being held back
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the dispatcher never reached the third message"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
        assert process.returncode == -signal.SIGKILL
        caught = server.unanswered[0].rcpt_tos[0]
        before = statuses(office, "now")
        assert before[caught] == "sending"
        assert Counter(before.values()) == Counter(sent=2, sending=1, queued=3)
        assert "reldist dispatch" in (office / "reldist.db.lock").read_text(encoding="utf-8")  # stale

        server.faults.slow_data = ()
        result = dispatch(workspace(office), now=real_now())

    [run] = result.releases
    assert (run.state, run.action, run.exit_code) == ("in progress", "sent", 3)
    assert run.result is not None and run.result.outcomes == Counter(sent=3)
    assert result.problems == [
        "now: 1 recipient was being sent when an earlier run stopped; marked unknown, "
        "as they may have it already: reldist status now"
    ]
    after = statuses(office, "now")
    assert after[caught] == "unknown"
    assert Counter(after.values()) == Counter(sent=5, unknown=1)
    # Each journalist got it exactly once; the one caught mid-message was not sent it again.
    assert received(server) == Counter(a for a in ADDRESSES if a != caught)
