"""Making releases: ``reldist new`` (a release folder to fill in) and ``reldist import`` (a file
from Word, a text export, HTML or Markdown turned into a language of a release).

Owns writing inside ``releases/<id>/`` and nothing else: ``release.toml``, ``<lang>.md``,
``files/`` (images from a .docx) and ``.imported`` (what reldist last wrote, so that a file the
press officer has edited since is never overwritten without ``force``). Each guess the import
made is returned as a note naming ``releases/<id>/<lang>.md:LINE``. The conversions live in
``wordtext`` (Word's .txt), ``html`` (HTML and mammoth's output of a .docx) and ``shape`` (the
press-release shape and the typography).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReleaseError, place
from ..leftovers import script_mismatch
from ..names import bad_release_id
from .blocks import Block, Links, to_markdown
from .html import html_blocks
from .shape import join_broken, shape
from .wordtext import decode, paragraphs

__all__ = ["SKELETON", "Imported", "import_file", "new_release"]

SUFFIXES = (".docx", ".txt", ".md", ".markdown", ".html", ".htm")
_STATE = ".imported"
#: What ``reldist new`` writes for each language (``check`` finds its lines left unfilled).
SKELETON = {
    "ru": (
        "# Заголовок: что произошло, в одной строке\n\n"
        "**ГОРОД** — Главное: кто, что, где и когда.\n\n"
        "Подробности и цифры.\n\n"
        "> «Цитата», — сказал(а) имя и должность.\n\n"
        "## Справка для редакций\n\n- Факт о проекте или организации.\n\n"
        "## Контакты для прессы\n\n- Имя, [адрес](mailto:press@example.org), телефон\n"
    ),
    "en": (
        "# Headline: what happened, in one line\n\n"
        "**CITY** — The news: who, what, where and when.\n\n"
        "Details and figures.\n\n"
        "> “A quote,” said name, title.\n\n"
        "## Notes to editors\n\n- A fact about the project or the organisation.\n\n"
        "## Press contacts\n\n- Name, [address](mailto:press@example.org), phone\n"
    ),
    "kk": (
        "# Тақырып: не болды, бір жолда\n\n"
        "**ҚАЛА** — Басты жаңалық: кім, не, қайда және қашан.\n\n"
        "Толығырақ мәліметтер мен сандар.\n\n"
        "> «Дәйексөз», — деді аты-жөні, лауазымы.\n\n"
        "## Редакцияларға арналған анықтама\n\n- Жоба немесе ұйым туралы дерек.\n\n"
        "## Баспасөз үшін байланыс\n\n- Аты-жөні, [мекенжай](mailto:press@example.org), телефон\n"
    ),
}


@dataclass(slots=True)
class Imported:
    """What an import wrote and the guesses it made (``file:line: …`` each)."""

    path: Path
    notes: list[str] = field(default_factory=list)
    created: bool = False  # the release folder was made by this import
    subject: str | None = None  # the subject set from the headline, if it was empty
    warnings: list[str] = field(default_factory=list)  # ``file: …`` each, such as the wrong language


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _state(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / _STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write(folder: Path, name: str, text: str, *, force: bool, root: Path) -> None:
    """Write ``name`` unless it was edited since reldist wrote it (then only with ``force``)."""
    path = folder / name
    state = _state(folder)
    if path.exists() and not force:
        current = path.read_text(encoding="utf-8", errors="replace")
        if state.get(name) != _digest(current) and current.strip():
            raise ReleaseError(
                "exists and was edited since reldist wrote it; add --force to replace it",
                place=place(path, root),
            )
    path.write_text(text, encoding="utf-8")
    state[name] = _digest(text)
    (folder / _STATE).write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _toml_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def new_release(
    root: Path,
    release_id: str,
    *,
    languages: tuple[str, ...],
    lists: tuple[str, ...],
    template: str = "release",
    force: bool = False,
    made_by: str = "'reldist new'",
) -> Path:
    """Create ``releases/<id>/`` with a release.toml and a Markdown file a language to fill in;
    ``made_by`` is what the release.toml's first comment says made it."""
    problem = bad_release_id(release_id)
    if problem:
        raise ReleaseError(problem)
    folder = root / "releases" / release_id
    if (folder / "release.toml").exists() and not force:
        raise ReleaseError("the release exists already", place=place(folder, root))
    folder.mkdir(parents=True, exist_ok=True)
    tables = "".join(f'\n[{lang}]\nfile = "{lang}.md"\nsubject = ""\npreheader = ""\n' for lang in languages)
    (folder / "release.toml").write_text(
        f"# Made by {made_by}. Fill in each language's subject and preheader, then run\n"
        f"# 'reldist check releases/{release_id}'.\n"
        f"languages = {_toml_list(languages)}\nlists = {_toml_list(lists)}\n"
        f'template = "{template}"\n'
        "# send_at = 2026-11-28T10:00:00+05:00   # when 'reldist dispatch' sends it\n"
        "# embargo = 2026-11-28T12:00:00+05:00   # shown at the top of every language\n" + tables,
        encoding="utf-8",
    )
    for lang in languages:
        if not (folder / f"{lang}.md").exists() or force:
            _write(folder, f"{lang}.md", SKELETON.get(lang, SKELETON["en"]), force=True, root=root)
    return folder


