"""The private PostgreSQL cluster that outage tests and the fault campaign take down and up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.private_postgres import SHARED_PORT, PostgresNotInstalled, PrivatePostgres, find_bin_dir

psycopg = pytest.importorskip("psycopg")

try:
    find_bin_dir()
except PostgresNotInstalled as missing:
    pytest.skip(f"no private PostgreSQL cluster: {missing}", allow_module_level=True)

pytestmark = pytest.mark.slow


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def test_start_restart_stop_and_clean_up(capsys):
    started = time.monotonic()
    cluster = PrivatePostgres()
    with cluster:
        first_start = time.monotonic() - started
        assert cluster.port != SHARED_PORT
        assert cluster.url == f"postgres://postgres@127.0.0.1:{cluster.port}/postgres"
        url = cluster.create_database("zhenzi_outage")
        with connect(url) as connection:
            connection.execute("CREATE TABLE kept (n int)")
            connection.execute("INSERT INTO kept VALUES (1)")
        old = connect(url)
        assert old.execute("SELECT 1").fetchone() == (1,)

        restarted = time.monotonic()
        cluster.restart(down_seconds=0.5)
        restart_seconds = time.monotonic() - restarted

        with pytest.raises(psycopg.OperationalError):
            old.execute("SELECT 1")  # its server process is gone
        old.close()
        with connect(url) as fresh:
            assert fresh.execute("SELECT n FROM kept").fetchall() == [(1,)]
            assert fresh.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)

        cluster.restart(mode="immediate")  # a crash: recovery runs, the data stays
        immediate_start = cluster.last_start_seconds
        with connect(url) as fresh:
            assert fresh.execute("SELECT n FROM kept").fetchall() == [(1,)]

        cluster.stop()
        with pytest.raises(psycopg.OperationalError):
            connect(url).close()
        base_dir = cluster.base_dir
        assert base_dir.exists()
    assert not Path(base_dir).exists()
    cluster.close()  # idempotent
    with capsys.disabled():
        print(
            f"\nprivate cluster: initdb + first start {first_start:.2f} s, "
            f"restart with 0.5 s down {restart_seconds:.2f} s, "
            f"start after an immediate stop {immediate_start:.2f} s"
        )


def test_the_directory_goes_even_when_the_test_fails():
    cluster = PrivatePostgres()
    with pytest.raises(ZeroDivisionError), cluster:
        base_dir = cluster.base_dir
        assert cluster.running
        1 / 0  # noqa: B018
    assert not base_dir.exists()
    assert not cluster.running


def test_the_fixture_gives_a_running_cluster_of_the_tests_own(private_postgres):
    url = private_postgres.create_database("zhenzi_fixture")
    assert url.endswith(f":{private_postgres.port}/zhenzi_fixture")
    with connect(url) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("zhenzi_fixture",)
    private_postgres.restart(down_seconds=0.1, mode="immediate")
    with connect(url) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
