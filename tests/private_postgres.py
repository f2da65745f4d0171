"""A private, throwaway PostgreSQL cluster for outage tests: stop it, restart it, kill it.

Outage tests must never stop the machine's shared PostgreSQL (DESIGN.md, "Tests"), so they start
their own: ``initdb`` into a temporary directory, ``pg_ctl start`` on a free port, listening on
127.0.0.1 only (and a Unix socket inside that directory), trust authentication, fsync off. As
root (PostgreSQL refuses to run as root) every server command runs as the ``postgres`` OS user
through ``runuser``. ::

    with PrivatePostgres() as cluster:
        url = cluster.create_database("campaign")   # postgres://postgres@127.0.0.1:PORT/campaign
        cluster.restart(down_seconds=3)              # pg_ctl stop -m fast, wait, start
        cluster.stop(mode="immediate")               # like a crash: no shutdown checkpoint

The cluster is stopped and its directory removed on ``close()`` (the context manager's exit),
even when the test failed, and at interpreter exit if nobody closed it. Tests get one from the
``private_postgres`` fixture (tests/conftest.py), which skips without PostgreSQL. Used by
tests/test_private_postgres.py and benchmarks/fault_campaign.py.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType

SHARED_PORT = 5432  # the machine's own cluster: never ours
STOP_MODES = ("smart", "fast", "immediate")
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    # Data survives the death of PostgreSQL's processes (the OS keeps it), which is all an outage
    # test does: fsync only guards against the machine's own crash. synchronous_commit stays on,
    # or an immediate stop could lose commits the client was told about.
    "fsync": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


class PostgresNotInstalled(RuntimeError):
    """No ``initdb``/``pg_ctl`` on this machine."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: the newest /usr/lib/postgresql/*/bin,
    else wherever ``initdb`` is on PATH. Raises PostgresNotInstalled."""

    def version(path: str) -> list[int]:
        return [int(part) for part in Path(path).parent.name.split(".") if part.isdigit()]

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    raise PostgresNotInstalled(
        "initdb and pg_ctl are not installed (Debian: apt install postgresql)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (and not the shared 5432)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port != SHARED_PORT:
            return port


def _as_server_user() -> list[str]:
    """The command prefix that runs a server command as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"]
    raise PostgresNotInstalled("running as root, and no runuser to run PostgreSQL as postgres")


def _cleanup(pg_ctl: str, prefix: list[str], data_dir: str, base_dir: str) -> None:
    """Stop the cluster immediately if it still runs, and remove its directory."""
    if os.path.exists(os.path.join(data_dir, "postmaster.pid")):
        subprocess.run(
            [*prefix, pg_ctl, "stop", "-D", data_dir, "-m", "immediate", "-w", "-t", "30"],
            capture_output=True,
            check=False,
        )
    shutil.rmtree(base_dir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary directory, on a free port of 127.0.0.1.

    ``start()`` runs ``initdb`` the first time; ``stop(mode)`` and ``start()`` take it down and
    up again (the data stays); ``restart(down_seconds)`` does both with a pause; ``close()``
    stops it and deletes everything. ``last_start_seconds`` and ``last_stop_seconds`` tell how
    long the last ``pg_ctl start`` and ``stop`` took.
    """

    def __init__(self, port: int | None = None, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.port = port or free_port()
        if self.port == SHARED_PORT:
            raise ValueError("port 5432 belongs to the machine's shared cluster")
        self._prefix = _as_server_user()
        self.base_dir = Path(tempfile.mkdtemp(prefix="zhenzi-pg-"))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"
        if self._prefix:  # the postgres user creates the data directory and writes the log
            entry = pwd.getpwnam("postgres")
            os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
        self.running = False
        self.last_start_seconds = 0.0
        self.last_stop_seconds = 0.0
        self._finalizer = weakref.finalize(
            self,
            _cleanup,
            str(self.bin_dir / "pg_ctl"),
            self._prefix,
            str(self.data_dir),
            str(self.base_dir),
        )

    # Addresses

    @property
    def url(self) -> str:
        """``postgres://postgres@127.0.0.1:PORT/postgres``: the maintenance database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The DATABASE_URL of database ``name`` on this cluster."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping one of that name first); returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def _conninfo(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=5"

    # Lifecycle

    def start(self, timeout: float = 60) -> None:
        """Start the server (``initdb`` first if there is no cluster yet); waits until it
        accepts connections."""
        if self.running:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        started = time.monotonic()
        self._pg_ctl("start", "-l", str(self.log_file), "-t", str(int(timeout)))
        self.last_start_seconds = time.monotonic() - started
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m MODE``: ``fast`` ends sessions and checkpoints, ``immediate`` kills
        every server process at once (recovery runs at the next start)."""
        if mode not in STOP_MODES:
            raise ValueError(f"mode must be one of {', '.join(STOP_MODES)}, got {mode!r}")
        if not self.running:
            return
        started = time.monotonic()
        self._pg_ctl("stop", "-m", mode, "-t", "60")
        self.last_stop_seconds = time.monotonic() - started
        self.running = False

    def restart(self, down_seconds: float = 0.0, mode: str = "fast") -> None:
        """Stop (``mode``), stay down ``down_seconds``, start again."""
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        """Stop the server if it runs and remove its directory. Idempotent."""
        self.running = False
        self._finalizer()

    def __enter__(self) -> PrivatePostgres:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def server_log(self) -> str:
        """The server's log so far (for a failure message)."""
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")
        return ""

    # Commands

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._prefix, *command],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base_dir,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
                f"\n{self.server_log()[-2000:]}"
            )

    def _pg_ctl(self, action: str, *options: str) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), action, "-D", str(self.data_dir), "-w", *options)

    def _initdb(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        settings = {
            **SERVER_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base_dir}'",
        }
        # Appended: later lines win over the ones initdb wrote.
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
