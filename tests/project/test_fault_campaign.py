"""benchmarks/fault_campaign.py: its schedules are repeatable, and a run without faults is clean."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from benchmarks import fault_campaign
from tests.private_postgres import PostgresNotInstalled, find_bin_dir
from tests.workers import REPO_ROOT


def test_a_schedule_is_drawn_from_its_seed_alone():
    draw = fault_campaign.draw_schedule
    first = draw(7, 0, 400, 30, 3, fault_campaign.FAULT_KINDS)
    assert draw(7, 0, 400, 30, 3, fault_campaign.FAULT_KINDS) == first
    assert draw(8, 0, 400, 30, 3, fault_campaign.FAULT_KINDS) != first
    numbers = [number for entry in first.traffic for number in entry.numbers]
    assert len(numbers) == len(set(numbers)) == 400
    assert {entry.kind for entry in first.traffic} == {"queue", "send"}


@pytest.mark.parametrize("seed", range(20))
def test_faults_end_in_time_and_outages_do_not_overlap(seed):
    schedule = fault_campaign.draw_schedule(seed, 1, 100, 30, 3, fault_campaign.FAULT_KINDS)
    assert all(fault.at > 0 and fault.at + fault.duration <= 30 for fault in schedule.faults)
    assert all(fault.worker in range(3) for fault in schedule.faults)
    outages = sorted((f.at, f.at + f.duration) for f in schedule.faults if f.kind == "db")
    assert all(end < start for (_, end), (start, _) in itertools.pairwise(outages))
    for fault in schedule.faults:
        assert sum(fault.rates.values()) <= 0.6
        assert set(fault.rates) <= set(fault_campaign.PROVIDER_FAULTS)
    assert all(entry.at < 30 for entry in schedule.traffic)


def test_no_faults_no_schedule_faults():
    assert fault_campaign.draw_schedule(1, 0, 50, 10, 2, ()).faults == []


@pytest.mark.slow
def test_a_run_without_faults_finds_nothing():
    try:
        find_bin_dir()
    except PostgresNotInstalled as missing:
        pytest.skip(str(missing))
    done = subprocess.run(
        [sys.executable, "benchmarks/fault_campaign.py", "--seed", "3", "--schedules", "1",
         "--messages", "40", "--duration", "4", "--settle", "30", "--faults", "", "--workers", "2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rows by status: sent 40" in done.stdout
    assert "1 schedules, 40 messages, 0 violations" in done.stdout
