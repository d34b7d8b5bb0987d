"""A PostgreSQL ledger: several senders together, and one sender against SQLite.

    python benchmarks/senders.py delay --size 600 --senders 1,2,3 --connections 2   # 20 ms sink
    python benchmarks/senders.py sink --sizes 10000,100000 --connections 4           # smtp-sink

Each run gets a fresh workspace (as ``send.py``: ``reldist init`` + N generated recipients + an
``[smtp]`` table), a fresh database in a throwaway PostgreSQL cluster that this script starts
(Debian's ``postgresql``: initdb/pg_ctl under /usr/lib/postgresql/*/bin, as the ``postgres``
user when run as root, unix socket in a temporary folder, stopped at the end) and a fresh sink.

``delay``: S ``reldist send releases/… --yes`` processes started together on one release, each
with the same ``connections``, into ``delaysink.py`` (``--delay`` 0.020 s before every reply).
The wall time runs from starting the first to the end of the last; the ledger and the sink must
both count N messages, each recipient once.

``sink``: one ``reldist send --yes`` into Postfix's ``smtp-sink``, with the ledger in SQLite and
then in PostgreSQL; wall time, CPU and peak RSS of the process from ``wait4``.

The cluster runs with PostgreSQL's defaults (``fsync = on``, ``synchronous_commit = on``: each
commit waits for its WAL flush) unless ``--synchronous-commit off``, which, like SQLite's
``synchronous = NORMAL`` in WAL mode, keeps every commit through a crash of reldist but not
necessarily through a power cut of the database host.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine, run_child, save, table
from _workspace import RELEASE, enable_smtp, make_workspace
from send import Sink, reldist_command

_names = itertools.count(1)


@contextlib.contextmanager
def cluster(synchronous_commit: str) -> Iterator[Path]:
    """A throwaway PostgreSQL cluster; yields the folder of its unix socket."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
    bindir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="reldist-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "reldist", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        env=env,
    )
    options = f"-k {folder} -c listen_addresses='' -c synchronous_commit={synchronous_commit}"
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        yield folder
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], check=False, env=env
        )
        shutil.rmtree(folder, ignore_errors=True)


def new_database(socket_folder: Path) -> str:
    import psycopg

    name = f"bench{next(_names)}"
    with psycopg.connect(f"postgresql://reldist@/postgres?host={socket_folder}", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return f"postgresql://reldist@/{name}?host={socket_folder}"


def use_ledger(root: Path, value: str) -> None:
    config = root / "reldist.toml"
    text = re.sub(r'(?m)^ledger = "[^"]*"', f'ledger = "{value}"', config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def counts(target: str | Path) -> dict[str, int]:
    sql = "SELECT status, COUNT(*) FROM deliveries GROUP BY status"
    if isinstance(target, Path):
        with sqlite3.connect(target) as db:
            return dict(db.execute(sql).fetchall())
    import psycopg

    with psycopg.connect(target) as pg:
        return {str(k): int(v) for k, v in pg.execute(sql).fetchall()}


def several(root: Path, url: str, n: int, senders: int, connections: int, delay: float) -> dict[str, object]:
    """S senders at once on one release into a delaying sink."""
    use_ledger(root, url)
    sink = Sink("delay", delay)
    try:
        enable_smtp(root, sink.port, connections)
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [*reldist_command(), "send", RELEASE, "--yes"],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            for _ in range(senders)
        ]
        outputs = [p.communicate(timeout=1800)[0].decode() for p in processes]
        wall = time.perf_counter() - started
    finally:
        seen = sink.stop()
    for process, output in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise SystemExit(f"a sender failed ({process.returncode}):\n{output[-3000:]}")
    found = counts(url)
    if found.get("sent") != n or seen.get("messages") != n:
        raise SystemExit(f"expected {n} sent: ledger {found}, sink {seen}")
    return {"senders": senders, "connections": connections, "n": n, "wall": wall, "rate": n / wall}


def one(root: Path, target: str | None, n: int, connections: int) -> dict[str, object]:
    """One sender into smtp-sink, the ledger in SQLite (target None) or PostgreSQL."""
    for stale in root.glob("reldist.db*"):
        stale.unlink()
    use_ledger(root, target or "reldist.db")
    sink = Sink("smtp-sink")
    try:
        enable_smtp(root, sink.port, connections)
        run = run_child([*reldist_command(), "send", RELEASE, "--yes"], cwd=root, timeout=3600)
    finally:
        seen = sink.stop()
    if run.returncode != 0:
        raise SystemExit(
            f"reldist send failed ({run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        )
    found = counts(target or root / "reldist.db")
    if found.get("sent") != n or seen.get("messages") != n:
        raise SystemExit(f"expected {n} sent: ledger {found}, sink {seen}")
    return {
        "ledger": "PostgreSQL" if target else "SQLite",
        "n": n,
        "connections": connections,
        "wall": run.wall,
        "cpu": run.user + run.system,
        "maxrss_mb": run.maxrss_mb,
        "rate": n / run.wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("delay", "sink"))
    parser.add_argument("--size", type=int, default=600, help="delay: recipients")
    parser.add_argument("--sizes", default="10000", help="sink: comma-separated recipient counts")
    parser.add_argument("--senders", default="1,2,3", help="delay: comma-separated sender counts")
    parser.add_argument("--connections", type=int, default=2, help="[smtp] connections of each sender")
    parser.add_argument("--delay", type=float, default=0.020)
    parser.add_argument("--synchronous-commit", default="on", choices=("on", "off"))
    parser.add_argument("--ledgers", default="sqlite,postgresql", help="sink: which ledgers, in order")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="reldist-bench-senders-"))
    results: list[dict[str, object]] = []
    try:
        with cluster(args.synchronous_commit) as socket_folder:
            if args.what == "delay":
                root = make_workspace(base / "ws", args.size)
                for count in (int(s) for s in args.senders.split(",")):
                    result = several(
                        root, new_database(socket_folder), args.size, count, args.connections, args.delay
                    )
                    print(f"{count} senders: {result['rate']:.1f} msg/s", flush=True)
                    results.append(result)
                first = float(results[0]["rate"])  # type: ignore[arg-type]
                rows = [
                    [
                        r["senders"],
                        r["connections"],
                        r["n"],
                        f"{r['wall']:.1f}",
                        f"{r['rate']:.1f}",
                        f"{float(r['rate']) / first:.2f}×",
                    ]  # type: ignore[arg-type]
                    for r in results
                ]
                print(table(["senders", "connections each", "N", "wall s", "msg/s", "vs 1"], rows))
            else:
                for n in (int(s) for s in args.sizes.split(",")):
                    root = make_workspace(base / f"ws{n}", n)
                    wanted = args.ledgers.split(",")
                    targets = [None] * ("sqlite" in wanted) + [new_database(socket_folder)] * (
                        "postgresql" in wanted
                    )
                    for target in targets:
                        result = one(root, target, n, args.connections)
                        print(f"{result['ledger']} {n}: {result['rate']:.0f} msg/s", flush=True)
                        results.append(result)
                rows = [
                    [
                        r["ledger"],
                        r["n"],
                        r["connections"],
                        f"{r['wall']:.2f}",
                        f"{r['rate']:.0f}",
                        f"{r['cpu']:.2f}",
                        f"{r['maxrss_mb']:.1f}",
                    ]
                    for r in results
                ]
                print(table(["ledger", "N", "connections", "wall s", "msg/s", "CPU s", "peak RSS MB"], rows))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    save(f"senders-{args.what}-sc{args.synchronous_commit}", {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
