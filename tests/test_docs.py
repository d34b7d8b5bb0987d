"""The README is the manual: every command has help, and the command reference in README.md
is the commands' real ``--help`` (run ``python tests/test_docs.py`` to rewrite it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reldist.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- commands -->", "<!-- /commands -->"


def commands() -> list[str]:
    return main.list_commands(click.Context(main))


def command(name: str) -> click.Command:
    found = main.get_command(click.Context(main), name)
    assert found is not None, name
    return found


def reference() -> str:
    runner = CliRunner()
    blocks = []
    for name in ["", *commands()]:
        args = [name, "--help"] if name else ["--help"]
        result = runner.invoke(main, args, prog_name="reldist", terminal_width=100)
        assert result.exit_code == 0, result.output
        title = f"reldist {name}".strip()
        blocks.append(f"### `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(blocks)


def current() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index(START) + len(START) : text.index(END)].strip("\n")


def test_every_command_has_help() -> None:
    for name in commands():
        cmd = command(name)
        assert cmd.help and len(cmd.help.strip()) > 20, name
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{name} {param.opts}"


def test_every_command_is_in_the_readme_tables() -> None:
    text = README.read_text(encoding="utf-8")
    for name in commands():
        assert re.search(rf"`reldist {name}\b", text), f"README does not mention 'reldist {name}'"


def test_command_reference_is_current() -> None:
    assert current() == reference().strip("\n"), (
        "README command reference is stale: run python tests/test_docs.py"
    )


def test_the_worked_example_is_what_check_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's ``reldist check`` of the example is the real output; the sizes may differ by
    a few bytes (the release's date is today's), so they are compared to within 1 %."""
    from reldist.workspace import init_workspace

    text = README.read_text(encoding="utf-8")
    command = "$ reldist check releases/2026-11-eu-karaganda\n"
    shown = text[text.index(command) + len(command) :].split("\n$ ", 1)[0].splitlines()
    init_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "releases/2026-11-eu-karaganda"])
    assert result.exit_code == 0, result.output
    sizes = re.compile(r"(?m)^Largest message ([\d.]+) KB, ([\d.]+) KB in all\.$")
    real_sizes, shown_sizes = sizes.search(result.output), sizes.search("\n".join(shown))
    assert real_sizes is not None and shown_sizes is not None, result.output
    for real, readme in zip(real_sizes.groups(), shown_sizes.groups(), strict=True):
        assert abs(float(real) - float(readme)) <= 0.01 * float(real), (real_sizes[0], shown_sizes[0])
    assert [sizes.sub("", line) for line in result.output.splitlines()] == [
        sizes.sub("", line) for line in shown
    ]


if __name__ == "__main__":
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{reference()}{END}{tail}", encoding="utf-8")
    sys.stdout.write(f"rewrote the command reference in {README}\n")
