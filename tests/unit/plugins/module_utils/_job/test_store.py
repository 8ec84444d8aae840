# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# .../ansible_collections/longrun/jobs/plugins/module_utils/_job/store.py -> the collections root
COLLECTIONS_ROOT = str(Path(_store.__file__).parents[6])


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def ended(jid: str = "j1.1", **result) -> _record.JobRecord:
    return _record.JobRecord(jid=jid, state=_record.SUCCEEDED, result=dict(result) or {"changed": False})


def test_ensure_async_dir_creates_a_private_dir(tmp_path, umask_022):
    path = str(tmp_path / "a" / "async")
    assert _store.ensure_async_dir(path) == path
    assert mode_of(path) == 0o700


def test_ensure_async_dir_makes_the_dir_it_creates_private_whatever_the_umask(tmp_path):
    path = tmp_path / "async"
    previous = os.umask(0o277)
    try:
        _store.ensure_async_dir(str(path))
    finally:
        os.umask(previous)
    assert mode_of(path) == 0o700


def test_ensure_async_dir_keeps_the_mode_of_an_existing_dir(tmp_path, umask_022):
    path = tmp_path / "async"
    path.mkdir()
    path.chmod(0o755)
    _store.ensure_async_dir(str(path))
    assert mode_of(path) == 0o755


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o770, 0o720, 0o702])
def test_ensure_async_dir_refuses_a_dir_others_can_write_to(tmp_path, mode):
    path = tmp_path / "async"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(_store.StoreError, match=f"^the async dir {path} is writable by other users \\(mode {mode:04o}\\)"):
        _store.ensure_async_dir(str(path))
    assert mode_of(path) == mode


def test_ensure_async_dir_never_changes_a_dir_through_a_symlink(tmp_path, umask_022):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    link = tmp_path / "async"
    link.symlink_to(shared)
    with pytest.raises(_store.StoreError, match="writable by other users"):
        _store.ensure_async_dir(str(link))
    assert mode_of(shared) == 0o1777


@pytest.mark.parametrize("kind", ["file", "symlink to a file"])
def test_ensure_async_dir_refuses_a_file(tmp_path, kind):
    path = tmp_path / "async"
    if kind == "file":
        path.write_text("not a dir")
    else:
        (tmp_path / "file").write_text("not a dir")
        path.symlink_to(tmp_path / "file")
    with pytest.raises(_store.StoreError, match=f"^the async dir {path} is not a directory: point ansible_async_dir at a directory$"):
        _store.ensure_async_dir(str(path))


def private_subdir(async_dir) -> str:
    return _store.ensure_private_subdir(str(async_dir), ".sub", what="sub dir", keeps="its files")


def test_ensure_private_subdir_creates_it_private_whatever_the_umask(tmp_path):
    old_umask = os.umask(0o777)
    try:
        path = private_subdir(tmp_path)
    finally:
        os.umask(old_umask)
    assert path == str(tmp_path / ".sub")
    assert mode_of(path) == 0o700
    # Once it exists it is used as it is.
    assert private_subdir(tmp_path) == path


def test_ensure_private_subdir_refuses_one_others_can_write_and_leaves_its_mode(tmp_path):
    (tmp_path / ".sub").mkdir()
    (tmp_path / ".sub").chmod(0o777)
    with pytest.raises(_store.StoreError, match=f"^the sub dir {tmp_path}/.sub is writable by other users \\(mode 0777\\)"):
        private_subdir(tmp_path)
    assert mode_of(tmp_path / ".sub") == 0o777


