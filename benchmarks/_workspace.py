"""Benchmark workspaces: the example release sent to N generated journalists.

``make_workspace(folder, n)`` runs ``reldist init`` (the library call), writes
``contacts/bench.csv`` with ``n`` fictional recipients on reserved domains (example.org,
example.net, example.com and, for one in a hundred, the IDN domain ``газета.example``), mixing
ru/en/kk readers, salutations, one-language readers and the ``wire`` template, and points the
release's ``lists`` at it. ``enable_smtp`` adds an ``[smtp]`` table to reldist.toml.

The rows are generated from a fixed seed, so every run (and the mailmerge comparison) sees the
same list. Nothing is held in memory: rows are written as they are made.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterator
from pathlib import Path

RELEASE = "releases/2026-11-eu-karaganda"
LIST_NAME = "bench"

_RU_FIRST = ["Айгерим", "Денис", "Елена", "Артём", "Мадина", "Тимур", "Ольга", "Сергей", "Наталья", "Ирина"]
_RU_LAST = ["Нурланова", "Волков", "Ким", "Лысенко", "Жумабекова", "Оспанов", "Смирнова", "Петров", "Орлова"]
_KK_FIRST = ["Салтанат", "Бауыржан", "Ерлан", "Гүлнар", "Асқар", "Әсел", "Нұрлан", "Жанар"]
_KK_LAST = ["Ахметова", "Сейтқали", "Жақсыбеков", "Төлегенова", "Құрманов", "Әбдірахманова"]
_EN_FIRST = ["Rachel", "Jonas", "Laura", "Michael", "Anna", "Tom", "Sophie", "David", "Emma"]
_EN_LAST = ["Walsh", "Becker", "Dzhaksybekova", "O'Neill", "Schmidt", "Brown", "Dubois", "Nowak"]
_OUTLETS = [
    "Карагандинское обозрение",
    "Регион-ТВ Караганда",
    "Арқа тынысы",
    "Дала толқыны радиосы",
    "Столичный экспресс",
    "Steppe Standard (English edition)",
    "Eurasia Climate Review",
    "Northlight Press Agency",
    "Caspian & Steppe Wire",
]
_BEATS = ["environment", "climate", "economy", "politics", "science"]
_REGIONS = ["Karaganda", "Astana", "Almaty", "international"]
_DOMAINS = ["example.org", "example.net", "example.com"]
COLUMNS = ["email", "name", "lang", "languages", "outlet", "beat", "region", "salutation", "template", "tags"]


def contacts(n: int, seed: int = 2026) -> Iterator[dict[str, str]]:
    """``n`` distinct fictional journalists: ~50 % ru, ~30 % en, ~20 % kk readers."""
    rnd = random.Random(seed)
    for i in range(n):
        draw = rnd.random()
        if draw < 0.5:
            lang, first, last = "ru", rnd.choice(_RU_FIRST), rnd.choice(_RU_LAST)
        elif draw < 0.8:
            lang, first, last = "en", rnd.choice(_EN_FIRST), rnd.choice(_EN_LAST)
        else:
            lang, first, last = "kk", rnd.choice(_KK_FIRST), rnd.choice(_KK_LAST)
        name = f"{first} {last}" if rnd.random() > 0.05 else ""  # a few desks without a name
        salutation = ""
        if name and rnd.random() < 0.15:
            salutation = {"ru": f"Уважаемая {first}", "en": f"Dear {first}", "kk": f"Құрметті {first}"}[lang]
        languages = "ru" if lang == "ru" and rnd.random() < 0.05 else ""
        template = "wire" if rnd.random() < 0.03 else ""
        domain = "газета.example" if rnd.random() < 0.01 else rnd.choice(_DOMAINS)
        yield {
            "email": f"j{i:06d}.{lang}@{domain}",
            "name": name,
            "lang": lang,
            "languages": languages,
            "outlet": rnd.choice(_OUTLETS),
            "beat": rnd.choice(_BEATS),
            "region": rnd.choice(_REGIONS),
            "salutation": salutation,
            "template": template,
            "tags": rnd.choice(["regional;print", "national;online", "international;agency", "tv"]),
        }


def write_contacts(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in contacts(n):
            writer.writerow(row)


def make_workspace(folder: Path, n: int) -> Path:
    """A fresh example workspace in ``folder`` whose release goes to ``n`` generated recipients."""
    from reldist.workspace import init_workspace

    folder.mkdir(parents=True, exist_ok=True)
    init_workspace(folder, force=True)
    for stale in folder.glob("reldist.db*"):
        stale.unlink()
    write_contacts(folder / "contacts" / f"{LIST_NAME}.csv", n)
    release_toml = folder / RELEASE / "release.toml"
    text = release_toml.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^lists\s*=.*$", f'lists = ["{LIST_NAME}"]', text)
    if count != 1:
        raise SystemExit(f"{release_toml}: cannot find the 'lists' line to point at the generated list")
    release_toml.write_text(text, encoding="utf-8")
    return folder


def enable_smtp(folder: Path, port: int, connections: int, *, extra: str = "") -> None:
    """Append an ``[smtp]`` table (plain SMTP to 127.0.0.1, no rate) to reldist.toml."""
    config = folder / "reldist.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[smtp\].*?(?=^\[|\Z)", "", text)  # an earlier benchmark's table
    text += (
        f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f"connections = {connections}\ntimeout = 30\n{extra}"
    )
    config.write_text(text, encoding="utf-8")
