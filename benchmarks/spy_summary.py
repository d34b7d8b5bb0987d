"""Summarise a py-spy ``--format raw`` (collapsed stacks) file: where the samples are.

    py-spy record -r 500 -f raw -o out/spy.txt -- python benchmarks/render.py --child ...
    python benchmarks/spy_summary.py out/spy.txt [--per N] [--top 25] [--group reldist]

Prints, for every function, its self and inclusive share of the samples and, given ``--per N``
(the number of messages the run handled) and ``--rate`` (py-spy's sampling rate, default 250),
the microseconds per message that share stands for (each sample of a thread is 1/rate seconds
of that thread). ``--group PATTERN`` charges every sample to the innermost frame whose file
matches (e.g. "reldist/"), so library calls are counted against the reldist function that made
them. ``--lines`` keeps line numbers.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def parse(path: Path, *, lines: bool = False) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match:
                where = f"{match['file']}:{match['line']}" if lines and match["line"] else match["file"]
                frames.append(f"{match['func']} ({where})")
            else:
                frames.append(frame)
        stacks.append((frames, int(count)))
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--per", type=int, help="messages handled in the sampled run")
    parser.add_argument("--rate", type=float, default=250, help="py-spy's --rate (samples/s) of the run")
    parser.add_argument(
        "--group", action="append", default=[], help="charge to frames from files matching this"
    )
    parser.add_argument("--lines", action="store_true", help="keep line numbers (one row per line)")
    args = parser.parse_args()
    stacks = parse(args.file, lines=args.lines)
    total = sum(count for _, count in stacks)
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    grouped: Counter[str] = Counter()
    # Idle helper threads blocked in a lock (asyncio's getaddrinfo executor in queue.get(), the
    # benchmark's RSS sampler in Event.wait) are sampled as if busy; they use no CPU: leave them out.
    idle = (
        "_worker (concurrent/futures/thread.py",
        "Condition.wait (threading.py",
        "Event.wait (threading.py",
    )
    stacks = [(f, c) for f, c in stacks if not f[-1].startswith(idle)]
    total = sum(count for _, count in stacks)
    for frames, count in stacks:
        own[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
        if args.group:
            # the innermost frame matching a pattern: the project function that made the call
            hit = next((f for f in reversed(frames) if any(p in f for p in args.group)), None)
            grouped[hit or "(elsewhere)"] += count

    def us(count: int) -> str:
        # each sample of a thread stands for 1/rate seconds of that thread's time
        if args.per:
            return f"{1e6 * count / args.rate / args.per:8.1f}"
        return "       -"

    print(f"{total} samples")
    print(f"\n{'self %':>7} {'us/msg':>8}  function (self time)")
    for name, count in own.most_common(args.top):
        print(f"{100 * count / total:7.1f} {us(count)}  {name}")
    print(f"\n{'incl %':>7} {'us/msg':>8}  function (inclusive)")
    for name, count in incl.most_common(args.top):
        print(f"{100 * count / total:7.1f} {us(count)}  {name}")
    if grouped:
        print(f"\n{'%':>7} {'us/msg':>8}  innermost frame matching {args.group}")
        for name, count in grouped.most_common(args.top):
            print(f"{100 * count / total:7.1f} {us(count)}  {name}")


if __name__ == "__main__":
    main()
