"""How the command line behaves for a person: -w/--config before or after the command, init in a
non-empty folder, the confirmation prompt in Russian, and one error format for every failure."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from helpers import RELEASE_ID, make_workspace
from reldist.cli import COMMANDS, main

ARGS: dict[str, list[str]] = {
    "check": ["check", RELEASE_ID],
    "dispatch": ["dispatch", "--dry-run"],
    "keygen": ["keygen"],
    "ledger": ["ledger", "info"],
    "new": ["new", "2026-12-options-test"],
    "preview": ["preview", RELEASE_ID],
    "report": ["report", RELEASE_ID],
    "schedule": ["schedule"],
    "send": ["send", RELEASE_ID, "--dry-run"],
    "status": ["status"],
    "suppress": ["suppress", "nobody@example.org"],
    "suppressed": ["suppressed"],
    "unsuppress": ["unsuppress", "nobody@example.org"],
}


def invoke(args: list[str], cwd: Path) -> tuple[int, str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace, and an unrelated empty folder to run the commands from."""
    office = make_workspace(tmp_path_factory.mktemp("ws") / "office")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    code, out = invoke(["-w", str(office), "send", RELEASE_ID, "--yes", "--limit", "2"], elsewhere)
    assert code in (0, 3), out
    return office, elsewhere


# Long-running or needing a file: their options are checked without running them.
NOT_RUN = {"serve", "import", "inbox"}


def test_every_command_is_covered() -> None:
    assert set(ARGS) == set(COMMANDS) - {"init"} - NOT_RUN
    for name in NOT_RUN:
        command = main.get_command(click.Context(main), name)
        assert command is not None
        opts = {opt for param in command.params for opt in param.opts}
        assert {"-w", "--workspace", "--config"} <= opts, name


@pytest.mark.parametrize("command", sorted(ARGS))
def test_workspace_works_after_the_command(places: tuple[Path, Path], command: str) -> None:
    office, elsewhere = places
    code, out = invoke([*ARGS[command], "-w", str(office)], elsewhere)
    assert "not found in" not in out, out
    assert code == 0, out


@pytest.mark.parametrize("command", ["status", "report", "ledger", "dispatch"])
@pytest.mark.parametrize("option", ["--workspace", "--config"])
def test_long_options_work_before_and_after(places: tuple[Path, Path], command: str, option: str) -> None:
    office, elsewhere = places
    value = str(office / "reldist.toml") if option == "--config" else str(office)
    after = invoke([*ARGS[command], option, value], elsewhere)
    before = invoke([option, value, *ARGS[command]], elsewhere)
    assert after == before
    assert after[0] == 0, after[1]


def test_without_them_the_commands_do_not_find_the_workspace(places: tuple[Path, Path]) -> None:
    _, elsewhere = places
    code, out = invoke(ARGS["status"], elsewhere)
    assert code == 1
    assert "reldist: error: reldist.toml: not found in" in out


def test_init_refuses_a_non_empty_current_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    code, out = invoke(["init"], tmp_path)
    assert code == 1
    assert "the current folder is not empty (notes.txt)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "notes.txt"]
    code, out = invoke(["init", "."], tmp_path)  # named on purpose: allowed
    assert code == 0, out
    assert (tmp_path / "reldist.toml").is_file()


def test_init_in_an_empty_current_folder(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # hidden entries do not count
    code, out = invoke(["init"], tmp_path)
    assert code == 0, out
    assert (tmp_path / "reldist.toml").is_file()


def on_a_terminal(args: list[str], cwd: Path, answers: list[str]) -> tuple[int, str]:
    """Run reldist in a pseudo-terminal, typing ``answers`` each time it asks: (exit code, screen)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "reldist", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"},
    )
    os.close(slave)
    screen = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if pending and screen.rstrip().endswith(b"[y/N]:"):
                os.write(master, pending.pop(0).encode() + b"\n")
                screen += b"\n"
        elif process.poll() is not None:
            break
    if process.poll() is None:  # still waiting for an answer it will not get
        process.kill()
    process.wait(timeout=30)
    os.close(master)
    return process.returncode, screen.decode("utf-8", "replace")


@pytest.mark.slow
def test_the_prompt_takes_da_and_net(tmp_path: Path) -> None:
    office = make_workspace(tmp_path / "office")
    code, screen = on_a_terminal(["send", RELEASE_ID], office, ["может", "нет"])
    assert "Please answer y (да) or n (нет)." in screen
    assert "Nothing was sent." in screen
    assert code == 1
    assert not list((office / "outbox").rglob("*.eml"))
    code, screen = on_a_terminal(["send", RELEASE_ID], office, ["да"])
    assert code == 0, screen
    assert "This run: sent 13" in screen
    assert len(list((office / "outbox" / RELEASE_ID).glob("*.eml"))) == 13


def test_usage_errors_and_command_errors_share_one_format(places: tuple[Path, Path]) -> None:
    office, elsewhere = places
    code, out = invoke(["-w", str(office), "send", RELEASE_ID, "--as", "x@example.org"], elsewhere)
    assert code == 2
    assert "reldist: error: --as needs --test ADDRESS" in out
    assert "Error:" not in out
    code, out = invoke(["-w", str(office), "send", RELEASE_ID, "--limit", "0"], elsewhere)
    assert code == 2
    assert "reldist: error: Invalid value for '--limit'" in out
    code, out = invoke(
        ["-w", str(office), "send", RELEASE_ID, "--yes", "--strict", "--list", "example"], elsewhere
    )
    assert "Error:" not in out
