"""What the deliverability check reports: findings, the result, and their JSON shapes.

Owns :class:`Finding` (one thing found: level, topic, a stable code, its place, the message and
the text it quotes), :class:`CheckResult` (the preflight's counts and every finding, with
``--strict``'s exit code and the shape of ``reldist check --format json``) and :func:`failure`
(the same shape for a check that stopped on an error, from the error's ``place``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .plan import Preflight

__all__ = ["TOPICS", "CheckResult", "Finding", "Level", "failure"]

Level = Literal["error", "warning", "note"]

#: The order of the groups in the terminal report.
TOPICS = (
    "Errors",
    "Content",
    "Subject and preheader",
    "Languages",
    "Personalisation",
    "Attachments",
    "Timing",
    "Unsubscribe",
    "Authentication",
    "Recipients",
    "Contacts",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the check found: where, what, and the text it quotes."""

    level: Level
    topic: str
    code: str  # stable, for scripts: "http-link", "image-alt", "html-size", ...
    place: str  # "releases/x/en.md:12", "reldist.toml [unsubscribe]", "templates/release.html.j2:30"
    message: str
    found: str = ""  # what was found, as quoted in the message (URL, image, variable, size)

    def __str__(self) -> str:
        return f"{self.place}: {self.message}" if self.place else self.message

    def as_dict(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}


@dataclass(slots=True)
class CheckResult:
    """The preflight's counts and every finding. ``exit_code`` applies ``--strict``."""

    report: Preflight
    findings: list[Finding] = field(default_factory=list)

    def count(self, level: Level) -> int:
        return sum(1 for f in self.findings if f.level == level)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 on an error (or, with ``strict``, on a warning), else 0."""
        if self.count("error") or (strict and self.count("warning")):
            return 1
        return 0

    def grouped(self) -> list[tuple[str, list[Finding]]]:
        """The findings by topic, in :data:`TOPICS` order, errors before warnings before notes."""
        order = {"error": 0, "warning": 1, "note": 2}
        groups: dict[str, list[Finding]] = {}
        for finding in self.findings:
            groups.setdefault(finding.topic, []).append(finding)
        ranked = sorted(groups.items(), key=lambda kv: TOPICS.index(kv[0]) if kv[0] in TOPICS else 99)
        return [(topic, sorted(items, key=lambda f: order[f.level])) for topic, items in ranked]

    def as_dict(self, *, strict: bool = False) -> dict[str, Any]:
        """The JSON shape of ``reldist check --format json``."""
        report = self.report
        code = self.exit_code(strict=strict)
        return {
            "release": report.release.id,
            "ok": code == 0,
            "exit_code": code,
            "strict": strict,
            "recipients": {
                "ready": report.ready,
                "by_language": dict(sorted(report.by_language.items())),
                "by_template": dict(sorted(report.by_template.items())),
                "skipped": len(report.invalid),
                "suppressed": len(report.suppressed),
                "duplicates": len(report.duplicates),
            },
            "largest_message": report.largest,
            "total_bytes": report.total_bytes,
            "counts": {level: self.count(level) for level in ("error", "warning", "note")},
            "findings": [f.as_dict() for f in self.findings],
        }


def failure(release: str, error: Exception) -> dict[str, Any]:
    """The JSON shape of a check that stopped on an error (same keys as :meth:`CheckResult.as_dict`)."""
    place = getattr(error, "place", "")
    message = getattr(error, "message", "") if place else str(error)
    code = getattr(error, "exit_code", 1)
    return {
        "release": release,
        "ok": False,
        "exit_code": code,
        "counts": {"error": 1, "warning": 0, "note": 0},
        "findings": [
            Finding("error", "Errors", type(error).__name__, place, message).as_dict(),
        ],
    }
