"""``reldist send``: preflight, confirm, send, and say what happened."""

from __future__ import annotations

import datetime as dt
import signal
import sys

import click

from ..describe import count, describe_time, recipients_were
from ..engine import SendResult
from ..errors import ContactsError, ReleaseError, place
from ..job import Job
from ..ledgerrows import Status
from ..proofs import proof_target, send_test
from ..release import Release
from ..schedule import ahead_of_schedule
from ..send import RESUME, RETRY, UNKNOWN, send_release
from ..transport.factory import check_transport, make_transport, proof_transport
from ..workspace import Workspace
from . import common
from .progress import Progress


@click.command()
@click.argument("release")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (for scripts and cron).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Preflight and show what would be sent; send and record nothing.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="Send to at most N recipients in this run.",
)
@common.selection
@click.option("--strict", is_flag=True, help="Stop before sending if any contact row is bad.")
@click.option(
    "--retry",
    is_flag=True,
    help="Send again to the recipients left deferred or failed (only those).",
)
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Also send to recipients whose earlier message may or may not have arrived.",
)
@click.option(
    "--now",
    "send_now",
    is_flag=True,
    help="Send a release whose send_at is still to come now, ahead of its time (without --now, send "
    "refuses it: 'reldist dispatch' sends it at send_at).",
)
@click.option(
    "--test",
    "test_address",
    metavar="ADDRESS",
    help="Send test copies to ADDRESS instead: one per language/template combination, '[TEST]' in "
    "the subject; recorded as tests, never as delivered.",
)
@click.option(
    "--as",
    "as_recipient",
    metavar="RECIPIENT",
    help="With --test: send the copy that RECIPIENT (an address in the lists) would get.",
)
@click.pass_context
def send(
    ctx: click.Context,
    release: str,
    yes: bool,
    dry_run: bool,
    limit: int | None,
    lists: tuple[str, ...],
    where: tuple[str, ...],
    strict: bool,
    retry: bool,
    resend_unknown: bool,
    send_now: bool,
    test_address: str | None,
    as_recipient: str | None,
) -> None:
    """Send RELEASE to every recipient who has not had it yet.

    Everything is rendered and checked first; nothing leaves if the release, a template or the
    config is broken. Re-running the same command continues where the last run stopped and never
    sends anyone the release twice.

    A rate over an hour ([smtp] rate = "2000/day") that is used up stops the run instead of
    waiting for hours: the messages in flight are finished, the command says when the rate
    allows the next message, and exits 0; run it again then (cron does).

    With --test ADDRESS nothing goes to the journalists: ADDRESS gets one copy of each language
    and template combination (or, with --as, the copy one recipient would get), marked [TEST].

    A release whose send_at is still to come is left to 'reldist dispatch': send refuses it
    (exit 1, nothing sent) unless --now is given. Test copies may be sent at any time.
    """
    if as_recipient and not test_address:
        raise click.UsageError("--as needs --test ADDRESS (a test copy of that recipient's message)")
    if test_address:
        clash = [
            name
            for name, on in (
                ("--dry-run", dry_run),
                ("--limit", limit),
                ("--retry", retry),
                ("--resend-unknown", resend_unknown),
            )
            if on
        ]
        if clash:
            raise click.UsageError(f"--test cannot be combined with {', '.join(clash)}")
    ws, loaded = common.release(ctx, release)
    if test_address:
        ctx.exit(send_proofs(ws, loaded, test_address, as_recipient, lists=lists, where=where, strict=strict))
    ahead = ahead_of_schedule(loaded, dt.datetime.now(dt.UTC), ws.config.timezone)
    if ahead and not send_now and not dry_run:
        raise ReleaseError(
            f"{loaded.id} is scheduled for {ahead}: 'reldist dispatch' sends it then; nothing was sent. "
            f"To send it now anyway: reldist send {release} --now",
            place=place(loaded.folder / "release.toml", ws.root),
        )
    from ..leftovers import refuse_unfilled

    refuse_unfilled(loaded, ws.root, release)
    verbose = ctx.find_root().obj.verbose
    statuses: tuple[Status, ...] = RETRY if retry else RESUME
    if resend_unknown:
        statuses += UNKNOWN
    transport = make_transport(ws.config, loaded.id)
    check_transport(transport)  # a password that cannot be had stops us here, before anything
    with ws.lock(f"reldist send {loaded.id}"), ws.open_ledger() as ledger:
        job = Job(ws, loaded, lists=lists, where=common.where_pairs(where), strict=strict, ledger=ledger)
        planned = None
        if yes and not dry_run:  # nobody to ask: plan in the same pass over the lists
            report, planned = job.preflight_and_plan(ledger)
        else:
            report = job.preflight()
        common.print_preflight(report, verbose=verbose)
        if not report.ready:
            named = ", ".join(report.lists or loaded.lists)
            raise ContactsError(
                f"this release reaches nobody: no recipient in {named} can get it; nothing was sent"
            )
        counts = ledger.counts(loaded.id)
        if counts["sent"]:
            click.echo(f"Already sent earlier: {counts['sent']} (they will not get it again).")
        if counts["sending"] or counts["unknown"]:
            unknown = counts["sending"] + counts["unknown"]
            hint = (
                "they will be sent again (--resend-unknown)"
                if resend_unknown
                else "add --resend-unknown to send to them again"
            )
            common.warn(
                f"{count(unknown, 'recipient')} may or may not have received an earlier attempt; {hint}."
            )
        click.echo(f"Transport: {transport.describe()}")
        if ahead:
            refused = "" if send_now else " (send refuses it without --now)"
            click.echo(f"Scheduled for {ahead}: 'reldist dispatch' sends it then{refused}.")
        if dry_run:
            click.echo("Dry run: nothing was sent or recorded.")
            return
        if strict and any(s.bad for s in report.invalid):
            raise ContactsError("--strict: bad contact rows; nothing was sent")
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("standard input is not a terminal; add --yes to send without asking")
            early = f", ahead of its send_at ({ahead})" if ahead else ""
            if not confirm(f"Send {loaded.id} now{early}?"):
                click.echo("Nothing was sent.")
                ctx.exit(1)
        with Progress(label=f"Sending {loaded.id}") as progress:
            result = send_release(
                job,
                ledger,
                statuses=statuses,
                limit=limit,
                transport=transport,
                on_result=progress,
                on_start=progress.begin,
                planned=planned,
            )
    print_result(result, ws.config.timezone)
    if result.interrupted:
        name = signal.Signals(result.interrupted).name
        click.echo(
            f"reldist: interrupted by {name}: the messages in flight were finished and recorded; "
            "run the same command again to continue",
            err=True,
        )
    ctx.exit(result.exit_code)


