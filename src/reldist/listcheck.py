"""What ``reldist check`` says about a release's lists and reach (beside the bad rows).

Owns three findings: a column that reldist does not know and no template uses, with the closest
known column (``unknown-column``, one per list); which sheet of a workbook with several was read
(``sheet``, a note); and a release that reaches nobody (``no-recipients``). ``leftovers`` calls
:func:`list_findings`; ``deliverability`` turns the results into findings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import place

if TYPE_CHECKING:
    from .job import Job
    from .leftovers import Leftover
    from .plan import Preflight

__all__ = ["list_findings"]


def list_findings(job: Job, report: Preflight, columns: dict[str, set[str]]) -> list[Leftover]:
    """Unknown columns, the sheet read, and no recipients at all."""
    from .leftovers import Leftover

    release = job.release
    toml = place(release.folder / "release.toml", job.workspace.root)
    found = [*_columns(job, columns), *_sheets(job, report)]
    if report.ready == 0:
        why = (
            f"{sum(s.bad for s in report.invalid)} bad row(s), "
            f"{sum(not s.bad for s in report.invalid)} reading only other languages, "
            f"{len(report.suppressed)} do-not-contact, "
            f"{len(report.duplicates)} duplicate(s)"
        )
        lists = ", ".join(report.lists or release.lists)
        found.append(
            Leftover(
                "no-recipients",
                f"{toml} lists",
                f"this release reaches nobody: 0 recipients ready in {lists} ({why}); "
                "add rows to the list or name another list",
                lists,
            )
        )
    return found


def _columns(job: Job, lists: dict[str, set[str]]) -> list[Leftover]:
    """One warning a list for the columns reldist does not know and no template uses."""
    import jinja2

    from .leftovers import Leftover
    from .references import recipient_variables
    from .vocabulary import KNOWN_COLUMNS, closest_column

    folder = job.renderer.folder
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True)
    used = {
        variable
        for path in sorted(folder.glob("*.j2"))
        for variable, _ in recipient_variables(env, path.name)
    }
    found = []
    for list_file, columns in sorted(lists.items()):
        unknown = sorted(c for c in columns if c and c not in KNOWN_COLUMNS and c not in used)
        if not unknown:
            continue
        named = []
        for column in unknown:
            guess = closest_column(column)
            named.append(f"{column!r}" + (f" (did you mean {guess!r}?)" if guess else ""))
        found.append(
            Leftover(
                "unknown-column",
                list_file,
                f"{', '.join(named)}: not a column reldist knows, and no template uses it "
                "(templates can, as recipient.<column>); rename it if it is meant as one of "
                f"{', '.join(KNOWN_COLUMNS)}",
                ", ".join(unknown),
            )
        )
    return found


def _sheets(job: Job, report: Preflight) -> list[Leftover]:
    """A note for each workbook with several sheets: which one was read."""
    from .contacts import list_path
    from .leftovers import Leftover
    from .sheets import sheet_names

    root = job.workspace.root
    found = []
    for name in report.lists or job.release.lists:
        base, _, sheet = name.partition("#")
        path = list_path(root, base)
        if path.suffix.lower() != ".xlsx":
            continue
        names = sheet_names(path)
        if len(names) < 2:
            continue
        read = sheet or names[0]
        others = ", ".join(repr(n) for n in names if n != read)
        found.append(
            Leftover(
                "sheet",
                place(path, root),
                f"the workbook has {len(names)} sheets; read {read!r}, not {others} "
                f"(name another as {base}#<sheet> in lists)",
                read,
                "note",
            )
        )
    return found
