"""A throwaway PostgreSQL server for tests, from Debian's ``postgresql`` package.

:func:`throwaway_server` runs ``initdb`` in a fresh temporary folder, starts the server on a free
port of 127.0.0.1 (socket in that folder, trust authentication, durability off for speed), creates
a database and yields its SQLAlchemy URL; on exit it stops the server (``pg_ctl stop -m
immediate``) and removes the folder. PostgreSQL refuses to run as root, so under root the
programs run as the ``postgres`` user the Debian package creates.

Where the programs are missing, tests are skipped -- or fail when ``WQ_REQUIRE_POSTGRES=1``
(``make test`` sets it and installs the package).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ENV = "WQ_REQUIRE_POSTGRES"
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "40",
    "shared_buffers": "32MB",
    # not UTC on purpose: sessions then see times in another zone, which the archive must undo
    "timezone": "'America/New_York'",
    "log_timezone": "'UTC'",
}


def unavailable(reason: str) -> None:
    """Skip the calling test -- or fail it when ``WQ_REQUIRE_POSTGRES=1``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: install Debian's postgresql package)", pytrace=False)
    pytest.skip(reason)


def find_bindir() -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``: the newest ``/usr/lib/postgresql/<ver>/bin``, else PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        newest = max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p)])
        return Path(newest).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(_as_server_user(cmd), cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-2000:]}")


@contextlib.contextmanager
def throwaway_server(database: str = "wq_test") -> Iterator[str]:
    """Start a server, create ``database``; yields ``postgresql+psycopg://postgres@127.0.0.1:<port>/<database>``."""
    bindir = find_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        unavailable("PostgreSQL server programs (initdb, pg_ctl) not found")
    if importlib.util.find_spec("psycopg") is None:  # the driver the URL names
        unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run the server as")
    import sqlalchemy as sa

    tmp = Path(tempfile.mkdtemp(prefix="wq-pg-"))
    data, log = tmp / "data", tmp / "server.log"
    started = False
    try:
        if os.geteuid() == 0:
            os.chown(tmp, owner.pw_uid, owner.pw_gid)
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
              "--locale=C", "--no-sync", "--no-instructions"], cwd=tmp)
        conf = "".join(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
        with open(data / "postgresql.conf", "a") as f:
            f.write(f"\n# wq-pipeline tests\n{conf}unix_socket_directories = '{tmp}'\n")
        for attempt in range(3):  # the free port may be taken by someone else in between
            port = free_port()
            try:
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
                      "-o", f"-p {port}", "start"], cwd=tmp)
                started = True
                break
            except RuntimeError as exc:
                if attempt == 2:
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"{exc}\nserver log:\n{tail}") from None
        engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                                  isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
        engine.dispose()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], cwd=tmp)
        shutil.rmtree(tmp, ignore_errors=True)
