"""What file-arrival and table-update triggers read from disk: directory scans and Delta logs."""

import json
import os
from datetime import datetime, timezone

import pytest

from runs.watch import WatchError, delta_table_version, local_path, new_files, scan_directory


def write(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- local paths -------------------------------------------------------------------------------

def test_absolute_paths_and_file_urls_name_local_paths():
    assert local_path("/data/in") == "/data/in"
    assert local_path("file:///data/in%20box") == "/data/in box"
    assert local_path("file://localhost/data/in") == "/data/in"


@pytest.mark.parametrize("url, words", [
    ("s3://bucket/in", "only local paths and file:// URLs can be watched, not s3://"),
    ("file://otherhost/data", "not host 'otherhost'"),
    ("data/in", "the path must be absolute"),
])
def test_other_locations_are_rejected(url, words):
    with pytest.raises(WatchError, match=words):
        local_path(url)


# --- scanning ----------------------------------------------------------------------------------

def test_a_scan_lists_every_file_recursively_with_size_and_mtime(tmp_path):
    write(tmp_path / "a.csv", "abc")
    deep = write(tmp_path / "2024" / "05" / "01" / "b.json", "{}")
    os.utime(deep, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    (tmp_path / "empty").mkdir()
    assert scan_directory(str(tmp_path)) == {
        "a.csv": [3, (tmp_path / "a.csv").stat().st_mtime_ns],
        "2024/05/01/b.json": [2, 1_700_000_000_123_456_789],
    }


def test_a_file_url_root_is_scanned_like_its_path(tmp_path):
    write(tmp_path / "a.csv")
    assert list(scan_directory(f"file://{tmp_path}")) == ["a.csv"]


def test_hidden_underscored_and_in_progress_names_are_skipped(tmp_path):
    for name in (".hidden", "_SUCCESS", "_delta_log/00000000000000000000.json",
                 "_temporary/0/part-0.parquet", "out/.part-0.parquet.crc", "out/_committed_1",
                 "big.csv._COPYING_"):
        write(tmp_path / name)
    write(tmp_path / "out" / "part-0.parquet")
    assert list(scan_directory(str(tmp_path))) == ["out/part-0.parquet"]


def test_symlinked_directories_are_not_followed_but_symlinked_files_are_listed(tmp_path):
    outside = write(tmp_path / "outside" / "secret.csv", "12345").parent
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked_dir").symlink_to(outside)
    (root / "loop").symlink_to(root)
    (root / "linked.csv").symlink_to(outside / "secret.csv")
    (root / "broken.csv").symlink_to(tmp_path / "nowhere")
    assert scan_directory(str(root)) == {
        "linked.csv": [5, (outside / "secret.csv").stat().st_mtime_ns]}


def test_a_deep_tree_does_not_hit_the_recursion_limit(tmp_path):
    deep = tmp_path
    for _ in range(1200):  # deeper than Python's default recursion limit of 1000
        deep = deep / "d"
        deep.mkdir()  # one by one: os.makedirs itself recurses
    try:
        write(deep / "f.txt")
        (path,) = scan_directory(str(tmp_path))
        assert path.endswith("d/f.txt") and path.count("/") == 1200
    finally:
        remove_bottom_up(deep)  # shutil.rmtree, which cleans tmp_path, recurses too


def remove_bottom_up(deepest):
    for child in deepest.iterdir():
        child.unlink()
    while deepest.name == "d":
        deepest.rmdir()
        deepest = deepest.parent


def test_a_subdirectory_that_vanishes_mid_scan_is_skipped(tmp_path, monkeypatch):
    write(tmp_path / "gone" / "a.csv")
    write(tmp_path / "kept" / "b.csv")
    real_scandir = os.scandir

    def scandir_after_delete(path):
        if str(path).endswith("gone"):
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_after_delete)
    assert list(scan_directory(str(tmp_path))) == ["kept/b.csv"]


def test_a_missing_root_says_so(tmp_path):
    with pytest.raises(WatchError, match=f"^directory {tmp_path}/nope does not exist$"):
        scan_directory(str(tmp_path / "nope"))


def test_a_file_root_says_it_is_not_a_directory(tmp_path):
    path = write(tmp_path / "a.csv")
    with pytest.raises(WatchError, match=f"^{path} is not a directory$"):
        scan_directory(str(path))


def test_an_unreadable_directory_says_so(tmp_path, monkeypatch):
    locked = write(tmp_path / "locked" / "a.csv").parent
    real_scandir = os.scandir

    def scandir_denied(path):
        if str(path) == str(locked):  # chmod 0 does not stop root, who runs the tests in CI
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_denied)
    with pytest.raises(WatchError, match=f"^directory {locked} cannot be read: Permission denied$"):
        scan_directory(str(locked))
    with pytest.raises(WatchError, match=f"^directory {locked} cannot be read"):
        scan_directory(str(tmp_path))  # a subdirectory we cannot read is not silently skipped


