"""Whole-pipeline send benchmark: plan + render + build + SMTP + ledger, into a local sink.

    python benchmarks/send.py sink --sizes 10000,100000 --connections 4       # Postfix smtp-sink
    python benchmarks/send.py delay --sizes 2000 --connections 1,2,4,8         # 20 ms before each reply
    python benchmarks/send.py mailmerge --sizes 10000                          # awdeorio/mailmerge
    python benchmarks/send.py all                                              # the README's table

Every run gets a fresh workspace (``reldist init`` + ``contacts/bench.csv`` with N generated
recipients + an ``[smtp]`` table: 127.0.0.1, ``security = "none"``, ``connections = C``, no rate,
defaults otherwise) and a fresh ledger, and a fresh sink process. Modes (``--mode``):

``cli``     (default) what a user runs: ``reldist send releases/2026-11-eu-karaganda --yes`` as a
            subprocess, stdout/stderr to files (no terminal: plain progress lines). Its wall time,
            CPU seconds and peak RSS come from ``os.wait4`` on that process: they cover start-up,
            preflight (every message rendered and built once), plan (contacts into the ledger) and
            delivery (every message rendered and built again, sent, two ledger commits each).
``inproc``  the same library calls in a child Python process (``Job``, ``Job.preflight``,
            ``send_release``), timed phase by phase.

``sink``: Postfix's ``smtp-sink`` (Debian package ``postfix``: ``apt-get install postfix``; the
daemon itself is not needed and is not started by this script). ``delay``: ``delaysink.py``,
which waits ``--delay`` (0.020 s) before every reply. ``mailmerge``: the awdeorio ``mailmerge``
command from a separate virtualenv (``--mailmerge``, default benchmarks/out/mm-venv/bin/mailmerge) sending
the same N recipients through smtp-sink with a template that carries the same text and HTML.
Results go to ``benchmarks/out/send-*.json`` and are printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import OUT, machine, maxrss_mb, rss_mb, run_child, save, table
from _workspace import RELEASE, contacts, enable_smtp, make_workspace

HERE = Path(__file__).resolve().parent
SMTP_SINK = "/usr/sbin/smtp-sink"
INSTALL_HINT = (
    "Postfix's smtp-sink is not installed ({path}). On Debian/Ubuntu:\n"
    "    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix\n"
    "(choose 'No configuration' if asked; the benchmark runs /usr/sbin/smtp-sink on a loopback\n"
    "port itself and needs no Postfix daemon — 'systemctl disable --now postfix' if one started)."
)


# -- sinks -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the sink exited at once (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.recv(512)  # its greeting
                s.sendall(b"QUIT\r\n")
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the sink does not listen on 127.0.0.1:{port}")


class Sink:
    """A running sink process; ``stop()`` returns what it counted."""

    def __init__(self, kind: str, delay: float = 0.0, pipelining: bool = False) -> None:
        self.kind = kind
        OUT.mkdir(exist_ok=True)
        if kind == "smtp-sink":
            if not os.access(SMTP_SINK, os.X_OK):
                raise SystemExit(INSTALL_HINT.format(path=SMTP_SINK))
            self.port = free_port()
            self.log = OUT / f".smtp-sink-{self.port}.log"
            argv = [SMTP_SINK, "-c"]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
            argv += [f"127.0.0.1:{self.port}", "256"]
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            wait_listening(self.port, self.proc)
        else:
            self.stats_path = OUT / f".delaysink-{os.getpid()}.json"
            argv = [sys.executable, str(HERE / "delaysink.py"), "--port", "0", "--delay", str(delay)]
            if pipelining:
                argv.append("--pipelining")
            argv += ["--stats", str(self.stats_path)]
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline().decode()
            match = re.search(r":(\d+)\s*$", line)
            if not match:
                raise SystemExit(f"delaysink did not start: {line!r}")
            self.port = int(match.group(1))

    def cpu(self) -> float:
        """CPU seconds the sink process has used so far (from /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict[str, object]:
        cpu = self.cpu()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.kind == "smtp-sink":
            text = self.log.read_text(encoding="ascii", errors="replace")
            self.log.unlink()
            counts = re.findall(r"mesg=(\d+)", text)
            return {"messages": int(counts[-1]) if counts else 0, "cpu": cpu}
        data: dict[str, object] = json.loads(self.stats_path.read_text(encoding="utf-8"))
        self.stats_path.unlink()
        data["cpu"] = cpu
        return data


# -- reldist runs ----------------------------------------------------------------------------


def reldist_command() -> list[str]:
    script = Path(sys.executable).with_name("reldist")
    if script.exists():
        return [str(script)]
    found = shutil.which("reldist")
    return [found] if found else [sys.executable, "-m", "reldist"]


def ledger_counts(root: Path) -> dict[str, int]:
    with sqlite3.connect(root / "reldist.db") as db:
        return dict(db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())


def fresh(root: Path) -> None:
    for stale in [*root.glob("reldist.db*"), *root.glob("dispatch.log")]:
        stale.unlink()


def run_reldist(
    root: Path,
    n: int,
    connections: int,
    sink: str,
    mode: str,
    delay: float,
    extra: str,
    spy: str | None = None,
    pipelining: bool = False,
) -> dict[str, object]:
    fresh(root)
    server = Sink(sink, delay, pipelining)
    try:
        enable_smtp(root, server.port, connections, extra=extra)
        if mode == "cli":
            run = run_child([*reldist_command(), "send", RELEASE, "--yes"], cwd=root)
            phases: dict[str, object] = {}
        else:
            argv = [sys.executable, __file__, "inproc-child", "--workspace", str(root)]
            if spy:
                name = f"spy-{'sink' if sink == 'smtp-sink' else 'delay'}-{n}-c{connections}.txt"
                argv = [spy, "record", "-r", "1000", "-f", "raw", "-o", str(OUT / name), "--", *argv]
            run = run_child(argv, cwd=root)
            lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
            phases = json.loads(lines[-1]) if run.returncode == 0 and lines else {}
    finally:
        seen = server.stop()
    if run.returncode not in (0,):
        raise SystemExit(
            f"reldist send failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
        )
    counts = ledger_counts(root)
    if counts.get("sent") != n:
        raise SystemExit(f"expected {n} sent, the ledger says {counts}")
    if seen.get("messages") != n:
        raise SystemExit(f"expected the sink to see {n} messages, it counted {seen}")
    return {
        "tool": "reldist",
        "mode": mode,
        "sink": sink
        if sink == "smtp-sink"
        else f"delay {delay * 1000:g} ms" + (", PIPELINING" if pipelining else ""),
        "n": n,
        "connections": connections,
        "wall": run.wall,
        "cpu": run.cpu,
        "user": run.user,
        "system": run.system,
        "maxrss_mb": run.maxrss_mb,
        "rate": n / run.wall,
        "sink_stats": seen,
        "phases": phases,
        "ledger": counts,
    }


def inproc_child(root: Path) -> None:
    """The library calls ``reldist send --yes`` makes, timed phase by phase (prints JSON)."""
    import resource
    import threading

    from reldist.job import Job
    from reldist.release import find_release, load_release
    from reldist.send import send_release
    from reldist.transport.factory import make_transport
    from reldist.workspace import open_workspace

    t0 = time.perf_counter()
    timeline: list[tuple[float, float]] = []  # (seconds since start, RSS MB) every half second
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            timeline.append((round(time.perf_counter() - t0, 1), round(rss_mb(), 1)))

    threading.Thread(target=sample, daemon=True).start()
    ws = open_workspace(config=root / "reldist.toml")
    release = load_release(
        find_release(str(root / RELEASE), ws.root), workspace=ws.root, default_languages=ws.config.languages
    )
    marks: dict[str, float] = {}
    with ws.lock("benchmark"), ws.open_ledger() as ledger:
        job = Job(ws, release, ledger=ledger)
        marks["setup"] = time.perf_counter()
        rss_setup = rss_mb()
        report = job.preflight()
        marks["preflight"] = time.perf_counter()
        rss_preflight = maxrss_mb()
        transport = make_transport(ws.config, release.id)

        def started(_: int) -> None:
            marks["plan"] = time.perf_counter()

        result = send_release(job, ledger, transport=transport, on_start=started)
        marks["deliver"] = time.perf_counter()
    done.set()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    phases = {
        "setup": marks["setup"] - t0,
        "preflight": marks["preflight"] - marks["setup"],
        "plan": marks["plan"] - marks["preflight"],
        "deliver": marks["deliver"] - marks["plan"],
        "ready": report.ready,
        "outcomes": dict(result.outcomes),
        "rss_after_setup_mb": rss_setup,
        "maxrss_after_preflight_mb": rss_preflight,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "marks": {k: round(v - t0, 2) for k, v in marks.items()},
        "rss_timeline": timeline[:: max(1, len(timeline) // 60)],
    }
    print(json.dumps(phases))


# -- mailmerge -------------------------------------------------------------------------------


def mailmerge_inputs(folder: Path, root: Path, n: int, port: int) -> None:
    """mailmerge's template, database and server config for the same N recipients.

    The template is the reldist message of a Russian reader (text + HTML, CSS already inlined,
    both languages) with the greeting's name and the unsubscribe link left to Jinja, so both tools
    send the same content: one multipart/alternative message of ~40 KB a recipient. mailmerge's
    smtplib client cannot send to a non-ASCII domain without SSL, so its database has the
    ASCII (xn--) form of the one-in-a-hundred IDN addresses, as reldist's envelope has.
    """
    import datetime as dt

    from reldist.contacts import Contact
    from reldist.release import find_release, load_release
    from reldist.render import Renderer
    from reldist.workspace import open_workspace

    ws = open_workspace(config=root / "reldist.toml")
    release = load_release(
        find_release(str(root / RELEASE), ws.root), workspace=ws.root, default_languages=ws.config.languages
    )
    renderer = Renderer(ws.config, release, now=dt.datetime.now(dt.UTC))
    probe = Contact(
        address="zzaddrzz@example.org",
        ascii_address="zzaddrzz@example.org",
        name="ZZNAMEZZ",
        lang="ru",
        languages=(),
        template=None,
        tags=(),
        fields={"email": "zzaddrzz@example.org", "name": "ZZNAMEZZ", "lang": "ru"},
        source="probe",
        list_name="bench",
    )
    rendered = renderer.render(probe)

    def jinja(text: str) -> str:
        text = "{% raw %}" + text + "{% endraw %}"
        text = text.replace("ZZNAMEZZ", "{% endraw %}{{ name }}{% raw %}")
        return text.replace("zzaddrzz@example.org", "{% endraw %}{{ email }}{% raw %}")

    sender = ws.config.sender
    template = (
        "TO: {{ name }} <{{ email }}>\n"
        f"SUBJECT: {rendered.subject}\n"
        f"FROM: {sender.name} <{sender.address}>\n"
        f"REPLY-TO: {sender.reply_to}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="reldist-bench-boundary"\n'
        "\n"
        "--reldist-bench-boundary\n"
        "Content-Type: text/plain\n"
        "\n"
        f"{jinja(rendered.text)}\n"
        "--reldist-bench-boundary\n"
        "Content-Type: text/html\n"
        "\n"
        f"{jinja(rendered.html)}\n"
        "--reldist-bench-boundary--\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mailmerge_template.txt").write_text(template, encoding="utf-8")
    with (folder / "mailmerge_database.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "lang"])
        for row in contacts(n):
            local, _, domain = row["email"].partition("@")
            writer.writerow([f"{local}@{domain.encode('idna').decode('ascii')}", row["name"], row["lang"]])
    (folder / "mailmerge_server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nratelimit = 0\n", encoding="utf-8"
    )


def run_mailmerge(root: Path, n: int, command: str) -> dict[str, object]:
    if not Path(command).exists():
        raise SystemExit(
            f"{command}: not found. Install mailmerge in a separate virtualenv:\n"
            f"    python3 -m venv {OUT / 'mm-venv'} && {OUT / 'mm-venv' / 'bin' / 'pip'} install mailmerge\n"
            "(bash benchmarks/run_all.sh makes it)"
        )
    server = Sink("smtp-sink")
    folder = root / "mailmerge"
    try:
        mailmerge_inputs(folder, root, n, server.port)
        argv = [command, "--no-dry-run", "--no-limit", "--output-format", "raw"]
        argv += ["--template", "mailmerge_template.txt", "--database", "mailmerge_database.csv"]
        argv += ["--config", "mailmerge_server.conf"]
        # mailmerge prints every message it sends (~40 KB each): count them, keep nothing.
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        sent = 0
        tail = b""
        while chunk := proc.stdout.read(1 << 20):
            data = tail + chunk
            sent += len(re.findall(rb">>> message \d+ sent", data))
            tail = data[-64:]
            sent -= len(re.findall(rb">>> message \d+ sent", tail))
        sent += len(re.findall(rb">>> message \d+ sent", tail))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = os.waitstatus_to_exitcode(status)
    finally:
        seen = server.stop()
    if code != 0:
        raise SystemExit(f"mailmerge failed ({code}): {stderr[-2000:]}")
    if sent != n or seen.get("messages") != n:
        raise SystemExit(f"mailmerge: expected {n} sent; it said {sent}, the sink counted {seen}")
    return {
        "tool": "mailmerge",
        "mode": "cli",
        "sink": "smtp-sink",
        "n": n,
        "connections": "1 per message",
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "user": usage.ru_utime,
        "system": usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "rate": n / wall,
        "sink_stats": seen,
    }


# -- driver ----------------------------------------------------------------------------------


def report(results: list[dict[str, object]]) -> str:
    rows = []
    for r in results:
        n = r["n"]
        assert isinstance(n, int)
        sink_rate = ""
        stats = r.get("sink_stats")
        if isinstance(stats, dict) and stats.get("messages_per_second"):
            sink_rate = f"{stats['messages_per_second']:.1f}"
        rows.append(
            [
                r["tool"],
                r["mode"],
                r["sink"],
                n,
                r["connections"],
                r["wall"],
                r["rate"],
                sink_rate or "-",
                r["cpu"],
                1000 * r["cpu"] / n,  # type: ignore[operator]
                r["maxrss_mb"],
            ]
        )
    headers = [
        "tool",
        "mode",
        "sink",
        "N",
        "conn",
        "wall s",
        "msg/s",
        "msg/s at sink",
        "CPU s",
        "CPU ms/msg",
        "peak RSS MB",
    ]
    text = table(headers, rows)
    phased = [r for r in results if r.get("phases")]
    if phased:
        prow = []
        for r in phased:
            p = r["phases"]
            assert isinstance(p, dict)
            n = r["n"]
            assert isinstance(n, int)
            prow.append(
                [
                    r["sink"],
                    n,
                    r["connections"],
                    p["setup"],
                    p["preflight"],
                    1000 * p["preflight"] / n,
                    p["plan"],
                    1000 * p["plan"] / n,
                    p["deliver"],
                    1000 * p["deliver"] / n,
                    n / p["deliver"],
                    p["maxrss_after_preflight_mb"],
                    p["maxrss_mb"],
                ]
            )
        headers = [
            "sink",
            "N",
            "conn",
            "setup s",
            "preflight s",
            "ms/msg",
            "plan s",
            "ms/msg",
            "deliver s",
            "ms/msg",
            "deliver msg/s",
            "peak RSS after preflight MB",
            "peak RSS MB",
        ]
        text += "\n\nin-process phases\n\n" + table(headers, prow)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("sink", "delay", "mailmerge", "all", "inproc-child"))
    parser.add_argument("--sizes", help="comma-separated recipient counts")
    parser.add_argument("--connections", help="comma-separated [smtp] connections values")
    parser.add_argument("--mode", default="cli", help="cli, inproc or cli,inproc")
    parser.add_argument("--delay", type=float, default=0.020, help="delaysink: seconds before each reply")
    parser.add_argument("--pipelining", action="store_true", help="delaysink: announce PIPELINING")
    parser.add_argument(
        "--smtp-extra", default="", help="more [smtp] lines, e.g. 'messages_per_connection = 1000'"
    )
    parser.add_argument(
        "--mailmerge", default=str(OUT / "mm-venv" / "bin" / "mailmerge"), help="the mailmerge command"
    )
    parser.add_argument("--keep", type=Path, help="make the workspaces under this folder and keep them")
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--py-spy", help="inproc mode: sample the child with this py-spy (raw stacks to out/)"
    )
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    args = parser.parse_args()

    if args.what == "inproc-child":
        inproc_child(args.workspace)
        return

    base = args.keep or Path(tempfile.mkdtemp(prefix="reldist-bench-send-"))
    modes = args.mode.split(",")
    plan: list[tuple[str, int, int, str]] = []  # (what, n, connections, mode)
    defaults = {
        "sink": ("10000,100000", "4"),
        "delay": ("2000", "1,2,4,8"),
        "mailmerge": ("10000", "1"),
    }
    whats = ["sink", "delay", "mailmerge"] if args.what == "all" else [args.what]
    for what in whats:
        sizes = [int(s) for s in (args.sizes or defaults[what][0]).split(",")]
        conns = [int(c) for c in (args.connections or defaults[what][1]).split(",")]
        for n in sizes:
            for c in conns if what != "mailmerge" else [1]:
                for mode in modes if what != "mailmerge" else ["cli"]:
                    plan.append((what, n, c, mode))

    print(f"machine: {machine()}", flush=True)
    results: list[dict[str, object]] = []
    workspaces: dict[int, Path] = {}
    for what, n, c, mode in plan:
        root = workspaces.get(n)
        if root is None:
            root = workspaces[n] = make_workspace(base / f"send-{n}", n)
        if what == "mailmerge":
            result = run_mailmerge(root, n, args.mailmerge)
        else:
            sink = "smtp-sink" if what == "sink" else "delay"
            result = run_reldist(
                root, n, c, sink, mode, args.delay, args.smtp_extra, args.py_spy, args.pipelining
            )
        results.append(result)
        print(
            f"{result['tool']} {mode} {result['sink']} N={n} conn={result['connections']}: "
            f"{result['rate']:,.0f} msg/s, {result['cpu']:.1f} CPU s, peak RSS {result['maxrss_mb']:.1f} MB",
            flush=True,
        )
    print()
    print(report(results))
    name = f"send-{args.what}{('-' + args.tag) if args.tag else ''}.json"
    path = save(name, {"machine": machine(), "smtp_extra": args.smtp_extra, "results": results})
    print(f"\nsaved {path}")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
