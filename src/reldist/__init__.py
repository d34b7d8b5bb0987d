"""reldist: send a press release to journalists, one personal bilingual email each, and keep a record.

The command line (``reldist.cli``) is a thin layer over this package; everything it does can be
done from Python::

    from reldist import open_workspace, load_release, find_release, Job, send_release

    ws = open_workspace(start=Path("press-office"))
    release = load_release(find_release("2026-11-eu-karaganda", ws.root), workspace=ws.root)
    with ws.lock("send"), ws.open_ledger() as ledger:
        job = Job(ws, release, ledger=ledger)
        job.preflight()
        result = send_release(job, ledger)
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    ContactsError,
    LedgerError,
    LockHeldError,
    ReldistError,
    ReleaseError,
    TemplateError,
    TransportError,
)

# The rest is imported when first used, so that importing one module (say reldist.transport.base)
# does not load the whole pipeline.
_LAZY = {
    "Config": "config",
    "load_config": "config",
    "Ledger": "ledger",
    "Release": "release",
    "find_release": "names",
    "load_release": "release",
    "Job": "job",
    "SendResult": "engine",
    "send_release": "send",
    "Workspace": "workspace",
    "init_workspace": "workspace",
    "open_workspace": "workspace",
}

if TYPE_CHECKING:
    from .config import Config, load_config
    from .engine import SendResult
    from .job import Job
    from .ledger import Ledger
    from .names import find_release
    from .release import Release, load_release
    from .send import send_release
    from .workspace import Workspace, init_workspace, open_workspace


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'reldist' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "Config",
    "ConfigError",
    "ContactsError",
    "Job",
    "Ledger",
    "LedgerError",
    "LockHeldError",
    "ReldistError",
    "Release",
    "ReleaseError",
    "SendResult",
    "TemplateError",
    "TransportError",
    "Workspace",
    "__version__",
    "find_release",
    "init_workspace",
    "load_config",
    "load_release",
    "open_workspace",
    "send_release",
]