def convert(file: Path, lang: str, *, files: Path) -> tuple[str, list[tuple[int, str]]]:
    """FILE as the project's Markdown and the guesses made, as (line, note)."""
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReleaseError(
            f"cannot import a {suffix or 'file without an extension'} (use {', '.join(SUFFIXES)})",
            place=str(file),
        )
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ReleaseError(f"cannot read it ({exc.strerror})", place=str(file)) from None
    links = Links()
    general: list[str] = []
    if suffix in (".md", ".markdown"):
        text, _ = decode(data)
        return text.replace("\r\n", "\n"), []
    if suffix == ".docx":
        from .docx import docx_html

        html, messages = docx_html(file, files)
        general += messages
        blocks = html_blocks(html, links)
    elif suffix in (".html", ".htm"):
        text, _ = decode(data)
        blocks = html_blocks(text, links)
    else:
        text, encoding = decode(data)
        if encoding not in ("utf-8", "utf-8-sig"):
            general.append(f"read {file.name} as {encoding}")
        blocks = join_broken(paragraphs(text, links), links)
    if not any(links.text_of(b.text).strip() or b.rows for b in blocks):
        raise ReleaseError("there is no text in it", place=str(file))
    shaped = shape(blocks, links, lang)
    markdown, starts = to_markdown(shaped, links)
    notes = [(1, note) for note in general]
    notes += [(start, note) for block, start in zip(shaped, starts, strict=True) for note in block.notes]
    return markdown, notes


def import_file(
    root: Path,
    release_id: str,
    lang: str,
    file: Path,
    *,
    force: bool = False,
    lists: tuple[str, ...] = ("example",),
) -> Imported:
    """Turn FILE into ``releases/<id>/<lang>.md`` (making the release if needed); see the module."""
    if not re.fullmatch(r"[a-z]{2,3}", lang):
        raise ReleaseError(f"{lang!r} is not a language code such as ru, en, kk")
    folder = root / "releases" / release_id
    created = not (folder / "release.toml").exists()
    if created:  # with this language only: another is added when it is imported
        new_release(
            root, release_id, languages=(lang,), lists=lists, made_by=f"'reldist import' from {file.name}"
        )
    markdown, notes = convert(file, lang, files=folder / "files")
    name = f"{lang}.md"
    _write(folder, name, markdown, force=force, root=root)
    where = place(folder / name, root)
    result = Imported(folder / name, [f"{where}:{line}: {note}" for line, note in notes], created)
    mismatch = script_mismatch(markdown, lang)
    if mismatch is not None:
        code = {"Russian": "ru", "Kazakh": "kk"}.get(mismatch[0].split()[0], "CODE")
        result.warnings.append(
            f"{where}: imported as {lang}, but it looks like {mismatch[0]}; if it is, import it as "
            f"'reldist import {release_id} {code} {file}' and take {lang} out of release.toml"
        )
    headline = next((line[2:].strip() for line in markdown.splitlines() if line.startswith("# ")), "")
    result.subject = _set_subject(folder / "release.toml", lang, _plain(headline))
    return result


def _plain(markdown: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"\\(.)", r"\1", text.replace("**", "").replace("*", "")).strip()


def _set_subject(toml: Path, lang: str, headline: str) -> str | None:
    """Fill ``[lang] subject`` from the headline when it is empty (adding the language if missing)."""
    if not headline:
        return None
    text = toml.read_text(encoding="utf-8")
    value = json.dumps(headline, ensure_ascii=False)
    table = re.search(rf"(?m)^\[{lang}\][ \t]*\n(?P<body>(?:(?!\[).*\n?)*)", text)
    if table is None:
        languages = re.search(r"(?m)^languages\s*=\s*\[(?P<items>[^\]]*)\]", text)
        if languages is not None and f'"{lang}"' not in languages.group("items"):
            items = languages.group("items").strip()
            new = f'languages = [{items}{", " if items else ""}"{lang}"]'
            text = text[: languages.start()] + new + text[languages.end() :]
        text = text.rstrip("\n") + f'\n\n[{lang}]\nfile = "{lang}.md"\nsubject = {value}\n'
        toml.write_text(text, encoding="utf-8")
        return headline
    body = table.group("body")
    subject = re.search(r'(?m)^subject\s*=\s*(""|\'\')\s*$', body)
    if re.search(r"(?m)^subject\s*=", body) and subject is None:
        return None  # a subject is there already
    if subject is not None:
        start = table.start("body") + subject.start()
        text = text[:start] + f"subject = {value}" + text[table.start("body") + subject.end() :]
    else:
        text = text[: table.end(0) - len(body)] + f"subject = {value}\n" + body + text[table.end(0) :]
    toml.write_text(text, encoding="utf-8")
    return headline


def blocks_of(text: str) -> list[Block]:  # pragma: no cover - kept for library users
    """The paragraphs of a Word text export (fields resolved), before shaping."""
    return paragraphs(text, Links())
