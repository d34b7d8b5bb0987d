"""The wheel carries the example workspace: built from this repository, installed into a fresh
venv, its ``reldist init`` writes exactly the repository's reldist.toml, templates/, contacts/
and releases/ (their one copy). No network: the build uses the hatchling of this environment and
the fresh venv borrows this environment's dependencies."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PARTS = ("reldist.toml", "templates", "contacts", "releases")


def files(root: Path) -> dict[str, bytes]:
    found = {}
    for part in PARTS:
        top = root / part
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


@pytest.mark.slow
def test_init_from_the_built_wheel_writes_the_repository_files(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("reldist-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    # The dependencies come from this environment (PYTHONPATH); reldist itself, from the wheel:
    # an editable install here is only a .pth file, which PYTHONPATH does not read.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    where = subprocess.run(
        [str(python), "-c", "import reldist.workspace as w; print(w.example_source())"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), f"reldist was not imported from the wheel: {where}"
    workspace = tmp_path / "press-office"
    done = subprocess.run(
        [str(venv / "bin" / "reldist"), "init", str(workspace)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    written = files(workspace)
    assert written == files(REPO)
    assert "templates/strings.toml" in written and "contacts/suppressed.csv" in written
    second = REPO / "src" / "reldist" / "example"
    assert not any(p.is_file() for p in second.rglob("*")), "a second copy of the example under src/"
