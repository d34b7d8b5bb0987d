"""``reldist preview``: every recipient's message as a local page, opened in the browser on request."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from ..describe import count
from ..job import Job
from ..preview import write_preview
from . import common


@click.command()
@click.argument("release")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the page into this folder (default: preview/<release-id>/ in the workspace).",
)
@click.option(
    "--open", "open_page", is_flag=True, help="Open the page in the web browser when it is written."
)
@common.selection
@click.pass_context
def preview(
    ctx: click.Context,
    release: str,
    out: Path | None,
    open_page: bool,
    lists: tuple[str, ...],
    where: tuple[str, ...],
) -> None:
    """Write every recipient's message of RELEASE as a local page (index.html); send nothing.

    The page lists the recipients grouped by language and template, and for each one shows the
    HTML part at desktop (600 px) and phone (375 px) width, the plain text, the headers, the size
    and the attachments; skipped rows appear with their reasons. It needs no server and loads
    nothing from the internet.
    """
    ws, loaded = common.release(ctx, release)
    ledger = ws.open_ledger(create=False) if ws.has_ledger() else None
    try:
        job = Job(ws, loaded, lists=lists, where=common.where_pairs(where), ledger=ledger)
        result = write_preview(job, out.resolve() if out else None)
    finally:
        if ledger is not None:
            ledger.close()
    groups = ", ".join(
        f"{', '.join(languages)} · {template} {count}"
        for (languages, template), count in sorted(result.groups.items())
    )
    click.echo(
        f"{count(result.recipients, 'recipient')} ({groups or 'none'}); {result.skipped} not sent (skipped, do not contact or merged)."
    )
    warnings = sum(1 for f in result.findings if f.level != "note")
    if warnings:
        click.echo(
            f"{warnings} warning(s) from the check are listed at the top of the page ('reldist check' for details)."
        )
    click.echo(f"Wrote {result.index}")
    if open_page:
        webbrowser.open(result.index.resolve().as_uri())
    else:
        click.echo(f"Open it: {result.index.resolve().as_uri()}")
