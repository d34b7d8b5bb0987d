"""``reldist init`` and ``reldist check``."""

from __future__ import annotations

from pathlib import Path

import click

from ..send import Job
from ..workspace import init_workspace
from . import common, main


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the example files if a workspace is already there.")
def init(directory: Path, force: bool) -> None:
    """Create a workspace in DIRECTORY with a working bilingual example release.

    The example sends to outbox/ (.eml files), so it works without a mail server.
    """
    written = init_workspace(directory, force=force)
    click.echo(f"Created a reldist workspace in {directory} ({len(written)} files).")
    click.echo("Next:")
    click.echo(f"  cd {directory}")
    click.echo("  reldist check releases/2026-11-eu-karaganda")
    click.echo("  reldist send releases/2026-11-eu-karaganda")


@main.command()
@click.argument("release")
@click.option(
    "--list",
    "lists",
    multiple=True,
    metavar="NAME",
    help="Use this contacts list instead of the release's (repeatable).",
)
@click.option(
    "--where",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Only contacts whose column has this value (repeatable; all must match).",
)
@click.option("--strict", is_flag=True, help="Treat a bad contact row as an error (exit 1).")
@click.pass_context
def check(
    ctx: click.Context, release: str, lists: tuple[str, ...], where: tuple[str, ...], strict: bool
) -> None:
    """Preflight RELEASE: load it and render every recipient's message; send nothing.

    Prints every bad contact row as file:line, the duplicates merged and the counts. Exit 1 when
    the release, a template or the config is broken (or, with --strict, on any bad row).
    """
    ws, loaded = common.release(ctx, release)
    ledger = ws.open_ledger(create=False) if ws.config.ledger_path.exists() else None
    try:
        job = Job(ws, loaded, lists=lists, where=common.where_pairs(where), strict=strict, ledger=ledger)
        report = job.preflight()
    finally:
        if ledger is not None:
            ledger.close()
    common.print_preflight(report, verbose=ctx.find_root().obj.verbose)
    if strict and report.invalid:
        ctx.exit(1)
    click.echo("Check passed: nothing was sent.")
