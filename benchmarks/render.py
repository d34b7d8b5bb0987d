"""Render + build benchmark: the example release to N generated recipients, as bytes.

    python benchmarks/render.py                      # 1k, 10k, 50k; timing + memory; 300 reference
    python benchmarks/render.py --sizes 10000 --path job --profile

Each size runs in a fresh child process (so its peak RSS is its own) over a fresh workspace made
by ``reldist init`` plus a generated ``contacts/bench.csv``. Two paths:

``direct``  (default) what preflight and the send loop do per recipient, with the library objects:
            stream ``read_contacts`` -> ``Renderer.render`` -> ``MessageBuilder.build``.
            Reports contacts, render and build time separately.
``job``     exactly the send engine's producer: ``Job`` + ``ledger.plan(job.planner.entries())``,
            then ``Job.outgoing(row)`` for every ledger row (JSON contact back, render, build,
            Message-ID, envelope). The plan (contacts into SQLite) is timed apart.

Memory: ``ru_maxrss`` of the child (peak RSS), its RSS after set-up, and, in a second child
started with ``--tracemalloc``, the peak of Python allocations made during the loop. Flat means
these do not grow with N. The reference path (``build_reference(...).as_bytes()``, the stdlib
``EmailMessage``) is timed on the first ``--reference`` recipients for comparison.
Writes ``benchmarks/out/render.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import cpu_seconds, machine, maxrss_mb, rss_mb, run_child, save, table
from _workspace import RELEASE, make_workspace


def load(root: Path):  # type: ignore[no-untyped-def]
    from reldist.release import find_release, load_release
    from reldist.workspace import open_workspace

    ws = open_workspace(config=root / "reldist.toml")
    release = load_release(
        find_release(str(ws.root / RELEASE), ws.root),
        workspace=ws.root,
        default_languages=ws.config.languages,
    )
    return ws, release


def child_direct(root: Path, trace: bool) -> dict[str, object]:
    import tracemalloc

    from reldist.contacts import Contact, read_contacts, read_suppressed
    from reldist.dkim import signer_for
    from reldist.message import MessageBuilder
    from reldist.render import Renderer

    ws, release = load(root)
    renderer = Renderer(ws.config, release)
    builder = MessageBuilder(ws.config, release, signer=signer_for(ws.config))
    suppressed = read_suppressed(ws.root)
    date = dt.datetime.now(dt.UTC)
    setup_rss = rss_mb()
    if trace:
        tracemalloc.start()
    t_render = t_build = 0.0
    count = total_bytes = largest = 0
    perf = time.perf_counter
    cpu0 = cpu_seconds()
    started = perf()
    for item in read_contacts(ws.root, release.lists, suppressed=suppressed):
        if not isinstance(item, Contact) or not renderer.languages_for(item):
            continue
        t0 = perf()
        rendered = renderer.render(item)
        t1 = perf()
        data = builder.build(
            rendered,
            item,
            message_id=builder.new_message_id(count),
            date=date,
            unsubscribe=(renderer.unsubscribe_mailto(item.address), renderer.unsubscribe_url(item.address)),
        )
        t2 = perf()
        t_render += t1 - t0
        t_build += t2 - t1
        count += 1
        total_bytes += len(data)
        largest = max(largest, len(data))
    wall = perf() - started
    cpu = cpu_seconds() - cpu0
    peak_traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    if trace:
        tracemalloc.stop()

    return {
        "path": "direct",
        "messages": count,
        "wall": wall,
        "cpu": cpu,
        "render": t_render,
        "build": t_build,
        "contacts_and_loop": wall - t_render - t_build,
        "mean_bytes": total_bytes / max(count, 1),
        "largest_bytes": largest,
        "setup_rss_mb": setup_rss,
        "maxrss_mb": maxrss_mb(),
        "end_rss_mb": rss_mb(),
        "traced_peak_mb": peak_traced,
    }


def child_reference(root: Path, count: int) -> dict[str, object]:
    """The first ``count`` recipients built both ways: MessageBuilder.build and the reference."""
    import itertools

    from reldist.contacts import Contact, read_contacts
    from reldist.message import MessageBuilder, build_reference
    from reldist.render import Renderer

    ws, release = load(root)
    renderer = Renderer(ws.config, release)
    builder = MessageBuilder(ws.config, release)
    date = dt.datetime.now(dt.UTC)
    items = (
        c
        for c in read_contacts(ws.root, release.lists)
        if isinstance(c, Contact) and renderer.languages_for(c)
    )
    perf = time.perf_counter
    fast = ref = 0.0
    n = 0
    for index, item in enumerate(itertools.islice(items, count)):
        rendered = renderer.render(item)
        unsub = (renderer.unsubscribe_mailto(item.address), renderer.unsubscribe_url(item.address))
        mid = builder.new_message_id(index)
        t0 = perf()
        builder.build(rendered, item, message_id=mid, date=date, unsubscribe=unsub)
        t1 = perf()
        build_reference(
            ws.config, release, rendered, item, message_id=mid, date=date, unsubscribe=unsub
        ).as_bytes()
        t2 = perf()
        fast += t1 - t0
        ref += t2 - t1
        n += 1
    return {
        "reference_n": n,
        "reference_ms": 1000 * ref / max(n, 1),
        "builder_ms_same": 1000 * fast / max(n, 1),
    }


def child_job(root: Path, trace: bool) -> dict[str, object]:
    import tracemalloc

    from reldist.job import Job
    from reldist.send import RESUME, _rows

    ws, release = load(root)
    perf = time.perf_counter
    with ws.open_ledger() as ledger:
        job = Job(ws, release, ledger=ledger)
        setup_rss = rss_mb()
        if trace:
            tracemalloc.start()
        cpu0 = cpu_seconds()
        t0 = perf()
        number = ledger.plan(release.id, job.planner.entries())
        ids = ledger.pending_ids(release.id, RESUME, plan=number)
        t1 = perf()
        count = total_bytes = 0
        for row in _rows(ledger, ids):
            out = job.outgoing(row)
            count += 1
            total_bytes += len(out.data)
        t2 = perf()
        cpu = cpu_seconds() - cpu0
        peak_traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {
        "path": "job",
        "messages": count,
        "wall": t2 - t0,
        "cpu": cpu,
        "plan": t1 - t0,
        "outgoing": t2 - t1,
        "mean_bytes": total_bytes / max(count, 1),
        "setup_rss_mb": setup_rss,
        "maxrss_mb": maxrss_mb(),
        "end_rss_mb": rss_mb(),
        "traced_peak_mb": peak_traced,
    }


def child_profile(root: Path, path: str, out: Path) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    if path == "job":
        child_job(root, False)
    else:
        child_direct(root, False)
    profiler.disable()
    profiler.dump_stats(out.with_suffix(".prof"))
    with out.open("w", encoding="utf-8") as handle:
        stats = pstats.Stats(profiler, stream=handle).strip_dirs()
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated recipient counts")
    parser.add_argument("--path", choices=("direct", "job"), default="direct")
    parser.add_argument("--reference", type=int, default=300, help="recipients to build the reference way")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the (slower) tracemalloc runs")
    parser.add_argument("--profile", action="store_true", help="also write a cProfile of the largest size")
    parser.add_argument("--keep", type=Path, help="make the workspaces under this folder and keep them")
    parser.add_argument("--child", choices=("direct", "job", "profile", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "direct":
        print(json.dumps(child_direct(args.workspace, args.trace)))
        return
    if args.child == "reference":
        print(json.dumps(child_reference(args.workspace, args.reference)))
        return
    if args.child == "job":
        print(json.dumps(child_job(args.workspace, args.trace)))
        return
    if args.child == "profile":
        child_profile(args.workspace, args.path, args.out)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[dict[str, object]] = []
    base = args.keep or Path(tempfile.mkdtemp(prefix="reldist-bench-render-"))
    print(f"machine: {machine()}", flush=True)
    for n in sizes:
        root = make_workspace(base / f"render-{n}", n)
        argv = [sys.executable, __file__, "--child", args.path, "--workspace", str(root)]
        run = run_child(argv)
        if run.returncode:
            raise SystemExit(f"child failed ({run.returncode}):\n{run.stderr}")
        result = json.loads(run.stdout)
        result["n"] = n
        result["child_wall"] = run.wall
        result["child_maxrss_mb"] = run.maxrss_mb
        if not args.no_tracemalloc:
            for stale in root.glob("reldist.db*"):
                stale.unlink()
            traced = run_child([*argv, "--trace"])
            if traced.returncode:
                raise SystemExit(f"tracemalloc child failed:\n{traced.stderr}")
            result["traced_peak_mb"] = json.loads(traced.stdout)["traced_peak_mb"]
        if n == sizes[0] and args.reference:
            ref = run_child(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "reference",
                    "--workspace",
                    str(root),
                    "--reference",
                    str(args.reference),
                ]
            )
            if ref.returncode:
                raise SystemExit(f"reference child failed:\n{ref.stderr}")
            result.update(json.loads(ref.stdout))
        results.append(result)
        rate = result["messages"] / result["wall"]  # type: ignore[operator]
        print(f"n={n}: {rate:,.0f} msg/s over the loop, peak RSS {run.maxrss_mb:.1f} MB", flush=True)
        if args.profile and n == sizes[-1]:
            for stale in root.glob("reldist.db*"):
                stale.unlink()
            out = Path(__file__).resolve().parent / "out" / f"render-{args.path}-{n}.profile.txt"
            out.parent.mkdir(exist_ok=True)
            run_child(
                [*argv[:3], "profile", "--path", args.path, "--workspace", str(root), "--out", str(out)]
            )
            print(f"profile: {out}")

    rows = []
    for r in results:
        m = r["messages"]
        assert isinstance(m, int)
        if args.path == "direct":
            rows.append(
                [
                    r["n"],
                    m / r["wall"],  # type: ignore[operator]
                    m / (r["render"] + r["build"]),  # type: ignore[operator]
                    1000 * r["render"] / m,  # type: ignore[operator]
                    1000 * r["build"] / m,  # type: ignore[operator]
                    1000 * r["contacts_and_loop"] / m,  # type: ignore[operator]
                    r["mean_bytes"],
                    r["setup_rss_mb"],
                    r["child_maxrss_mb"],
                    r.get("traced_peak_mb") or "-",
                ]
            )
        else:
            rows.append(
                [
                    r["n"],
                    m / r["wall"],  # type: ignore[operator]
                    m / r["outgoing"],  # type: ignore[operator]
                    1000 * r["plan"] / m,  # type: ignore[operator]
                    1000 * r["outgoing"] / m,  # type: ignore[operator]
                    r["mean_bytes"],
                    r["setup_rss_mb"],
                    r["child_maxrss_mb"],
                    r.get("traced_peak_mb") or "-",
                ]
            )
    if args.path == "direct":
        headers = [
            "N",
            "msg/s (loop incl. contacts)",
            "msg/s (render+build)",
            "render ms/msg",
            "build ms/msg",
            "contacts ms/msg",
            "bytes/msg",
            "RSS after setup MB",
            "peak RSS MB",
            "tracemalloc peak MB",
        ]
    else:
        headers = [
            "N",
            "msg/s (plan+outgoing)",
            "msg/s (outgoing)",
            "plan ms/msg",
            "outgoing ms/msg",
            "bytes/msg",
            "RSS after setup MB",
            "peak RSS MB",
            "tracemalloc peak MB",
        ]
    print()
    print(table(headers, rows))
    first = results[0]
    if first.get("reference_n"):
        print()
        print(
            table(
                [
                    "recipients",
                    "reference EmailMessage.as_bytes() ms/msg",
                    "MessageBuilder.build ms/msg",
                    "speed-up",
                ],
                [
                    [
                        first["reference_n"],
                        first["reference_ms"],
                        first["builder_ms_same"],
                        f"{first['reference_ms'] / first['builder_ms_same']:.0f}x",  # type: ignore[operator]
                    ]
                ],
            )
        )
    path = save(f"render-{args.path}.json", {"machine": machine(), "results": results})
    print(f"\nsaved {path}")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
