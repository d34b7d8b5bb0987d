"""The ``reldist`` command line: parse options, call the library, print, map errors to exit codes.

Each command lives in a module of this package by subject (``workspace``: init, check;
``sending``: send; ``records``: status, report, suppress, unsuppress; ``dispatch``: dispatch,
schedule; ``preview``). This module holds the group, the global options and the one place where
:class:`ReldistError` becomes a one-line message and an exit code. The group is lazy: a command's
module is imported only when that command runs (or its ``--help`` is asked for), so ``reldist
--help`` imports no jinja2, aiosmtplib or sqlite3 (``tests/test_cli_lazy.py`` checks it).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pathlib import Path

from .. import __version__
from ..errors import ReldistError

EXIT_CODES = """\b
Exit codes:
  0   everything was delivered (or, for check, no errors; with --limit or a used-up daily
      rate, the rest still queued for the next run)
  1   bad input or configuration, or the server refuses our settings (535, no STARTTLS,
      a certificate that does not verify): nothing more was sent
  2   usage error (a wrong option or argument)
  3   some recipients failed, were deferred or are unknown
  4   the mail server could not be reached
  75  another reldist process holds the workspace lock (inbox: is reading the mailbox)
  130 interrupted (Ctrl-C); 143 stopped by SIGTERM: messages in flight were finished and recorded
"""


class State:
    """Global options, handed to every command."""

    __slots__ = ("config", "verbose", "workspace")

    def __init__(self, *, workspace: Path | None, config: Path | None, verbose: int) -> None:
        self.workspace = workspace
        self.config = config
        self.verbose = verbose


#: Every command: the module of this package that defines it (as a function of the same name, or
#: with a trailing _ when the name is a Python keyword),
#: and its one-line help, which ``reldist --help`` shows without importing the module.
#: tests/test_cli_lazy.py checks that each line is the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": (
        "workspace",
        "Preflight RELEASE and check its deliverability: render every recipient's message; send nothing.",
    ),
    "dispatch": ("dispatch", "Send every release whose send_at has come (for cron)."),
    "serve": (
        "feedback",
        "Serve the unsubscribe links (RFC 8058 one-click and a confirmation page) until stopped.",
    ),
    "inbox": ("feedback", "Read bounces, complaints, unsubscribe mails and replies into the ledger."),
    "suppressed": ("feedback", "List the do-not-contact list: address, reason, source, created_at."),
    "keygen": ("feedback", "Create the key that signs unsubscribe links (unsubscribe.key, mode 600)."),
    "ledger": (
        "ledger",
        "The ledger itself: which database, its schema version and rows; copy it into PostgreSQL.",
    ),
    "import": (
        "authoring",
        "Turn FILE (.docx, Word's .txt, .html or .md) into RELEASE's LANG version (releases/<id>/<lang>.md).",
    ),
    "init": ("workspace", "Create a workspace in DIRECTORY with a working bilingual example release."),
    "new": (
        "authoring",
        "Create releases/RELEASE_ID with a release.toml and a Markdown file a language to fill in.",
    ),
    "preview": (
        "preview",
        "Write every recipient's message of RELEASE as a local page (index.html); send nothing.",
    ),
    "report": (
        "records",
        "One row per recipient of RELEASE: address, status, attempts, the server's reply, Message-ID.",
    ),
    "schedule": ("dispatch", "List the scheduled releases: when each is due, its recipients and its state."),
    "send": ("sending", "Send RELEASE to every recipient who has not had it yet."),
    "status": (
        "records",
        "What the ledger knows: counts per status, failures with the server's words, unknowns, next steps.",
    ),
    "suppress": ("records", "Make sure no future release reaches ADDRESSES (do-not-contact)."),
    "unsuppress": ("records", "Take ADDRESSES off the do-not-contact list of the ledger."),
}


class ReldistGroup(click.Group):
    """A lazy group that turns reldist's errors into one line on stderr and the right exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(f".{COMMANDS[cmd_name][0]}", __name__)
            # a command named like a Python keyword is defined with a trailing _ (import_)
            command = getattr(module, cmd_name, None) or getattr(module, cmd_name + "_")
            assert isinstance(command, click.Command), cmd_name
            if cmd_name != "init":  # init makes a workspace; it does not use one
                _add_global_options(command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but from :data:`COMMANDS` for the commands not loaded yet."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            # A stand-in with the same help shortens it exactly as the real command would.
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        # The one place where an error becomes "reldist: error: …" and an exit code: reldist's
        # own errors, and click's (a wrong option of a command, a bad value) in the same format.
        try:
            return super().invoke(ctx)
        except ReldistError as exc:
            click.echo(f"reldist: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            if exc.ctx is not None:
                click.echo(exc.ctx.get_usage(), err=True)
                click.echo(f"Try '{exc.ctx.command_path} -h' for help.", err=True)
            click.echo(f"reldist: error: {exc.format_message()}", err=True)
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"reldist: error: {exc.format_message()}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("reldist: interrupted; run the same command again to continue", err=True)
            ctx.exit(130)


def _set_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``-w``/``--config`` given after the command: the same as before it."""
    if value is not None:
        from pathlib import Path

        setattr(
            ctx.find_root().obj, "workspace" if param.name == "global_workspace" else "config", Path(value)
        )


def _add_global_options(command: click.Command) -> None:
    """Give ``command`` (and a group's subcommands) ``-w/--workspace`` and ``--config``, so that
    they work after the command's name too; a command with its own ``-w`` keeps it."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_global_options(sub)
    taken = {opt for param in command.params for opt in param.opts}
    if not taken & {"-w", "--workspace"}:
        command.params.append(
            click.Option(
                ["-w", "--workspace", "global_workspace"],
                type=click.Path(file_okay=False),
                expose_value=False,
                callback=_set_global,
                help="The workspace folder (default: the nearest folder with a reldist.toml, from here upwards).",
            )
        )
    if "--config" not in taken:
        command.params.append(
            click.Option(
                ["--config", "global_config"],
                type=click.Path(dir_okay=False),
                expose_value=False,
                callback=_set_global,
                help="Use this reldist.toml.",
            )
        )


@click.group(cls=ReldistGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-w",
    "--workspace",
    type=click.Path(file_okay=False),
    help="The workspace folder (default: the nearest folder with a reldist.toml, from here upwards).",
)
@click.option("--config", type=click.Path(dir_okay=False), help="Use this reldist.toml.")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for more).")
@click.version_option(__version__, prog_name="reldist")
@click.pass_context
def main(ctx: click.Context, workspace: str | None, config: str | None, verbose: int) -> None:
    """Send a press release to journalists: one personal bilingual email each, and a record of every delivery.

    A workspace holds reldist.toml, templates/, contacts/ and releases/. Start with
    'reldist init press-office'.
    """
    from pathlib import Path  # here, not at the top: --help needs no pathlib

    ctx.obj = State(
        workspace=Path(workspace) if workspace is not None else None,
        config=Path(config) if config is not None else None,
        verbose=verbose,
    )


def run() -> None:  # pragma: no cover - the console script
    main(prog_name="reldist")


__all__ = ["COMMANDS", "main", "run"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
