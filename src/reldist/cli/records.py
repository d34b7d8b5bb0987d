"""``reldist status``, ``report``, ``suppress`` and ``unsuppress``: what the ledger knows."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from ..describe import count
from ..report import Format, latest_feedback, local_time, summary, write_report
from . import common


@click.command()
@click.argument("release", required=False)
@click.pass_context
def status(ctx: click.Context, release: str | None) -> None:
    """What the ledger knows: counts per status, failures with the server's words, unknowns, next steps.

    With RELEASE, also the journalists' replies read by 'reldist inbox': date, sender, first lines.

    Without RELEASE, a line for every release in the ledger.
    """
    ws = common.workspace(ctx, hint=release)
    if not ws.has_ledger():
        if release is not None:
            common.recorded_release(release, ws, [])  # a release that does not exist is an error
        click.echo("Nothing has been sent from this workspace yet (no ledger).")
        return
    with ws.open_ledger(create=False) as ledger:
        if release is None:
            releases = ledger.releases()
            if not releases:
                click.echo("The ledger is empty.")
            for rid in releases:
                counts = ledger.counts(rid)
                shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                click.echo(f"{rid}: {shown}")
            return
        rid = common.recorded_release(release, ws, ledger.releases())
        info = summary(ledger, rid)
    if not info.total and not info.tests:
        click.echo(f"{rid}: nothing recorded yet ('reldist send {rid}' sends it).")
        return
    click.echo(f"{rid}: {count(info.total, 'recipient')}")
    for name, number in info.counts.items():
        if number:
            click.echo(f"  {name:<11}{number}")
    for title, rows in (
        ("Failed", info.failed),
        ("Deferred", info.deferred),
        ("Unknown (may have arrived)", info.unknown),
    ):
        if rows:
            click.echo(f"{title}:")
            for row in rows:
                code = f"{row.smtp_code} " if row.smtp_code else ""
                reply = row.smtp_reply or (
                    "being sent right now, or a run stopped while sending it"
                    if row.status == "sending"
                    else ""
                )
                gone = " (suppressed: not retried)" if row.address in info.refused else ""
                click.echo(f"  {row.address} ({row.source}): {code}{reply}{gone}")
    feedback = {kind: n for kind, n in info.feedback.items() if n}
    if feedback:
        click.echo("Feedback (from 'reldist inbox' and the unsubscribe links):")
        for kind, number in feedback.items():
            click.echo(f"  {kind:<15}{number}")
    if info.bounces:
        click.echo("Hard bounces (suppressed):")
        for address, when, detail in info.bounces:
            click.echo(f"  {address} ({local_time(when, ws.config.timezone)}): {detail}")
    if info.replies:
        click.echo("Replies (first lines; the whole message is in the mailbox):")
        for address, when, detail in info.replies:
            click.echo(f"  {local_time(when, ws.config.timezone)} {address}: {detail}")
    if info.skipped:
        click.echo("Skipped contact rows:")
        for row in info.skipped:
            click.echo(f"  {row.source}: {row.reason}")
    if info.tests:
        unsent = ", ".join(f"{status} {n}" for status, n in sorted(info.tests.items()) if status != "sent")
        click.echo(
            f"Test copies sent: {info.tests.get('sent', 0)}{f'; not sent: {unsent}' if unsent else ''} "
            "(not counted as delivered)"
        )
    if info.last_run:
        started, finished, outcome = info.last_run
        tz = ws.config.timezone
        click.echo(
            f"Last run: started {local_time(started, tz)}, "
            f"{'finished ' + str(local_time(finished, tz)) if finished else 'did not finish'}"
            f"{': ' + outcome if outcome else ''}"
        )
    for step in info.next_steps():
        click.echo(f"Next: {step}")


@click.command()
@click.argument("release")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    help="table on the screen; csv for Excel (UTF-8 with BOM); json for scripts.",
    show_default=True,
)
@click.option(
    "--delimiter",
    type=click.Choice([",", ";"]),
    default=",",
    show_default=True,
    help="CSV delimiter: ';' for Excel with a Russian (or other European) locale.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of the screen.",
)
@click.pass_context
def report(ctx: click.Context, release: str, fmt: Format, delimiter: str, output: Path | None) -> None:
    """One row per recipient of RELEASE: address, status, attempts, the server's reply, Message-ID."""
    ws = common.workspace(ctx, hint=release)
    have_ledger = ws.has_ledger()
    with ws.open_ledger(create=False) if have_ledger else contextlib.nullcontext() as ledger:
        rid = common.recorded_release(release, ws, ledger.releases() if ledger else [])
        rows = ledger.rows(rid) if ledger else iter(())
        feedback = latest_feedback(ledger, rid) if ledger else None
        if output is None:
            write_report(rows, fmt, sys.stdout, tz=ws.config.timezone, delimiter=delimiter, feedback=feedback)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                write_report(rows, fmt, handle, tz=ws.config.timezone, delimiter=delimiter, feedback=feedback)
            click.echo(f"Wrote {output}", err=True)


@click.command()
@click.argument("addresses", nargs=-1)
@click.option("--reason", default="asked to be removed", show_default=True, help="Why (kept in the ledger).")
@click.option(
    "--import",
    "import_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Add every address of a CSV file (column 'email', optional 'reason'), such as contacts/suppressed.csv.",
)
@click.pass_context
def suppress(ctx: click.Context, addresses: tuple[str, ...], reason: str, import_file: Path | None) -> None:
    """Make sure no future release reaches ADDRESSES (do-not-contact)."""
    from email_validator import EmailNotValidError, validate_email

    from ..contacts import read_suppressed_file

    ws = common.workspace(ctx)
    pairs = [(a, reason) for a in addresses]
    if import_file is not None:
        pairs += list(read_suppressed_file(import_file, workspace=ws.root).items())
    if not pairs:
        raise click.UsageError("name at least one address, or --import FILE")
    checked = []
    for address, why in pairs:
        try:
            checked.append((validate_email(address.strip(), check_deliverability=False).normalized, why))
        except EmailNotValidError as exc:
            raise click.BadParameter(
                f"{address!r} is not an email address: {exc}", param_hint="ADDRESS"
            ) from None
    with ws.open_ledger() as ledger:
        for address, why in checked:
            added = ledger.suppress(address.strip(), reason=why, source=str(import_file or "cli"))
            click.echo(f"{'suppressed' if added else 'already suppressed'}: {address}")


@click.command()
@click.argument("addresses", nargs=-1, required=True)
@click.pass_context
def unsuppress(ctx: click.Context, addresses: tuple[str, ...]) -> None:
    """Take ADDRESSES off the do-not-contact list of the ledger.

    An address listed in contacts/suppressed.csv is named with its line: remove it there (exit 1).
    """
    from ..contacts import read_suppressed

    ws = common.workspace(ctx)
    lines: dict[str, str] = {}
    read_suppressed(ws.root, lines=lines)
    denied = 0
    with ws.open_ledger() as ledger:
        for address in addresses:
            removed = ledger.unsuppress(address.strip())
            where = lines.get(address.strip().casefold())
            if where is None:
                click.echo(f"{'removed' if removed else 'not on the list'}: {address}")
                continue
            denied += 1
            done = "removed from the ledger, but " if removed else ""
            common.warn(
                f"{address}: {done}still suppressed by {where}; remove that line from the file to "
                "take it off the do-not-contact list"
            )
    if denied:
        ctx.exit(1)