@pytest.mark.parametrize("kind", ["file", "symlink to a dir"])
def test_ensure_private_subdir_refuses_what_is_not_a_plain_dir(tmp_path, kind):
    if kind == "file":
        (tmp_path / ".sub").write_text("not a dir")
    else:
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        (tmp_path / ".sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(_store.StoreError, match=f"^{tmp_path}/.sub is not a directory of uid {os.geteuid()}: remove it"):
        private_subdir(tmp_path)


def test_ensure_private_subdir_says_why_it_cannot_be_created(tmp_path):
    with pytest.raises(_store.StoreError, match=f"^cannot create the sub dir {tmp_path}/missing/.sub \\("):
        private_subdir(tmp_path / "missing")


def test_resolve_async_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _store.resolve_async_dir("~/.ansible_async") == str(tmp_path / ".ansible_async")
    with pytest.raises(_store.StoreError, match="empty"):
        _store.resolve_async_dir("")


def test_write_record_is_private_and_readable(async_dir):
    path = _store.write_record(async_dir, ended(x=1))
    assert path == os.path.join(async_dir, "j1.1")
    assert mode_of(path) == 0o600
    assert json.loads(Path(path).read_text())["x"] == 1
    assert _store.read_record(async_dir, "j1.1").result == {"x": 1}


def test_write_record_replaces_an_open_file_with_a_private_one(async_dir):
    path = os.path.join(async_dir, "j1.1")
    Path(path).write_text('{"started": 1, "finished": 0}')
    os.chmod(path, 0o644)
    inode = os.stat(path).st_ino
    _store.write_record(async_dir, ended(x=2))
    assert mode_of(path) == 0o600
    assert os.stat(path).st_ino != inode
    assert _store.read_record(async_dir, "j1.1").result == {"x": 2}


def test_running_record_on_disk_is_stock_compatible(async_dir):
    _store.write_record(async_dir, _record.JobRecord(jid="j1.1", state=_record.RUNNING, pid=1))
    document = json.loads(Path(async_dir, "j1.1").read_text())
    assert document["started"] is True
    assert document["finished"] is False
    assert document["results_file"] == os.path.join(async_dir, "j1.1")


def test_atomic_writes_leave_no_temp_files(async_dir):
    for x in range(5):
        _store.write_record(async_dir, ended(x=x))
    assert os.listdir(async_dir) == ["j1.1"]


def test_unserializable_document_keeps_the_previous_record(async_dir):
    _store.write_record(async_dir, ended(x=1))
    with pytest.raises(TypeError):
        _store.write_document(async_dir, "j1.1", {"x": object()})
    assert os.listdir(async_dir) == ["j1.1"]
    assert _store.read_record(async_dir, "j1.1").result == {"x": 1}


def test_rename_failure_removes_the_temp_file(async_dir):
    os.mkdir(os.path.join(async_dir, "j2.2"))
    _store.write_record(async_dir, ended("j1.1", x=1))
    with pytest.raises(_store.StoreError, match="cannot write the status file .*j2.2"):
        _store.write_record(async_dir, ended("j2.2", x=2))
    assert sorted(os.listdir(async_dir)) == ["j1.1", "j2.2"]
    assert os.listdir(os.path.join(async_dir, "j2.2")) == []
    assert _store.read_record(async_dir, "j1.1").result == {"x": 1}


def test_write_failing_half_way_keeps_the_previous_record(async_dir):
    """A write cut short by the file size limit (EFBIG) must not replace or litter."""
    _store.write_record(async_dir, ended(x=1))
    program = textwrap.dedent("""
        import resource, signal, sys
        sys.path.insert(0, sys.argv[1])
        from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        try:
            _store.write_document(sys.argv[2], "j1.1", {"x": "y" * 100000})
        except _store.StoreError as exc:
            print(exc)
            sys.exit(3)
        """)
    done = subprocess.run(
        [sys.executable, "-c", program, COLLECTIONS_ROOT, async_dir],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "cannot write the status file" in done.stdout
    assert os.listdir(async_dir) == ["j1.1"]
    assert _store.read_record(async_dir, "j1.1").result == {"x": 1}


def test_read_record_of_a_missing_job_is_none(async_dir):
    assert _store.read_record(async_dir, "j9.9") is None


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b'{"started": 1, "fini', "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"_longrun": {"state": "running", "schema": 7}}', "schema 7"),
    ],
)
def test_read_record_of_a_bad_file_names_the_path(async_dir, content, problem):
    path = os.path.join(async_dir, "j1.1")
    Path(path).write_bytes(content)
    with pytest.raises(_store.RecordUnreadable, match=problem) as caught:
        _store.read_record(async_dir, "j1.1")
    assert caught.value.path == path
    assert path in str(caught.value)


