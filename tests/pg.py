"""A throwaway PostgreSQL server for the tests (Debian's postgresql package), one per test run.

initdb + pg_ctl into a temporary folder, as the `postgres` user when the tests run as root
(PostgreSQL refuses to run as root). Logins over TCP need the password (scram-sha-256), so the
tests go through the same password path as a user's server; each test home gets a database of
its own (``new_database``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    matches = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return matches[-1] if matches else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server():
    """Start a server; returns (connection settings, stop function), or skips/fails the test."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries missing: .ci/run installs the postgresql package")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed: apt-get install postgresql")
    # Not under pytest's temp root: that is private to the user running the tests, and the
    # server may run as another user.
    base = Path(tempfile.mkdtemp(prefix="loanwatch-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    password = secrets.token_urlsafe(12)
    (base / "pw").write_text(password + "\n")
    prefix: list[str] = []
    if os.geteuid() == 0:
        for path in (base, sock, base / "pw"):
            shutil.chown(path, "postgres")
        os.chmod(base, 0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(prefix + [initdb, "-D", str(data), "-U", "postgres", "--auth-local=trust",
                             "--auth-host=scram-sha-256", f"--pwfile={base / 'pw'}", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(prefix + [pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                             f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                             "-c synchronous_commit=off -c full_page_writes=off", "start"],
                   check=True, capture_output=True)

    def stop():
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    return {"host": "127.0.0.1", "port": port, "user": "postgres", "password": password, "dbname": "postgres"}, stop


def new_database(server: dict, name: str) -> dict:
    """A fresh database on the server (dropped first if a test ran before); its connection settings."""
    import psycopg2

    conn = psycopg2.connect(**server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return {**server, "dbname": name}


def engine_env(db: dict) -> dict[str, str]:
    """The settings (as environment variables) of a home whose engine is this database."""
    return {"LOANWATCH_WAREHOUSE__ENGINE": "postgres", "LOANWATCH_POSTGRES__HOST": db["host"],
            "LOANWATCH_POSTGRES__PORT": str(db["port"]), "LOANWATCH_POSTGRES__USER": db["user"],
            "LOANWATCH_POSTGRES__DBNAME": db["dbname"], "LOANWATCH_POSTGRES__PASSWORD": db["password"]}
