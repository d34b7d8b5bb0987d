"""The CLI starts fast: ``reldist --help`` loads no command module and no heavy library, and the
one-line helps it shows without loading a command are that command's own."""

from __future__ import annotations

import subprocess
import sys

import click

from reldist.cli import COMMANDS, main

HEAVY = [
    "jinja2",
    "aiosmtplib",
    "sqlite3",
    "psycopg",
    "css_inline",
    "babel",
    "markdown_it",
    "email_validator",
]


def loaded_after(*args: str) -> set[str]:
    """The modules in sys.modules after running ``reldist ARGS`` in a fresh interpreter."""
    script = (
        "import sys\n"
        "from reldist.cli import main\n"
        f"try:\n    main({list(args)!r}, prog_name='reldist')\n"
        "except SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "Usage: reldist" in done.stdout, done.stdout
    return set(done.stderr.split())


def test_help_imports_nothing_heavy() -> None:
    modules = loaded_after("--help")
    assert not {name for name in HEAVY if name in modules}
    assert not {name for name in modules if name.startswith("reldist.") and name.count(".") > 1}, (
        "a command module was imported by --help"
    )
    assert "reldist.cli" in modules  # the subprocess did run the real group


def test_a_command_help_loads_only_its_own_module() -> None:
    modules = loaded_after("status", "--help")
    assert "reldist.cli.records" in modules
    assert not {"reldist.cli.sending", "reldist.cli.workspace", "reldist.cli.dispatch"} & modules
    assert "aiosmtplib" not in modules


def test_the_table_of_commands_matches_the_commands() -> None:
    ctx = click.Context(main)
    for name, (module, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None, name
        assert command.callback is not None
        assert command.callback.__module__ == f"reldist.cli.{module}", name
        assert command.get_short_help_str(10**6) == short, (
            f"COMMANDS[{name!r}] is not the command's first line"
        )


def test_an_unknown_command_is_a_usage_error() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["sned"])
    assert result.exit_code == 2
    assert "No such command 'sned'" in result.output