def test_read_record_of_a_directory_is_unreadable(async_dir):
    os.mkdir(os.path.join(async_dir, "j1.1"))
    with pytest.raises(_store.RecordUnreadable):
        _store.read_record(async_dir, "j1.1")


@pytest.mark.parametrize("jid", ["../x", "/etc/passwd", "j1/../../x", "..", ""])
def test_paths_refuse_traversal(async_dir, jid):
    with pytest.raises(_record.InvalidJid):
        _store.record_path(async_dir, jid)
    with pytest.raises(_record.InvalidJid):
        _store.side_path(async_dir, jid, ".stdout")
    with pytest.raises(_record.InvalidJid):
        _store.read_record(async_dir, jid)
    with pytest.raises(_record.InvalidJid):
        _store.remove_job_files(async_dir, jid)


def test_side_path_refuses_unknown_suffixes(async_dir):
    assert _store.side_path(async_dir, "j1.1", ".stdout") == os.path.join(async_dir, ".j1.1.stdout")
    with pytest.raises(ValueError):
        _store.side_path(async_dir, "j1.1", "/../../x")


def test_list_jids_ignores_temp_side_and_other_files(async_dir):
    for name in (
        "j1.1",
        "123",
        "j2",
        ".j1.1.stdout",
        ".j1.1.stderr",
        ".tmp-j1.1-abc123",
        "notes.txt",
        "j1..2",
        "j1.1.bak",
    ):
        Path(async_dir, name).write_text("{}")
    assert _store.list_jids(async_dir) == ["123", "j1.1", "j2"]


def test_list_jids_of_a_missing_dir_is_empty(tmp_path):
    assert _store.list_jids(str(tmp_path / "nowhere")) == []


def test_remove_job_files_removes_side_files_and_nothing_else(async_dir):
    _store.write_record(async_dir, ended("j1.1"))
    _store.write_record(async_dir, ended("j1.2"))
    for suffix in _store.SIDE_SUFFIXES:
        os.close(_store.open_side_file(async_dir, "j1.1", suffix))
    os.close(_store.open_side_file(async_dir, "j1.2", ".stdout"))
    Path(async_dir, "notes.txt").write_text("keep")
    assert _store.remove_job_files(async_dir, "j1.1") is True
    assert sorted(os.listdir(async_dir)) == [".j1.2.stdout", "j1.2", "notes.txt"]
    assert _store.remove_job_files(async_dir, "j1.1") is False


def test_open_side_file_is_private_and_fresh(async_dir):
    path = _store.side_path(async_dir, "j1.1", ".stdout")
    Path(path).write_text("old output")
    os.chmod(path, 0o644)
    fd = _store.open_side_file(async_dir, "j1.1", ".stdout")
    try:
        os.write(fd, b"new")
    finally:
        os.close(fd)
    assert Path(path).read_text() == "new"
    assert mode_of(path) == 0o600


def test_record_signature_changes_when_the_record_is_replaced(async_dir):
    assert _store.record_signature(async_dir, "j1.1") is None
    _store.write_record(async_dir, ended(x=1))
    first = _store.record_signature(async_dir, "j1.1")
    _store.write_record(async_dir, ended(x=1))
    assert _store.record_signature(async_dir, "j1.1") not in (None, first)


@pytest.mark.parametrize("signal_name, grace", [("TERM", 5), ("KILL", 0), ("INT", 120)])
def test_kill_request_round_trip_is_private(async_dir, signal_name, grace):
    _store.write_kill_request(async_dir, "j1.1", signal_name=signal_name, grace=grace)
    path = _store.side_path(async_dir, "j1.1", ".kill")
    assert mode_of(path) == 0o600
    assert json.loads(Path(path).read_text()) == {"signal": signal_name, "grace": grace}
    assert _store.read_kill_request(async_dir, "j1.1") == (signal_name, grace)
    assert os.listdir(async_dir) == [".j1.1.kill"]


