"""Processes that start together on a new LAKEFLOW_HOME (web and qcluster nodes, the first time)
must end up with one SECRET_KEY: the broker's messages are signed with it, and a node whose key
differs drops the others' messages as forged."""
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

from lakeflow_site.home import create_private_once

ROOT = Path(__file__).resolve().parents[1]


def _create_after(barrier, path, text, results):
    barrier.wait()
    create_private_once(Path(path), text)
    results.put((text, Path(path).read_text()))


def test_racing_creators_all_read_the_first_text_whole(tmp_path):
    path = tmp_path / "secret_key"
    context = multiprocessing.get_context("fork")
    racers = 6
    barrier, results = context.Barrier(racers), context.Queue()
    processes = [context.Process(target=_create_after, args=(barrier, str(path), f"key-{i}" * 10, results))
                 for i in range(racers)]
    for process in processes:
        process.start()
    read = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert {text for _, text in read} == {path.read_text()}
    assert path.read_text() in {text for text, _ in read}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no drafts left behind


def test_racing_threads_of_one_process_never_write_into_each_other(tmp_path):
    path = tmp_path / "secret_key"
    racers = 8
    barrier, read = threading.Barrier(racers), []

    def create(text):
        barrier.wait()
        create_private_once(path, text)
        read.append(path.read_text())

    threads = [threading.Thread(target=create, args=(f"thread-{i}-" * 20,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(read) == racers and set(read) == {path.read_text()}
    assert path.read_text() in {f"thread-{i}-" * 20 for i in range(racers)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]


def test_an_existing_file_is_never_replaced(tmp_path):
    path = tmp_path / "secret_key"
    create_private_once(path, "first")
    create_private_once(path, "second")
    assert path.read_text() == "first"


def test_processes_starting_on_a_new_home_share_one_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}}
    env.update(LAKEFLOW_HOME=str(tmp_path / "home"), DJANGO_SETTINGS_MODULE="lakeflow_site.settings")
    show = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    starts = [subprocess.Popen([sys.executable, "-c", show], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(4)]
    keys = set()
    for start in starts:
        out, err = start.communicate(timeout=120)
        assert start.returncode == 0, err
        keys.add(out.strip())
    assert keys == {(tmp_path / "home" / "secret_key").read_text().strip()}