# --- new files ---------------------------------------------------------------------------------

def test_only_new_paths_are_new_files():
    before = {"a.csv": [1, 10], "b.csv": [1, 10]}
    after = {"a.csv": [5, 20], "c.csv": [1, 30], "0/d.csv": [1, 30]}  # a rewritten, b deleted
    assert new_files(before, after) == ["0/d.csv", "c.csv"]
    assert new_files({}, {}) == []


def test_new_files_between_two_real_scans(tmp_path):
    write(tmp_path / "a.csv")
    before = scan_directory(str(tmp_path))
    write(tmp_path / "a.csv", "rewritten")
    write(tmp_path / "in" / "b.csv")
    assert new_files(before, scan_directory(str(tmp_path))) == ["in/b.csv"]


# --- Delta tables ------------------------------------------------------------------------------

def commit(table, version, *actions):
    path = table / "_delta_log" / f"{version:020d}.json"
    return write(path, "".join(json.dumps(action) + "\n" for action in actions))


def commit_info(ms):
    return {"commitInfo": {"timestamp": ms, "operation": "WRITE"}}


PROTOCOL = {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}
ADD = {"add": {"path": "part-0.parquet", "size": 10, "dataChange": True}}


def test_the_newest_commit_is_the_version_with_its_commit_info_time(tmp_path):
    commit(tmp_path, 0, PROTOCOL, commit_info(1_700_000_000_000))
    commit(tmp_path, 10, commit_info(1_700_000_100_000), ADD)
    commit(tmp_path, 11, ADD, commit_info(1_714_564_800_123))  # commitInfo need not come first
    write(tmp_path / "_delta_log" / "00000000000000000010.checkpoint.parquet")
    write(tmp_path / "_delta_log" / "_last_checkpoint", '{"version": 10, "size": 3}')
    write(tmp_path / "_delta_log" / ".00000000000000000012.json.tmp")  # a commit in progress
    assert delta_table_version(str(tmp_path)) == (
        11, datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc))


def test_without_commit_info_the_file_time_is_the_commit_time(tmp_path):
    path = commit(tmp_path, 3, ADD)
    os.utime(path, ns=(1_714_564_800_500_000_000, 1_714_564_800_500_000_000))
    version, when = delta_table_version(f"file://{tmp_path}")
    assert (version, when) == (3, datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=timezone.utc))
    assert when.tzinfo is timezone.utc


def test_an_unreadable_line_does_not_hide_the_commit_info(tmp_path):
    path = commit(tmp_path, 0, ADD)
    with open(path, "a") as f:
        f.write("not json\n" + json.dumps(commit_info(0)) + "\n")
    assert delta_table_version(str(tmp_path)) == (0, datetime(1970, 1, 1, tzinfo=timezone.utc))


def test_a_table_without_a_delta_log_or_commits_has_no_version_yet(tmp_path):
    assert delta_table_version(str(tmp_path)) is None
    (tmp_path / "_delta_log").mkdir()
    write(tmp_path / "_delta_log" / "_last_checkpoint", "{}")
    assert delta_table_version(str(tmp_path)) is None


def test_a_missing_table_path_says_so(tmp_path):
    with pytest.raises(WatchError, match=f"^table path {tmp_path}/nope does not exist$"):
        delta_table_version(str(tmp_path / "nope"))