def test_kill_request_replaces_an_earlier_one(async_dir):
    _store.write_kill_request(async_dir, "j1.1", signal_name="TERM", grace=5)
    _store.write_kill_request(async_dir, "j1.1", signal_name="HUP", grace=1)
    assert _store.read_kill_request(async_dir, "j1.1") == ("HUP", 1)
    assert os.listdir(async_dir) == [".j1.1.kill"]


@pytest.mark.parametrize(
    "write, problem",
    [
        (
            lambda path: _store.write_kill_request(path, "j1.1", signal_name="TERM", grace=5),
            "cannot write the kill request",
        ),
        (lambda path: _store.write_record(path, ended()), "cannot write the status file"),
    ],
    ids=["kill-request", "record"],
)
def test_writes_into_a_missing_dir_raise_store_error(tmp_path, write, problem):
    with pytest.raises(_store.StoreError, match=problem):
        write(str(tmp_path / "gone"))


def test_kill_request_refuses_traversal(async_dir):
    with pytest.raises(_record.InvalidJid):
        _store.write_kill_request(async_dir, "../j1.1", signal_name="TERM", grace=5)
    assert os.listdir(async_dir) == []


def test_read_kill_request_of_no_request_is_none(async_dir):
    assert _store.read_kill_request(async_dir, "j1.1") is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"TERM 5",
        b"\xff\xfe",
        b'["TERM", 5]',
        b'{"signal": "TERM"}',
        b'{"grace": 5}',
        b'{"signal": 15, "grace": 5}',
        b'{"signal": "TERM", "grace": "5"}',
        b'{"signal": "TERM", "grace": true}',
        b'{"signal": "TERM", "grace": -1}',
        b'{"signal": "TERM", "grace": 1.5}',
    ],
)
def test_read_kill_request_of_a_malformed_request_is_none(async_dir, content):
    Path(_store.side_path(async_dir, "j1.1", ".kill")).write_bytes(content)
    assert _store.read_kill_request(async_dir, "j1.1") is None


def test_record_mtime_is_when_the_record_was_last_written(async_dir):
    assert _store.record_mtime(async_dir, "j1.1") is None
    path = _store.write_record(async_dir, ended())
    os.utime(path, (1_000_000_000, 1_000_000_000))
    assert _store.record_mtime(async_dir, "j1.1") == 1_000_000_000
    _store.write_record(async_dir, ended(x=2))
    assert _store.record_mtime(async_dir, "j1.1") == os.stat(path).st_mtime > 1_000_000_000


def test_record_mtime_refuses_traversal(async_dir):
    with pytest.raises(_record.InvalidJid):
        _store.record_mtime(async_dir, "../x")


def test_remove_job_files_removes_a_kill_request(async_dir):
    _store.write_record(async_dir, ended())
    _store.write_kill_request(async_dir, "j1.1", signal_name="TERM", grace=5)
    assert _store.remove_job_files(async_dir, "j1.1") is True
    assert os.listdir(async_dir) == []


def test_read_record_never_follows_a_symlink(async_dir, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text('{"started": 1, "finished": 1, "rc": 0, "stdout": "secret"}')
    (Path(async_dir) / "j1.1").symlink_to(outside)
    with pytest.raises(_store.RecordUnreadable) as caught:
        _store.read_record(async_dir, "j1.1")
    assert "symbolic link" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_kill_request_behind_a_symlink_is_ignored(async_dir, tmp_path):
    outside = tmp_path / "request.json"
    outside.write_text('{"signal": "KILL", "grace": 0}')
    (Path(async_dir) / ".j1.1.kill").symlink_to(outside)
    assert _store.read_kill_request(async_dir, "j1.1") is None


def test_record_mtime_of_a_symlink_is_the_link_own(async_dir, tmp_path):
    outside = tmp_path / "old"
    outside.write_text("{}")
    os.utime(outside, (1_000_000, 1_000_000))
    (Path(async_dir) / "j1.1").symlink_to(outside)
    assert _store.record_mtime(async_dir, "j1.1") > 1_000_000
