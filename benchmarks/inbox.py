"""How fast ``reldist inbox`` reads a mailbox: a Maildir of N mixed reports, messages/s and peak RSS.

The workspace is the benchmark workspace (``_workspace.py``) with ``--recipients`` journalists,
sent to the outbox with one-click links on, so the ledger holds real deliveries with real
Message-IDs. The Maildir then gets N reports made by the test corpus (``tests/corpus.py``) for
random recipients: 30 % hard bounces (Postfix, Exchange, Gmail DSNs; Exim and qmail texts for
flufl.bounce), 15 % soft, 5 % policy, 5 % ARF complaints, 20 % replies, 15 % auto-replies, 5 %
mailed unsubscribes and 5 % unrelated mail, each with its own Message-ID. The measured run is
the real command, ``reldist inbox --maildir DIR``, in a child process (wall time from start to
exit, so start-up is included; peak RSS from wait4). Run it with the project's venv active::

    python benchmarks/inbox.py [--sizes 2000,10000,20000] [--recipients 2000]
"""

from __future__ import annotations

import argparse
import mailbox
import random
import shutil
import sys
import tempfile
from pathlib import Path

from _measure import machine, run_child, table
from _workspace import RELEASE, make_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import corpus
from corpus import Original

MIX = [
    (corpus.postfix_hard, 10),
    (corpus.exchange_hard, 6),
    (corpus.gmail_hard, 6),
    (corpus.exim_text, 4),
    (corpus.qmail_text, 4),
    (corpus.yandex_soft, 15),
    (corpus.mailru_policy, 5),
    (corpus.arf_complaint, 5),
    (corpus.reply_quoted, 10),
    (corpus.reply_ru_quoted, 5),
    (corpus.reply_unquoted, 5),
    (corpus.auto_reply_en, 5),
    (corpus.auto_reply_ru, 5),
    (corpus.auto_reply_kk, 5),
    ("unsubscribe", 5),
    ("newsletter", 5),
]


def originals(root: Path) -> list[Original]:
    import sqlite3

    with sqlite3.connect(root / "reldist.db") as db:
        return [
            Original(
                address, message_id, "EU project", f"To: {address}\nMessage-ID: {message_id}\nSubject: EU\n"
            )
            for address, message_id in db.execute(
                "SELECT address, message_id FROM deliveries WHERE status = 'sent' AND address NOT LIKE '%газета%'"
            )
        ]


def fill(maildir: Path, people: list[Original], n: int, keys: object, seed: int = 9) -> None:
    rng = random.Random(seed)
    makers = [m for m, _ in MIX]
    weights = [w for _, w in MIX]
    box = mailbox.Maildir(maildir, create=True)
    for number in range(n):
        maker = rng.choices(makers, weights)[0]
        person = rng.choice(people)
        if maker == "unsubscribe":
            raw = corpus.unsubscribe_mail(person, keys.sign("2026-11-eu-karaganda", person.address))  # type: ignore[attr-defined]
        elif maker == "newsletter":
            raw = corpus.newsletter()
        else:
            raw = maker(person)  # type: ignore[operator]
        box.add(f"Message-ID: <bench.{number}@reports.example>\n".encode() + raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000,20000")
    parser.add_argument("--recipients", type=int, default=2000)
    args = parser.parse_args()
    reldist = shutil.which("reldist")
    if reldist is None:
        sys.exit("reldist is not on PATH: activate the project's venv (pip install -e '.[test]')")
    from reldist.tokens import load_keys

    rows = []
    with tempfile.TemporaryDirectory(prefix="reldist-inbox-bench-") as tmp:
        root = make_workspace(Path(tmp) / "ws", args.recipients)
        toml = root / "reldist.toml"
        toml.write_text(toml.read_text(encoding="utf-8").replace("# url = ", "url = ", 1), encoding="utf-8")
        sent = run_child([reldist, "send", RELEASE, "--yes"], cwd=root)
        if sent.returncode != 0:
            sys.exit(sent.stderr or sent.stdout)
        shutil.rmtree(root / "outbox")  # the ledger is what inbox reads; the .eml files are not needed
        people = originals(root)
        keys = load_keys(key_file=root / "unsubscribe.key", key_env=None, place="")
        backup = root / "reldist.db.fresh"
        shutil.copyfile(root / "reldist.db", backup)
        for n in (int(s) for s in args.sizes.split(",")):
            shutil.copyfile(backup, root / "reldist.db")
            for extra in ("reldist.db-wal", "reldist.db-shm"):
                (root / extra).unlink(missing_ok=True)
            maildir = Path(tmp) / f"Maildir-{n}"
            fill(maildir, people, n, keys)
            run = run_child([reldist, "inbox", "--maildir", str(maildir)], cwd=root)
            if run.returncode != 0:
                sys.exit(run.stderr or run.stdout)
            again = run_child([reldist, "inbox", "--maildir", str(maildir)], cwd=root)
            rows.append(
                [
                    n,
                    f"{run.wall:.2f}",
                    f"{n / run.wall:,.0f}",
                    f"{run.cpu:.2f}",
                    f"{run.maxrss_mb:.1f}",
                    f"{n / again.wall:,.0f}",
                    run.stdout.strip().splitlines()[-1][:150],
                ]
            )
            shutil.rmtree(maildir)
    info = machine()
    print(
        f"reldist inbox over a Maildir: {info['reldist']}, Python {info['python']}, {info['cpus']} CPUs ({info['cpu']})"
    )
    print()
    print(
        table(
            ["reports", "wall s", "msg/s", "CPU s", "peak RSS MB", "msg/s again (all recorded)", "summary"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
