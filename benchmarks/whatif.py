"""What would the proposed hot-path changes buy? Measured by patching this benchmark's own process.

    python benchmarks/whatif.py --n 10000 --connections 4

Runs the in-process pipeline of ``send.py`` (``Job`` → ``preflight`` → ``send_release`` into
Postfix's smtp-sink) several times, each in a fresh child process with a fresh ledger, adding one
monkeypatch at a time. Nothing under ``src/`` is changed; the patches only stand in for changes
proposed in ``benchmarks/README.md``, to show what each is worth per message:

``canonical``   the SMTP transport trusts bytes from ``MessageBuilder`` to be CRLF-canonical and
                free of lines starting with "." (true by construction: base64 bodies, folded
                headers) and skips ``_crlf`` and ``_dot_stuffed`` entirely (since e05aa32 they
                check first — three ``count`` calls and one search over ~44 KB — and skip their
                regex passes when nothing needs changing).
``wrapcache``   Jinja's ``wordwrap`` filter memoised: the template wraps the same per-language
                title and footer for every recipient.
``fastb64``     base64 of a whole body with one ``binascii.b2a_base64`` call and 76-byte slices,
                instead of ``base64.encodebytes`` (a Python loop over 57-byte chunks) + replace.
``noinline``    css-inline not run per message: the upper bound of inlining once per
                (template, languages) and substituting the per-recipient strings afterwards.
``lightcheck``  preflight renders each recipient's templates (so a template or contact error is
                still found for every row) but inlines CSS and builds MIME only for the first
                recipient of each (template, languages) variant.
``eightbit``    text parts sent 8bit (DESIGN allows "base64 or 8bit") instead of base64: no
                per-message base64 at all (a real change must also fold the two >998-byte lines
                css-inline leaves in the HTML, and fall back to base64 without 8BITMIME).
``twoprocs``    the send loop's producer (``Job.outgoing``: render + build) runs in a forked child
                process that reads the ledger rows itself and hands the built messages over a
                pipe in batches of 16, so rendering uses the second core while the event loop
                does SMTP and the ledger. (CPU seconds include the child; peak RSS is the
                larger of the two processes, not their sum.)

Each row is cumulative (it includes the patches above it). The figures are upper bounds where
the patch skips work the real change would still do a little of (``noinline``).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine, run_child, save, table
from _workspace import RELEASE, enable_smtp, make_workspace
from send import Sink, fresh, ledger_counts

STEPS = ["baseline", "canonical", "wrapcache", "fastb64", "noinline", "lightcheck", "eightbit", "twoprocs"]


def apply(patches: list[str]) -> None:
    import base64
    import binascii

    import jinja2.defaults
    import jinja2.filters

    from reldist import message, plan, render
    from reldist.transport import smtp

    if "canonical" in patches:
        smtp._crlf = lambda data: data  # type: ignore[assignment]
        smtp._dot_stuffed = lambda body: body + b".\r\n"  # type: ignore[assignment]
    if "wrapcache" in patches:
        wrap = functools.lru_cache(maxsize=256)(jinja2.filters.do_wordwrap)
        jinja2.defaults.DEFAULT_FILTERS["wordwrap"] = wrap
    if "fastb64" in patches:

        def b64(data: bytes) -> bytes:
            enc = binascii.b2a_base64(data, newline=False)
            return b"\r\n".join([enc[i : i + 76] for i in range(0, len(enc), 76)]) + b"\r\n"

        probe = bytes(range(256)) * 50
        assert b64(probe) == base64.encodebytes(probe).replace(b"\n", b"\r\n")
        message._b64 = b64  # type: ignore[assignment]
    if "noinline" in patches:
        original = render.Renderer.__init__

        def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            original(self, *args, **kwargs)

            class Identity:
                @staticmethod
                def inline(html: str) -> str:
                    return html

            self._inliner = Identity()

        render.Renderer.__init__ = init  # type: ignore[method-assign]
    if "eightbit" in patches:

        def part(boundary: str, subtype: str, text: str) -> bytes:
            body = text.replace("\r\n", "\n").rstrip("\n").replace("\n", "\r\n") + "\r\n"
            return (
                f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
                f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}"
            ).encode()

        message.MessageBuilder._text_part = staticmethod(part)  # type: ignore[method-assign,assignment]
    if "lightcheck" in patches:
        light = {"on": False, "seen": set()}
        real_render = render.Renderer.render
        real_build = message.MessageBuilder.build

        def render_(self, contact, *, template=None):  # type: ignore[no-untyped-def]
            if not light["on"]:
                return real_render(self, contact, template=template)
            name = template or contact.template or self.release.template
            key = (name, self.languages_for(contact))
            if key in light["seen"]:
                html_t, text_t = self.template(name)
                context = self._context(contact, self.variant(key[1]))
                html_t.render(context)
                text_t.render(context)
                return None
            light["seen"].add(key)
            return real_render(self, contact, template=template)

        def build_(self, rendered, contact, **kwargs):  # type: ignore[no-untyped-def]
            if rendered is None:
                return b""
            return real_build(self, rendered, contact, **kwargs)

        real_preflight = plan.Planner.preflight

        def preflight(self):  # type: ignore[no-untyped-def]
            light["on"] = True
            try:
                return real_preflight(self)
            finally:
                light["on"] = False

        render.Renderer.render = render_  # type: ignore[method-assign]
        message.MessageBuilder.build = build_  # type: ignore[method-assign]
        plan.Planner.preflight = preflight  # type: ignore[method-assign]


def two_processes(job):  # type: ignore[no-untyped-def]
    """Patch the send loop so that ``job.outgoing`` runs in a forked child process."""
    import collections
    import multiprocessing
    import pickle

    from reldist import send as send_mod
    from reldist.ledger import Ledger

    real_rows = send_mod._rows
    real_outgoing = job.outgoing
    state: dict[str, object] = {"buffer": collections.deque()}

    def rows(ledger, ids, page=500):  # type: ignore[no-untyped-def]
        receive, transmit = multiprocessing.Pipe(duplex=False)

        def produce() -> None:
            receive.close()
            with Ledger.open(ledger.path) as own:
                batch = []
                for row in real_rows(own, ids):
                    batch.append(real_outgoing(row))
                    if len(batch) >= 16:
                        transmit.send_bytes(pickle.dumps(batch, protocol=5))
                        batch = []
                if batch:
                    transmit.send_bytes(pickle.dumps(batch, protocol=5))
            transmit.close()

        proc = multiprocessing.get_context("fork").Process(target=produce, daemon=True)
        proc.start()
        transmit.close()
        state.update(proc=proc, receive=receive)
        return real_rows(ledger, ids, page)

    def outgoing(row, *, message_id=None):  # type: ignore[no-untyped-def]
        buffer = state["buffer"]
        if not buffer:
            buffer.extend(pickle.loads(state["receive"].recv_bytes()))  # type: ignore[attr-defined]
        message = buffer.popleft()  # type: ignore[attr-defined]
        assert message.seq == row.id
        return message

    send_mod._rows = rows
    job.outgoing = outgoing
    return state


def child(root: Path, patches: list[str]) -> None:
    apply(patches)
    from reldist.release import find_release, load_release
    from reldist.send import Job, make_transport, send_release
    from reldist.workspace import open_workspace

    marks = {"start": time.perf_counter()}
    ws = open_workspace(config=root / "reldist.toml")
    release = load_release(
        find_release(str(root / RELEASE), ws.root), workspace=ws.root, default_languages=ws.config.languages
    )
    with ws.lock("benchmark"), ws.open_ledger() as ledger:
        job = Job(ws, release, ledger=ledger)
        if "twoprocs" in patches:
            producer = two_processes(job)
        marks["setup"] = time.perf_counter()
        job.preflight()
        marks["preflight"] = time.perf_counter()

        def started(_: int) -> None:
            marks["plan"] = time.perf_counter()

        send_release(job, ledger, transport=make_transport(ws.config, release.id), on_start=started)
        marks["deliver"] = time.perf_counter()
        if "twoprocs" in patches:
            producer["proc"].join()
    print(
        json.dumps(
            {
                "preflight": marks["preflight"] - marks["setup"],
                "plan": marks["plan"] - marks["preflight"],
                "deliver": marks["deliver"] - marks["plan"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.workspace, [p for p in args.child.split(",") if p])
        return

    base = args.keep or Path(tempfile.mkdtemp(prefix="reldist-bench-whatif-"))
    root = make_workspace(base / f"whatif-{args.n}", args.n)
    steps = args.steps.split(",")
    rows = []
    results = []
    for index, step in enumerate(steps):
        patches = [s for s in steps[: index + 1] if s != "baseline"]
        fresh(root)
        sink = Sink("smtp-sink")
        try:
            enable_smtp(root, sink.port, args.connections)
            run = run_child(
                [sys.executable, __file__, "--child", ",".join(patches), "--workspace", str(root)]
            )
        finally:
            seen = sink.stop()
        if run.returncode:
            raise SystemExit(run.stderr)
        counts = ledger_counts(root)
        assert counts.get("sent") == args.n and seen["messages"] == args.n, (counts, seen)
        phases = json.loads(run.stdout.strip().splitlines()[-1])
        n = args.n
        result = {
            "step": step,
            "patches": patches,
            "wall": run.wall,
            "cpu": run.cpu,
            "maxrss_mb": run.maxrss_mb,
            **phases,
        }
        results.append(result)
        rows.append(
            [
                ("+ " if index else "") + step,
                n / run.wall,
                1000 * run.cpu / n,
                1000 * phases["preflight"] / n,
                1000 * phases["plan"] / n,
                1000 * phases["deliver"] / n,
                n / phases["deliver"],
                run.maxrss_mb,
            ]
        )
        print(f"{step}: {n / run.wall:,.0f} msg/s", flush=True)
    print()
    print(
        table(
            [
                "patches (cumulative)",
                "msg/s",
                "CPU ms/msg",
                "preflight ms/msg",
                "plan ms/msg",
                "deliver ms/msg",
                "deliver msg/s",
                "peak RSS MB",
            ],
            rows,
        )
    )
    name = "whatif.json" if steps == STEPS else f"whatif-{'-'.join(steps)}.json"
    save(
        name,
        {"machine": machine(), "n": args.n, "connections": args.connections, "results": results},
    )
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
