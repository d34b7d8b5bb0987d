"""``reldist keygen``, ``serve``, ``inbox`` and ``suppressed``: what comes back from journalists.

Thin: each command loads the workspace, calls one function of ``tokens``, ``serve`` or
``feedback`` and prints what it returns. Starlette, uvicorn and the IMAP client are imported only
by the commands that use them.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..tokens import add_key
from . import common


@click.command()
@click.option("--rotate", is_flag=True, help="Put a new signing key first; old keys keep verifying.")
@click.pass_context
def keygen(ctx: click.Context, rotate: bool) -> None:
    """Create the key that signs unsubscribe links (unsubscribe.key, mode 600).

    'reldist init' makes one; run this in a workspace made before keys existed. With --rotate a
    new key signs new links and the links already sent still work.
    """
    ws = common.workspace(ctx)
    path = ws.config.unsubscribe_key_file
    if ws.config.unsubscribe_key_env:
        click.echo(
            f"note: reldist.toml takes the keys from ${ws.config.unsubscribe_key_env}, not {path.name}"
        )
    if add_key(path, rotate=rotate):
        click.echo(
            f"{'Added a new signing key to' if rotate else 'Created'} {path} (mode 600; keep it secret)."
        )
    else:
        click.echo(f"{path} exists already; 'reldist keygen --rotate' adds a new signing key.")


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (such as 127.0.0.1:8080)")
    return host.strip("[]"), int(port)


@click.command()
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen; put your HTTPS proxy in front (see the README).",
)
@click.pass_context
def serve(ctx: click.Context, listen: str) -> None:
    """Serve the unsubscribe links (RFC 8058 one-click and a confirmation page) until stopped.

    Set [unsubscribe] url in reldist.toml to the public address of this endpoint, such as
    https://press.example.org/unsubscribe/{token}. GET /health answers 'ok' for monitoring.
    """
    from ..serve import run

    host, port = _listen(listen)
    ws = common.workspace(ctx)
    click.echo(f"reldist serve: unsubscribe links of {ws.root} on http://{host}:{port}", err=True)
    run(ws.config, host=host, port=port)


@click.command()
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Read this Maildir (nothing is moved).",
)
@click.option(
    "--mbox", type=click.Path(dir_okay=False, path_type=Path), help="Read this mbox file (nothing is moved)."
)
@click.option("--dry-run", is_flag=True, help="Classify and print each message; record and move nothing.")
@click.pass_context
def inbox(ctx: click.Context, maildir: Path | None, mbox: Path | None, dry_run: bool) -> None:
    """Read bounces, complaints, unsubscribe mails and replies into the ledger.

    Reads the [inbox] IMAP folder (or --maildir / --mbox), matches each message to a delivery and
    records it: hard bounces and complaints suppress the address, soft bounces after
    [inbox] soft_bounce_limit (default 3). Processed IMAP messages are moved to
    processed_folder, never deleted; unmatched ones stay. Running it twice records nothing twice.
    """
    from ..feedback.inbox import read_inbox

    ws = common.workspace(ctx)
    verbose = bool(ctx.find_root().obj.verbose)
    summary, where = read_inbox(ws.config, maildir=maildir, mbox=mbox, dry_run=dry_run, lines=verbose)
    if dry_run or verbose:
        for line in summary.lines:
            click.echo(line)
    click.echo(summary.text(where=where) + (" (dry run: nothing recorded)" if dry_run else ""))


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table for people, csv for Excel, json (a list of objects) for scripts.",
)
@click.pass_context
def suppressed(ctx: click.Context, fmt: str) -> None:
    """List the do-not-contact list: address, reason, source, created_at.

    Sources: cli (reldist suppress), contacts/suppressed.csv, bounce, complaint,
    unsubscribe-link (reldist serve), unsubscribe-mail (reldist inbox).
    """
    import csv
    import json
    import sys

    from ..contacts import read_suppressed
    from ..feedback.store import Feedback
    from ..report import excel_safe, local_time

    ws = common.workspace(ctx)
    if not ws.has_ledger():
        entries = []
    else:
        with ws.open_ledger(create=False) as ledger:
            entries = Feedback(ledger).suppressions()
    keys = ("address", "reason", "source", "created_at")
    tz = ws.config.timezone  # local times with their offset, as report and status show them
    records = [
        dict(zip(keys, (e.address, e.reason, e.source, local_time(e.created_at, tz) or ""), strict=True))
        for e in entries
    ]
    # contacts/suppressed.csv is honoured by every send without being copied into the ledger.
    listed = {r["address"].casefold() for r in records}
    for address, why in read_suppressed(ws.root).items():
        if address not in listed:
            records.append(
                {"address": address, "reason": why, "source": "contacts/suppressed.csv", "created_at": ""}
            )
    if fmt == "json":
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        sys.stdout.write("\ufeff")
        writer = csv.DictWriter(sys.stdout, fieldnames=keys, lineterminator="\r\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: excel_safe(v) for k, v in record.items()})
    elif not records:
        click.echo("The do-not-contact list is empty.")
    else:
        width = min(max(len(r["address"]) for r in [*records, {"address": "address"}]), 50)
        click.echo(f"{'address':<{width}}  {'source':<24}  {'created_at':<25}  reason")
        for r in records:
            click.echo(
                f"{r['address']:<{width}}  {r['source']:<24}  {r['created_at'] or '-':<25}  {r['reason']}"
            )
