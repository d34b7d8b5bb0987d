"""A throwaway PostgreSQL cluster for the tests: ``pg_cluster`` (one per session) and ``pg_url``
(a fresh, empty schema per test, chosen through the URL's ``search_path``: creating a schema takes
milliseconds, a database most of a second).

The cluster is Debian's ``postgresql`` (``initdb``/``pg_ctl`` under /usr/lib/postgresql/*/bin),
created in a temporary folder, listening only on a unix socket in that folder, and stopped at the
end of the session. PostgreSQL refuses to run as root, so when the tests run as root the server
runs as the ``postgres`` system user (which the Debian package creates). When PostgreSQL is not
installed the tests that need it are skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PgCluster", "pg_cluster", "pg_url"]


@dataclass(frozen=True, slots=True)
class PgCluster:
    """A running throwaway cluster: its socket folder and a superuser named ``reldist``."""

    folder: Path
    user: str = "reldist"

    def url(self, database: str = "reldist", schema: str | None = None) -> str:
        url = f"postgresql://{self.user}@/{database}?host={self.folder}"
        return url if schema is None else f"{url}&options=-csearch_path%3D{schema}"


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is needed in CI: {why}", pytrace=False)
    pytest.skip(f"PostgreSQL is not available: {why}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = _bindir()
    if bindir is None:
        _missing("no initdb (apt-get install postgresql)")
        raise AssertionError("unreachable")
    try:
        import psycopg
    except ImportError:
        _missing("psycopg is not installed (pip install -e '.[test]')")
    folder = Path(tempfile.mkdtemp(prefix="reldist-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "reldist",
            "--auth=trust",
            "-E",
            "UTF8",
            "-N",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    options = (
        f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=60"
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    cluster = PgCluster(folder)
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE reldist")
    try:
        yield cluster
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            env=env,
        )
        shutil.rmtree(folder, ignore_errors=True)


_numbers = itertools.count(1)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """The URL of a new empty schema in the session's cluster."""
    import psycopg

    name = f"t{next(_numbers)}"
    with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    return pg_cluster.url(schema=name)
