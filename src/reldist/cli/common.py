"""Helpers shared by the command modules: loading the workspace and release, printing.

Imports only click at the top: the library modules are loaded by the helper that needs them, so
that importing this module costs nothing a command does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..plan import Preflight
    from ..release import Release
    from ..workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


def selection(command: F) -> F:
    """The options that choose recipients: ``--list NAME`` and ``--where COLUMN=VALUE``."""
    command = click.option(
        "--where",
        multiple=True,
        metavar="COLUMN=VALUE",
        help="Only contacts whose column has this value (repeatable; all must match).",
    )(command)
    return click.option(
        "--list",
        "lists",
        multiple=True,
        metavar="NAME",
        help="Use this contacts list instead of the release's (repeatable).",
    )(command)


def state(ctx: click.Context) -> tuple[Path | None, Path | None]:
    obj = ctx.find_root().obj
    return obj.workspace, obj.config


def workspace(ctx: click.Context, hint: str | None = None) -> Workspace:
    from ..workspace import open_workspace

    folder, config = state(ctx)
    return open_workspace(start=folder, config=config, hint=Path(hint) if hint else None)


def release(ctx: click.Context, name: str) -> tuple[Workspace, Release]:
    from ..names import find_release
    from ..release import load_release

    ws = workspace(ctx, hint=name)
    folder = find_release(name, ws.root)
    return ws, load_release(folder, workspace=ws.root, default_languages=ws.config.languages)


def recorded_release(name: str, ws: Workspace, known: list[str]) -> str:
    """The id of RELEASE for ``status`` and ``report``: found as ``send`` finds it (a folder, a
    folder name or an id), or an id the ledger has (``known``) whose folder is gone.
    Neither: :class:`ReleaseError` listing the releases with the closest one."""
    from ..names import find_release, release_id

    if name in known and not (ws.root / "releases" / name).is_dir() and "/" not in name:
        return name
    return release_id(find_release(name, ws.root, also=known), ws.root)


def where_pairs(values: tuple[str, ...]) -> list[tuple[str, str]]:
    from ..contacts import parse_where

    return [parse_where(value) for value in values]


def warn(text: str) -> None:
    click.echo(click.style("warning: ", fg="yellow") + text, err=True)


def print_preflight(report: Preflight, *, verbose: int = 0) -> None:
    """The preflight summary: problems first, each on its own line, then the counts."""
    from ..describe import count
    from ..values import format_size

    release = report.release
    click.echo(
        f"Release {release.id}: {', '.join(release.languages)}; lists: {', '.join(report.lists or release.lists)}; "
        f"template: {release.template}"
    )
    for skipped in report.invalid:
        label = click.style("skipped: ", fg="red") if skipped.bad else "not for this release: "
        click.echo(label + str(skipped))
    for skipped in report.duplicates:
        click.echo(click.style("merged: ", fg="yellow") + str(skipped))
    for skipped in report.suppressed if verbose else ():
        click.echo("suppressed: " + str(skipped))
    languages = ", ".join(f"{lang} first {n}" for lang, n in sorted(report.by_language.items()))
    templates = ", ".join(f"{name} {n}" for name, n in sorted(report.by_template.items()))
    other = sum(not s.bad for s in report.invalid)  # good rows for a release in their language
    click.echo(
        f"{count(report.ready, 'recipient')} ready ({languages or 'none'}; templates: {templates or 'none'}); "
        f"{len(report.invalid) - other} skipped, {len(report.suppressed)} suppressed, "
        + (f"{other} reading only other languages, " if other else "")
        + f"{count(len(report.duplicates), 'duplicate')} merged"
    )
    if report.ready:
        click.echo(
            f"Largest message {format_size(report.largest)}, {format_size(report.total_bytes)} in all."
        )
