"""``reldist dispatch`` (for cron) and ``reldist schedule``: releases sent at their ``send_at``.

``dispatch`` is quiet when all went well: nothing on stdout (unless ``-v``), one line per problem
on stderr, and the exit code of the most severe problem, so that cron's mail and a monitor see
failures. The work is :func:`reldist.dispatch.dispatch`; this module only prints.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..config import Config
from ..describe import describe_duration, describe_time
from ..dispatch import ReleaseRun
from ..dispatch import dispatch as run_dispatch
from ..schedule import Scheduled
from ..schedule import schedule as read_schedule
from ..workspace import Workspace, open_workspace
from . import common

DISPATCH_EXIT_CODES = """\b
Exit codes (the most severe wins: 143/130, 4, then 1, then 3):
  0   nothing was due, or every due release went to every recipient (or as many as a daily
      rate allows: the run stopped there, and a later run continues)
  1   a due release (or reldist.toml) is broken, or the server refuses our settings
      (535, no STARTTLS, a bad certificate): it was not sent, the others were
  3   some recipients failed, were deferred or are unknown; or a release was too late to send
  4   the mail server could not be reached: the run stopped, the next run continues
  75  another dispatcher (or a 'reldist send') holds the workspace lock
  130 interrupted (Ctrl-C); 143 stopped by SIGTERM: messages in flight were finished and
      recorded, the next run continues
