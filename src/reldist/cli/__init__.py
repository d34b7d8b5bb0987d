"""The ``reldist`` command line: parse options, call the library, print, map errors to exit codes.

Each command lives in a module of this package by subject (``workspace``, ``sending``, ``records``);
this module holds the group, the shared options and the one place where :class:`ReldistError`
becomes a one-line message and an exit code. Nothing here imports jinja2, aiosmtplib or sqlite3.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import ReldistError

EXIT_CODES = """\b
Exit codes:
  0   everything was delivered (or, for check, no errors)
  1   bad input or configuration: nothing was sent
  2   usage error (a wrong option or argument)
  3   some recipients failed, were deferred or are unknown
  4   the mail server could not be reached
  75  another reldist process holds the workspace lock
"""


@dataclass(slots=True)
class State:
    """Global options, handed to every command."""

    workspace: Path | None
    config: Path | None
    verbose: int


class ReldistGroup(click.Group):
    """A group that turns reldist's errors into one line on stderr and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ReldistError as exc:
            click.echo(f"reldist: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("reldist: interrupted; run the same command again to continue", err=True)
            ctx.exit(130)


@click.group(cls=ReldistGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-w",
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    help="The workspace folder (default: the nearest folder with a reldist.toml, from here upwards).",
)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Use this reldist.toml.")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for more).")
@click.version_option(__version__, prog_name="reldist")
@click.pass_context
def main(ctx: click.Context, workspace: Path | None, config: Path | None, verbose: int) -> None:
    """Send a press release to journalists: one personal bilingual email each, and a record of every delivery.

    A workspace holds reldist.toml, templates/, contacts/ and releases/. Start with
    'reldist init press-office'.
    """
    ctx.obj = State(workspace=workspace, config=config, verbose=verbose)


def run() -> None:  # pragma: no cover - the console script
    main(prog_name="reldist")


# Commands register themselves on ``main`` when their modules are imported.
from . import dispatch, preview, records, sending, workspace  # noqa: E402

__all__ = ["dispatch", "main", "preview", "records", "run", "sending", "workspace"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
