"""``reldist new`` and ``reldist import``: making a release, and bringing one in from Word.

Thin: each command finds the workspace, calls one function of ``reldist.importer`` and prints
what it did, with every guess as ``releases/<id>/<lang>.md:LINE: …`` for the press officer to
check.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import common


def _release_id(name: str) -> str:
    """A release id from ``2026-11-x`` or ``releases/2026-11-x``."""
    return Path(name.rstrip("/")).name


def _lists(root: Path) -> tuple[str, ...]:
    folder = root / "contacts"
    names = sorted(
        {p.stem for p in folder.glob("*") if p.suffix.lower() in (".csv", ".tsv", ".txt", ".xlsx")}
        - {"suppressed"}
    )
    return tuple(names) or ("example",)


@click.command()
@click.argument("release_id")
@click.option(
    "--lang",
    "languages",
    multiple=True,
    metavar="CODE",
    help="A language (repeatable; default: reldist.toml's).",
)
@click.option(
    "--list",
    "lists",
    multiple=True,
    metavar="NAME",
    help="A contacts list (repeatable; default: every list).",
)
@click.option("--force", is_flag=True, help="Replace release.toml and the Markdown files if they exist.")
@click.pass_context
def new(
    ctx: click.Context, release_id: str, languages: tuple[str, ...], lists: tuple[str, ...], force: bool
) -> None:
    """Create releases/RELEASE_ID with a release.toml and a Markdown file a language to fill in.

    The Markdown files are laid out as a press release (headline, dateline, text, quote, notes to
    editors, press contacts); fill in the text and each language's subject, then run 'reldist
    check'.
    """
    from ..importer import new_release

    ws = common.workspace(ctx)
    root = ws.root
    folder = new_release(
        root,
        _release_id(release_id),
        languages=languages or ws.config.languages,
        lists=lists or _lists(root),
        force=force,
    )
    rel = folder.relative_to(root).as_posix()
    click.echo(
        f"Created {rel}: release.toml and {', '.join(f'{lang}.md' for lang in (languages or ws.config.languages))}."
    )
    click.echo(f"Next: write the text and the subjects, then 'reldist check {rel}'.")


@click.command("import")
@click.argument("release")
@click.argument("lang")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace LANG's Markdown file even if it was edited since.")
@click.pass_context
def import_(ctx: click.Context, release: str, lang: str, file: Path, force: bool) -> None:
    """Turn FILE (.docx, Word's .txt, .html or .md) into RELEASE's LANG version (releases/<id>/<lang>.md).

    The release is created if it does not exist. Every guess (the headline, the dateline,
    quotes, notes to editors, contacts, links rebuilt or dropped) is printed as file:line; a
    file edited since reldist wrote it is only replaced with --force. An empty subject is set
    from the headline.
    """
    from ..importer import import_file

    ws = common.workspace(ctx)
    result = import_file(
        ws.root,
        _release_id(release),
        lang.lower(),
        file,
        force=force,
        lists=_lists(ws.root),
    )
    for note in result.notes:
        click.echo(note)
    rel = result.path.relative_to(ws.root).as_posix()
    made = " (a new release)" if result.created else ""
    click.echo(f"Wrote {rel}{made}: {len(result.notes)} guesses to check, listed above.")
    for warning in result.warnings:
        common.warn(warning)
    if result.subject:
        click.echo(f"The {lang} subject was empty; set it from the headline: {result.subject!r}")
    click.echo(f"Next: read {rel}, then 'reldist check {rel.rsplit('/', 1)[0]}'.")