"""

_WORKSPACE = click.option(
    "-w",
    "--workspace",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="The workspace folder (default: the nearest folder with a reldist.toml, from here upwards).",
)


def _workspace(ctx: click.Context, folder: Path | None) -> Workspace:
    if folder is None:
        return common.workspace(ctx)
    return open_workspace(start=folder, config=ctx.find_root().obj.config)


@click.command(epilog=DISPATCH_EXIT_CODES)
@_WORKSPACE
@click.option("--dry-run", is_flag=True, help="Show what would be sent now; send, record and log nothing.")
@click.option("-v", "--verbose", count=True, help="Also say what happened when all went well.")
@click.pass_context
def dispatch(ctx: click.Context, folder: Path | None, dry_run: bool, verbose: int) -> None:
    """Send every release whose send_at has come (for cron).

    Oldest send_at first; a release an earlier run left incomplete is continued. Releases
    without send_at are never sent by dispatch. A release more than [dispatch] max_late (default
    24h) after its send_at is reported once and not sent. Only one dispatcher runs at a time (with a
    PostgreSQL ledger, several work together).
    Nothing is printed when all went well (unless -v); each problem is one line on stderr, and
    every run adds lines to the log file ([dispatch] log_file, default dispatch.log).
    """
    ws = _workspace(ctx, folder)
    verbose += ctx.find_root().obj.verbose
    config = ws.config

    def report(run: ReleaseRun) -> None:
        for line in run.problems:
            click.echo(f"reldist: {line}", err=True)
        if (verbose or dry_run) and run.action in ("sent", "held", "would send", "not tried"):
            click.echo(_release_line(run, config))  # the other actions are problems, on stderr

    if config.inbox is not None and not dry_run:
        _read_inbox(config, verbose=verbose)
    result = run_dispatch(ws, now=dt.datetime.now(dt.UTC), dry_run=dry_run, on_release=report)
    for line in result.warnings:
        click.echo(f"reldist: warning: {line}", err=True)
    if verbose or dry_run:
        if not result.releases:
            click.echo("Nothing is due now.")
        following = result.schedule.next_waiting() if result.schedule else None
        if following is not None and following.send_at is not None:
            click.echo(
                f"Next: {following.release_id} at {describe_time(following.send_at, config.timezone)}."
            )
        if dry_run:
            click.echo("Dry run: nothing was sent, recorded or logged.")
    ctx.exit(result.exit_code)


def _read_inbox(config: Config, *, verbose: int) -> None:
    """With [inbox]: read it first, so bounces and unsubscribes suppress before anything is sent.
    A mailbox that cannot be read is a warning: the send goes on with the suppressions it has."""
    from ..errors import ReldistError
    from ..feedback.inbox import InboxBusyError, read_inbox

    try:
        found, where = read_inbox(config)
    except InboxBusyError:
        # Another reader (a dispatcher on another machine sharing the ledger, or cron's inbox) is
        # recording the mailbox now; what it records stops a message here as each is claimed.
        # Nothing is wrong, so cron mails nothing.
        if verbose:
            click.echo("inbox: another reldist is reading the mailbox now; not read again")
        return
    except ReldistError as exc:
        click.echo(f"reldist: warning: inbox: {exc}; sending with the suppressions recorded so far", err=True)
        return
    if verbose:
        click.echo(found.text(where=where))


def _release_line(run: ReleaseRun, config: Config) -> str:
    """``2026-11-eu-karaganda: sent 13; due 2026-11-28 10:00 (UTC+5), 2 h 5 min ago``"""
    line = f"{run.release_id}: {run.outcome}"
    if run.resume_at is not None:  # "held by the rate 100/day until 2026-12-02 09:14 (UTC+5)"
        line += f" until {describe_time(run.resume_at, config.timezone)}"
    if run.send_at is not None:
        ago = f", {describe_duration(run.late_by)} ago" if run.late_by >= dt.timedelta(minutes=1) else ""
        line += f"; due {describe_time(run.send_at, config.timezone)}{ago}"
    return line


@click.command()
@_WORKSPACE
@click.pass_context
def schedule(ctx: click.Context, folder: Path | None) -> None:
    """List the scheduled releases: when each is due, its recipients and its state.

    The due time is shown in the workspace's time zone and in UTC. States: waiting, due, late
    (not started long after send_at: is cron running?), in progress, done, too late (more than
    max_late after send_at: dispatch will not send it) and broken. Sends nothing.
    """
    ws = _workspace(ctx, folder)
    now = dt.datetime.now(dt.UTC)
    found = read_schedule(ws, now=now)
    config = ws.config
    zone = str(config.timezone)
    if found.entries:
        header = ("Release", f"Due ({zone})", "Due (UTC)", "Recipients", "State")
        rows = [
            (
                entry.release_id,
                describe_time(entry.send_at, config.timezone) if entry.send_at else "-",
                f"{entry.send_at.astimezone(dt.UTC):%Y-%m-%d %H:%M}" if entry.send_at else "-",
                "-" if entry.recipients is None else str(entry.recipients),
                _state(entry, now, config),
            )
            for entry in found.entries
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            cells = [cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(row)]
            click.echo("  ".join(cells).rstrip())
    else:
        click.echo("No release has a send_at yet (add one to a release.toml to schedule it).")
    if found.unscheduled:
        click.echo(f"Not scheduled (no send_at; dispatch never sends them): {', '.join(found.unscheduled)}")


def _state(entry: Scheduled, now: dt.datetime, config: Config) -> str:
    age = entry.age(now)
    progress = entry.progress
    max_late = describe_duration(dt.timedelta(seconds=config.dispatch.max_late))
    if entry.state == "waiting":
        return f"waiting (in {describe_duration(age)})"
    if entry.state == "due":
        return "due (the next dispatch run sends it)"
    if entry.state == "late":
        return f"late by {describe_duration(age)}: not started; is cron running? (sent until {max_late} late)"
    if entry.state == "in progress":
        held = "; a daily rate holds back the rest until a later run" if progress.held else ""
        return f"in progress: {progress.sent} of {progress.recipients} sent, {progress.pending} to go{held}"
    if entry.state == "done":
        shown = ", ".join(f"{k} {v}" for k, v in progress.counts.items() if v and k != "sent")
        return f"done: {progress.sent} sent" + (f" ({shown})" if shown else "")
    if entry.state == "too late":
        left = f"{progress.pending} of {progress.recipients} not sent" if progress.started else "not sent"
        return f"too late: {describe_duration(age)} after send_at, more than max_late ({max_late}); {left}"
    return f"broken: {entry.error}"
