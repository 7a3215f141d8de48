"""A file-arrival trigger on a big directory never stalls the clock: its scan runs off the step,
stops at LAKEFLOW_FILE_ARRIVAL_MAX_FILES with the reason on the trigger, and what the trigger
keeps of the files it has seen is a compact list of fingerprints."""

import threading

import pytest

from runs.models import TriggerState
from runs import triggers
from runs.models import Run
from runs.triggers import run_due_triggers
from runs.watch import BackgroundScans, TooManyFiles, fingerprints, new_files, scan_directory
from tests.runs.conftest import alice, broker  # noqa: F401 (fixtures)
from tests.runs.test_triggers import T0, every_two_seconds, job_with, runs_of, seconds


def fill(directory, count):
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (directory / f"f{i:05d}.csv").write_text("")


def test_a_scan_stops_past_its_file_limit_with_the_reason(tmp_path):
    fill(tmp_path, 11)
    assert len(scan_directory(str(tmp_path), max_files=11)) == 11
    with pytest.raises(TooManyFiles, match="holds more than 10 files"):
        scan_directory(str(tmp_path), max_files=10)


def test_a_tree_past_the_limit_shows_why_on_the_trigger_and_schedules_go_on(alice, broker, tmp_path, settings):
    settings.LAKEFLOW_FILE_ARRIVAL_MAX_FILES = 50
    fill(tmp_path / "big", 51)
    watcher = job_with(alice, T0, trigger={"file_arrival": {"url": str(tmp_path / "big")}})
    scheduled = job_with(alice, T0, **every_two_seconds())

    run_due_triggers(T0)
    assert run_due_triggers(T0 + seconds(2.6)) == 1
    state = TriggerState.objects.get(job=watcher)
    assert "holds more than 50 files" in state.last_error
    assert state.snapshot is None and not runs_of(watcher)
    assert len(runs_of(scheduled)) == 1


def test_the_snapshot_keeps_fingerprints_not_names_and_is_not_rewritten_when_nothing_changed(alice, broker, tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fill(tmp_path / "in", 3)
    job = job_with(alice, T0, trigger={"file_arrival": {"url": str(tmp_path / "in")}})
    run_due_triggers(T0)
    snapshot = TriggerState.objects.get(job=job).snapshot
    assert snapshot == fingerprints(["f00000.csv", "f00001.csv", "f00002.csv"])
    with CaptureQueriesContext(connection) as queries:
        run_due_triggers(T0 + seconds(2))  # the same files
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert updates and not any('"snapshot"' in sql for sql in updates)
    (tmp_path / "in" / "new.csv").write_text("")
    run_due_triggers(T0 + seconds(4))
    assert TriggerState.objects.get(job=job).snapshot == fingerprints(["f00000.csv", "f00001.csv", "f00002.csv", "new.csv"])


def test_new_files_reads_an_older_servers_snapshot_of_paths():
    assert new_files({"a.csv": [1, 2]}, {"a.csv": [1, 2], "b.csv": [0, 0]}) == ["b.csv"]
    assert new_files(fingerprints(["a.csv"]), {"a.csv": [1, 2], "b.csv": [0, 0]}) == ["b.csv"]


def test_a_background_scan_leaves_the_step_at_once_and_hands_its_listing_to_a_later_step(tmp_path, monkeypatch):
    fill(tmp_path, 2)
    release, started = threading.Event(), threading.Event()
    scans = BackgroundScans(workers=1)

    def slow_scan(root, max_files):  # a scan that takes as long as the test wants
        started.set()
        release.wait(timeout=60)
        return scan_directory(root, max_files)

    monkeypatch.setattr("runs.watch.scan_directory", slow_scan)
    try:
        assert scans.listing("k", str(tmp_path), 10) is None  # started, not waited for
        assert started.wait(timeout=60)
        assert scans.listing("k", str(tmp_path), 10) is None  # still running: the step goes on
        release.set()
        scans.running["k"].result(timeout=60)
        assert sorted(scans.listing("k", str(tmp_path), 10)) == ["f00000.csv", "f00001.csv"]
    finally:
        release.set()


def test_the_clock_step_fires_a_schedule_while_a_big_scan_is_still_running(alice, broker, tmp_path, monkeypatch):
    release = threading.Event()
    background = BackgroundScans(workers=1)
    monkeypatch.setattr(triggers, "scans", background)
    monkeypatch.setattr("runs.watch.scan_directory", lambda root, max_files: release.wait(timeout=60) and {})
    watcher = job_with(alice, T0, trigger={"file_arrival": {"url": str(tmp_path)}})
    scheduled = job_with(alice, T0, **every_two_seconds())
    try:
        run_due_triggers(T0)
        assert run_due_triggers(T0 + seconds(2.6)) == 1  # the scan has not returned, the slot fired
        assert len(runs_of(scheduled)) == 1
        assert TriggerState.objects.get(job=watcher).snapshot is None
    finally:
        release.set()
    assert Run.objects.filter(job=watcher).count() == 0
