"""``reldist ledger info`` and ``reldist ledger copy``: the ledger itself, not its releases."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import LedgerError
from . import common


@click.group()
def ledger() -> None:
    """The ledger itself: which database, its schema version and rows; copy it into PostgreSQL."""


@ledger.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Which backend the ledger is (SQLite or PostgreSQL), where, its schema version and row counts."""
    from ..ledgercopy import info as ledger_info

    ws = common.workspace(ctx)
    if not ws.has_ledger():
        click.echo(f"Backend: SQLite ({ws.config.ledger_path}); no ledger yet (nothing has been sent).")
        return
    with ws.open_ledger(create=False) as opened:
        found = ledger_info(opened)
    click.echo(f"Backend: {found.backend} ({found.where})")
    click.echo(f"Schema version: {found.version} (this reldist: {found.supported})")
    click.echo("Rows: " + ", ".join(f"{name} {count}" for name, count in found.rows.items()))


@ledger.command()
@click.option(
    "--to",
    "to",
    required=True,
    metavar="LEDGER",
    help="Where to copy: a PostgreSQL URL (postgresql://user@host/db), service=NAME, or a SQLite file.",
)
@click.pass_context
def copy(ctx: click.Context, to: str) -> None:
    """Copy the workspace's ledger (every row and status) into an empty ledger at LEDGER.

    Refuses a target that holds any row. Then set 'ledger' in reldist.toml to the new one.
    """
    from ..ledgercopy import copy_ledger
    from ..ledgerdb import parse_target
    from ..ratelimit import lookback

    ws = common.workspace(ctx)
    target = parse_target(to, Path.cwd(), "--to")
    if not ws.has_ledger():
        raise LedgerError(f"{ws.config.ledger_path}: no ledger to copy yet")
    with ws.open_ledger(create=False) as source:
        copied = copy_ledger(source, target, history=lookback(ws.config.rates))
    shown = ", ".join(f"{name} {count}" for name, count in copied.items())
    click.echo(f"Copied {ws.config.ledger} to {target}: {shown} rows.")
    click.echo(f'To use it, set in reldist.toml: ledger = "{target}"')
