"""``reldist init`` and ``reldist check`` (the preflight and the deliverability report)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..deliverability import check_release
from ..describe import count
from ..errors import ConfigError, ReldistError
from ..findings import CheckResult, failure
from ..job import Job
from ..transport.factory import check_transport, make_transport
from ..workspace import init_workspace
from . import common


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the example files if a workspace is already there.")
def init(directory: Path | None, force: bool) -> None:
    """Create a workspace in DIRECTORY with a working bilingual example release.

    The example sends to outbox/ (.eml files), so it works without a mail server. Without
    DIRECTORY, the current folder, which must then be empty (or name it: 'reldist init .').
    """
    if directory is None:
        directory = Path(".")
        crowd = sorted(p.name for p in Path.cwd().iterdir() if not p.name.startswith("."))
        if crowd and not force:
            shown = ", ".join(crowd[:5]) + (", …" if len(crowd) > 5 else "")
            raise ConfigError(
                f"{Path.cwd()}: the current folder is not empty ({shown}); name a new folder "
                "('reldist init press-office'), or 'reldist init .' to add the workspace here"
            )
    written = init_workspace(directory, force=force)
    click.echo(f"Created a reldist workspace in {directory} ({count(len(written), 'file')}).")
    click.echo("Next:")
    if directory.resolve() != Path.cwd().resolve():
        click.echo(f"  cd {directory}")
    click.echo("  reldist check releases/2026-11-eu-karaganda")
    click.echo("  reldist send releases/2026-11-eu-karaganda")


@click.command()
@click.argument("release")
@common.selection
@click.option(
    "--strict",
    is_flag=True,
    help="Treat every warning (a bad contact row included) as an error: exit 1.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: a report grouped by subject; json: one object for scripts (on stdout).",
)
@click.pass_context
def check(
    ctx: click.Context,
    release: str,
    lists: tuple[str, ...],
    where: tuple[str, ...],
    strict: bool,
    fmt: str,
) -> None:
    """Preflight RELEASE and check its deliverability: render every recipient's message; send nothing.

    Prints every bad contact row as file:line, the duplicates merged and the counts, then the
    warnings that make mail land in spam or look broken (HTML size, images without alt text,
    http:// and local links, preheaders, subjects, unsubscribe, attachments, the embargo,
    missing languages, template variables a list never fills, SPF/DKIM/DMARC), each naming its
    place. Exit 1 when the release, a template or the config is broken (with --strict, also on
    any warning); warnings alone exit 0.
    """
    if fmt == "json":
        try:
            result = _check(ctx, release, lists, where)
        except ReldistError as exc:
            click.echo(json.dumps(failure(release, exc), ensure_ascii=False, indent=2))
            ctx.exit(exc.exit_code)
        click.echo(json.dumps(result.as_dict(strict=strict), ensure_ascii=False, indent=2))
        ctx.exit(result.exit_code(strict=strict))
    result = _check(ctx, release, lists, where)
    verbose = ctx.find_root().obj.verbose
    common.print_preflight(result.report, verbose=verbose)
    print_findings(result, verbose=verbose)
    if result.exit_code(strict=strict):
        why = "" if result.count("error") else " (--strict: warnings count as errors)"
        click.echo(f"Check failed{why}: {_counts(result)}; nothing was sent.")
        ctx.exit(1)
    click.echo("Check passed: nothing was sent.")


def _check(ctx: click.Context, release: str, lists: tuple[str, ...], where: tuple[str, ...]) -> CheckResult:
    ws, loaded = common.release(ctx, release)
    check_transport(make_transport(ws.config, loaded.id))  # the SMTP password can be had
    ledger = ws.open_ledger(create=False) if ws.has_ledger() else None
    try:
        job = Job(ws, loaded, lists=lists, where=common.where_pairs(where), ledger=ledger)
        return check_release(job)
    finally:
        if ledger is not None:
            ledger.close()


_STYLE = {"error": "red", "warning": "yellow", "note": "cyan"}


def print_findings(result: CheckResult, *, verbose: int = 0) -> None:
    """The deliverability findings grouped by subject (bad rows are printed by print_preflight)."""
    groups = [(topic, items) for topic, items in result.grouped() if topic != "Contacts"]
    if not groups:
        click.echo("Deliverability: no warnings.")
        return
    click.echo(f"Deliverability: {_counts(result)}")
    for topic, items in groups:
        click.echo(f"  {topic}")
        for finding in items:
            if finding.code == "dkim-record" and not verbose:
                click.echo(
                    "    "
                    + click.style("note: ", fg="cyan")
                    + f"{finding.place}: signing with DKIM (-v shows the DNS record)"
                )
                continue
            click.echo("    " + click.style(f"{finding.level}: ", fg=_STYLE[finding.level]) + str(finding))


def _counts(result: CheckResult) -> str:
    parts = []
    for level in ("error", "warning", "note"):
        n = result.count(level)
        if n:
            parts.append(f"{n} {level}{'s' if n != 1 else ''}")
    bad = sum(1 for f in result.findings if f.code == "bad-row")
    if bad and parts:  # the bad rows are among the warnings; print_preflight has shown them
        parts[1 if result.count("error") else 0] += f" ({bad} of them bad contact rows, listed above)"
    return ", ".join(parts) or "nothing to report"