#: Answers to a yes/no question, in the languages of the people who use reldist.
YES = frozenset({"y", "yes", "д", "да"})
NO = frozenset({"", "n", "no", "н", "нет"})


def confirm(question: str) -> bool:
    """Ask on the terminal until the answer is yes (y, yes, д, да) or no (n, no, н, нет, Enter)."""
    while True:
        answer = click.prompt(f"{question} [y/N]", default="", show_default=False, prompt_suffix=": ")
        word = answer.strip().casefold()
        if word in YES:
            return True
        if word in NO:
            return False
        click.echo("Please answer y (да) or n (нет).")


def print_result(result: SendResult, tz: dt.tzinfo) -> None:
    """The closing summary of a send run and what to do next (times in the zone ``tz``)."""
    counts = result.counts
    waiting = counts.get("queued", 0) + counts.get("deferred", 0)
    # "nothing to send" only when nothing is left to send, never when the server was down
    idle = "nothing sent" if result.pending or (waiting and result.unreachable) else "nothing to send"
    this_run = ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())) or idle
    rate = f" in {result.elapsed:.1f} s" if result.outcomes else ""
    click.echo(f"This run: {this_run}{rate}.")
    shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    click.echo(f"Ledger for {result.release_id}: {shown or 'empty'}.")
    if result.elsewhere:
        click.echo(f"Other senders are still sending {result.elsewhere} of them.")
    if result.recovered_unknown:
        common.warn(
            f"{recipients_were(result.recovered_unknown)} being sent when an earlier run stopped; "
            "they are marked unknown (see 'reldist status')."
        )
    if result.unreachable:
        click.echo(f"reldist: error: stopped: {result.unreachable}", err=True)
        fix = "Fix [smtp] in reldist.toml (or the password), then run" if result.stop_code == 1 else "Run"
        click.echo(
            f"{fix} the same command again once this is fixed: it continues where it stopped.",
            err=True,
        )
    elif result.held is not None:
        until = describe_time(dt.datetime.fromtimestamp(result.held.until, dt.UTC), tz)
        click.echo(
            f"{count(waiting, 'recipient')} still {'queued or deferred' if counts.get('deferred') else 'queued'}: "
            f"the rate {result.held.rate.text} allows the "
            f"next message at {until}; run the same command again then."
        )
    elif result.limited and counts.get("queued"):
        click.echo(f"{counts['queued']} still queued (--limit): run the same command again to send to them.")
    if not result.unreachable and (counts.get("deferred") or counts.get("failed")):
        click.echo(
            f"Next: 'reldist status {result.release_id}' for the server's words; 'reldist send {result.release_id} --retry' to try them again."
        )


def send_proofs(
    ws: Workspace,
    release: Release,
    address: str,
    as_recipient: str | None,
    *,
    lists: tuple[str, ...],
    where: tuple[str, ...],
    strict: bool,
) -> int:
    """``send --test``: send and list the test copies; 0 when all were accepted, else 3."""
    proof_target(address)  # a bad address is said before anything else
    with ws.lock(f"reldist send --test {release.id}"), ws.open_ledger() as ledger:
        job = Job(ws, release, lists=lists, where=common.where_pairs(where), strict=strict, ledger=ledger)
        transport = proof_transport(ws.config, release.id)
        click.echo(f"Test copies of {release.id} to {address} through {transport.describe()}:")
        proofs = send_test(job, ledger, address, as_recipient=as_recipient, transport=transport)
    for proof in proofs:
        outcome = proof.outcome
        code = f"{outcome.code} " if outcome.code and outcome.status != "sent" else ""
        reply = f" ({code}{outcome.reply})" if outcome.status != "sent" or transport.name == "outbox" else ""
        click.echo(
            f"  {outcome.status}: {', '.join(proof.languages)} · {proof.template} as {proof.as_recipient} "
            f"({proof.source}): {proof.subject}{reply}"
        )
    click.echo("Recorded in the ledger as test copies; no journalist was sent anything.")
    return 0 if all(p.outcome.status == "sent" for p in proofs) else 3
