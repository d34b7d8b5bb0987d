"""The dispatch log: one logfmt line (``key=value``) per release and per ``reldist dispatch`` run.

Owns :class:`DispatchLog` (``[dispatch] log_file``). It only formats and appends; what a run did
comes from ``dispatch``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .describe import describe_duration
from .schedule import LATE_AFTER

if TYPE_CHECKING:
    from .dispatch import DispatchResult, ReleaseRun

__all__ = ["DispatchLog"]


class DispatchLog:
    """Appends one logfmt line (``key=value``) per release and per run to the dispatch log.

    A line is written with a single ``write`` on a file opened for appending, so a second
    dispatcher's "busy" line never interleaves with the running one's. A log that cannot be
    written does not stop the run; the error is kept in :attr:`errors` for the caller to report.
    """

    def __init__(self, path: Path | None, tz: dt.tzinfo) -> None:
        self.path = path
        self.tz = tz
        self.errors: list[str] = []

    def write(self, when: dt.datetime, fields: Mapping[str, object]) -> None:
        if self.path is None:
            return
        parts = [when.astimezone(self.tz).isoformat(timespec="seconds"), f"pid={os.getpid()}"]
        parts += [_logfmt(key, value) for key, value in fields.items() if value is not None and value != ""]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(" ".join(parts) + "\n")
        except OSError as exc:
            if not self.errors:
                self.errors.append(f"cannot write the dispatch log {self.path}: {exc.strerror or exc}")

    def release(self, when: dt.datetime, run: ReleaseRun) -> None:
        self.write(
            when,
            {
                "event": "release",
                "release": run.release_id,
                "send_at": run.send_at.astimezone(self.tz).isoformat() if run.send_at else None,
                "state": run.state,
                "action": run.action,
                "outcome": run.outcome,
                "late": describe_duration(run.late_by) if run.late_by > LATE_AFTER else None,
                "resume": run.resume_at.astimezone(self.tz).isoformat(timespec="seconds")
                if run.resume_at
                else None,
                "exit": run.exit_code,
                # what stopped the release, not the first bad contact row reported before it
                "error": run.cause or (run.problems[0] if run.exit_code and run.problems else None),
            },
        )

    def run(self, when: dt.datetime, result: DispatchResult) -> None:
        following = result.schedule.next_waiting() if result.schedule else None
        sent = sum(r.result.outcomes.get("sent", 0) for r in result.releases if r.result is not None)
        self.write(
            when,
            {
                "event": "run",
                "releases": len(result.releases),
                "sent": sent,
                "problems": len(result.problems),
                "exit": result.exit_code,
                "elapsed": f"{result.elapsed:.1f}s",
                "next": (
                    f"{following.release_id}@{following.send_at.astimezone(self.tz).isoformat()}"
                    if following is not None and following.send_at is not None
                    else None
                ),
            },
        )


def _logfmt(key: str, value: object) -> str:
    text = " ".join(str(value).split())  # one line, always
    if not text or any(c in text for c in ' "=\\'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{key}={text}"
