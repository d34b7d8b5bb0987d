"""How fast the CLI starts: ``reldist --help`` and ``reldist status`` beside ``python -c "import click"``.

Each command runs ``--runs`` times (default 10) in turn, in a fresh process, on a fresh workspace
made by ``reldist init`` in a temporary folder; the table gives the minimum and the median wall
time and the ratio of the minimums to ``import click``. Each command runs once first, with bytecode
writing allowed even where ``PYTHONDONTWRITEBYTECODE`` is set, so that the timed runs load ``.pyc``
files as an installed package does (``pip install`` compiles them; without them every run compiles
reldist's sources again, ~30 ms here). Run it with the project's venv active::

    python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    reldist = shutil.which("reldist")
    if reldist is None:
        sys.exit("reldist is not on PATH: activate the project's venv (pip install -e '.[test]')")
    with tempfile.TemporaryDirectory(prefix="reldist-startup-") as tmp:
        workspace = Path(tmp) / "ws"
        subprocess.run([reldist, "init", str(workspace)], check=True, capture_output=True)
        commands = {
            'python -c "import click"': [sys.executable, "-c", "import click"],
            "reldist --help": [reldist, "--help"],
            "reldist status (fresh workspace)": [reldist, "status"],
        }
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for argv in commands.values():  # warm: write the bytecode, fill the OS's file cache
            subprocess.run(argv, check=True, cwd=workspace, stdout=subprocess.DEVNULL, env=env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so a burst of load hits every command alike
            for name, argv in commands.items():
                start = time.perf_counter()
                subprocess.run(argv, check=True, cwd=workspace, stdout=subprocess.DEVNULL, env=env)
                times[name].append(time.perf_counter() - start)
    base = min(times['python -c "import click"'])
    print(f"machine: {machine()}")
    print()
    print(f"| command | min of {args.runs} (ms) | median (ms) | min ÷ import click |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        print(
            f"| `{name}` | {min(values) * 1000:.0f} | {statistics.median(values) * 1000:.0f} "
            f"| {min(values) / base:.2f}× |"
        )


if __name__ == "__main__":
    main()
