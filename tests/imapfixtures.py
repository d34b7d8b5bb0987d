"""A throwaway Dovecot IMAP server on 127.0.0.1 for the inbox tests: its own config, a
passwd-file user, implicit TLS with a trustme CA, Maildir storage, all in a temporary folder;
started in the foreground (``dovecot -F``) and stopped by the fixture."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
USER, PASSWORD = "press", "imap-secret-pw"


@dataclass(frozen=True)
class Dovecot:
    port: int
    ca_file: Path
    folder: Path

    def mailbox(self):  # type: ignore[no-untyped-def]
        from imap_tools import MailBox

        context = ssl.create_default_context(cafile=str(self.ca_file))
        return MailBox("127.0.0.1", self.port, ssl_context=context).login(USER, PASSWORD)

    def count(self, folder: str) -> int:
        with self.mailbox() as box:
            if not box.folder.exists(folder):
                return 0
            box.folder.set(folder)
            return len(box.uids())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if DOVECOT is None:
        if os.environ.get("CI"):
            pytest.fail("Dovecot is missing: .ci/run installs dovecot-imapd")
        pytest.skip("needs Dovecot (Debian dovecot-imapd)")
    # Dovecot will not run mail processes as root: the mailboxes belong to 'nobody', so the
    # folder must be reachable by it (pytest's own temporary folders are mode 700).
    root = Path(tempfile.mkdtemp(prefix="reldist-dovecot-"))
    root.chmod(0o755)
    try:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        ca.cert_pem.write_to_path(str(root / "ca.pem"))
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
        mail = root / "mail"
        mail.mkdir()
        uid = gid = 65534
        if os.geteuid() == 0:
            os.chown(mail, uid, gid)
        else:  # pragma: no cover - CI runs as root; a developer's own uid works as well
            uid, gid = os.getuid(), os.getgid()
        port = _free_port()
        (root / "dovecot.conf").write_text(
            f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
default_login_user = dovenull
default_internal_user = dovecot
""",
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    assert process.poll() is None, (root / "dovecot.log").read_text(errors="replace")
                    assert time.monotonic() < deadline, "Dovecot did not start"
                    time.sleep(0.05)
            yield Dovecot(port, root / "ca.pem", mail)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
