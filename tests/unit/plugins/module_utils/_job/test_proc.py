# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc

# Above the kernel's pid_max limit (2**22), so never a live process.
NO_SUCH_PID = 2**22 + 12345


def test_process_start_time_is_a_stable_int():
    first = _proc.process_start_time(os.getpid())
    assert isinstance(first, int)
    assert first > 0
    assert _proc.process_start_time(os.getpid()) == first


def test_process_start_time_of_a_missing_pid_is_none():
    assert _proc.process_start_time(NO_SUCH_PID) is None


def test_pid_alive_for_this_process():
    assert _proc.pid_alive(os.getpid())
    assert not _proc.pid_alive(NO_SUCH_PID)


def test_pid_alive_is_false_for_a_reaped_child():
    child = subprocess.Popen(["true"])  # pylint: disable=consider-using-with
    child.wait(timeout=10)
    assert not _proc.pid_alive(child.pid)


def test_pid_alive_is_false_for_a_zombie(spawn, wait_until):
    child = spawn(["true"])
    # Not reaped yet: it stays a zombie until spawn's cleanup waits for it.
    wait_until(lambda: (_proc._read_stat_fields(child.pid) or ["?"])[0] == "Z", timeout=10, what="a zombie")
    assert not _proc.pid_alive(child.pid)


def test_is_same_process_compares_start_times():
    start = _proc.process_start_time(os.getpid())
    assert _proc.is_same_process(os.getpid(), start)
    assert _proc.is_same_process(os.getpid(), None)
    assert not _proc.is_same_process(os.getpid(), start + 1)
    assert not _proc.is_same_process(NO_SUCH_PID, None)


def test_read_boot_id_of_this_host():
    boot_id = _proc.read_boot_id()
    if boot_id is None:
        pytest.skip("this host has no readable boot id")
    assert len(boot_id) == 36


def test_read_boot_id_honours_the_test_override(monkeypatch, tmp_path):
    boot_file = tmp_path / "boot_id"
    boot_file.write_text("  11111111-2222-3333-4444-555555555555\n")
    monkeypatch.setenv(_proc.BOOT_ID_FILE_ENV, str(boot_file))
    assert _proc.read_boot_id() == "11111111-2222-3333-4444-555555555555"
    boot_file.write_text("")
    assert _proc.read_boot_id() is None
    monkeypatch.setenv(_proc.BOOT_ID_FILE_ENV, str(tmp_path / "missing"))
    assert _proc.read_boot_id() is None


def test_live_descendants_finds_children_and_grandchildren(spawn, wait_until):
    shell = spawn(["sh", "-c", "sleep 30 & sleep 30"])
    grandchildren = wait_until(lambda: _proc.live_descendants(shell.pid), timeout=10, what="a grandchild")
    descendants = _proc.live_descendants(os.getpid())
    assert shell.pid in descendants
    assert set(grandchildren) <= set(descendants)
    assert shell.pid not in grandchildren


def test_live_descendants_of_a_leaf_is_empty():
    assert _proc.live_descendants(NO_SUCH_PID) == []


def test_signal_name():
    assert _proc.signal_name(signal.SIGKILL) == "SIGKILL"
    assert _proc.signal_name(200) == "signal 200"


def test_terminate_tree_stops_at_sigterm_when_that_is_enough(spawn, wait_until):
    shell = spawn(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    children = wait_until(
        lambda: len(_proc.live_descendants(shell.pid)) == 2 and _proc.live_descendants(shell.pid), what="two sleeps"
    )
    started = time.monotonic()
    last = _proc.terminate_tree(shell.pid, process_group=None, grace=5, wait_for_change=time.sleep)
    assert last == "SIGTERM"
    assert time.monotonic() - started < 4
    assert not any(_proc.pid_alive(pid) for pid in children)


def test_terminate_tree_escalates_to_sigkill(spawn, wait_until):
    shell = spawn(["sh", "-c", "trap '' TERM; sleep 300 & sleep 300 & wait"])
    children = wait_until(
        lambda: len(_proc.live_descendants(shell.pid)) == 2 and _proc.live_descendants(shell.pid), what="two sleeps"
    )
    started = time.monotonic()
    last = _proc.terminate_tree(shell.pid, process_group=None, grace=0.5, wait_for_change=time.sleep)
    assert last == "SIGKILL"
    assert 0.5 <= time.monotonic() - started < 5
    assert not any(_proc.pid_alive(pid) for pid in children)


def start_orphan(script: str, wait_until) -> int:
    """A process tree whose root is not our child (its parent exits at once); returns the root's pid."""
    started = subprocess.run(
        ["sh", "-c", f"setsid sh -c {shlex.quote(script)} >/dev/null 2>&1 </dev/null & echo $!"],
        capture_output=True, text=True, check=True, timeout=10,
    )
    root = int(started.stdout.strip())
    wait_until(lambda: _proc.live_descendants(root), what="the orphan's child")
    return root


@pytest.fixture
def orphans():
    """Roots of orphan trees; their process groups are killed afterwards."""
    roots = []
    yield roots
    for root in roots:
        try:
            os.killpg(root, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.parametrize(
    "script, grace, expected",
    [("sleep 300 & wait", 5, "SIGTERM"), ("trap '' TERM; sleep 300 & wait", 0.5, "SIGKILL")],
    ids=["obeys", "escalates"],
)
def test_terminate_tree_ends_an_orphan_and_its_descendants(orphans, wait_until, script, grace, expected):
    root = start_orphan(script, wait_until)
    orphans.append(root)
    tree = [root, *_proc.live_descendants(root)]

    started = time.monotonic()
    last = _proc.terminate_tree(
        root, include_root=True, process_group=root, grace=grace, wait_for_change=time.sleep, poll=0.1, final_wait=5
    )

    assert last == expected
    assert time.monotonic() - started < grace + 4
    assert not any(_proc.pid_alive(pid) for pid in tree)


def test_terminate_tree_without_a_reaper_leaves_the_callers_children_alone(orphans, spawn, wait_until):
    # A child of ours that has exited: only its own parent (its Popen) may reap it.
    ours = spawn(["true"])
    wait_until(lambda: not _proc.pid_alive(ours.pid), what="our child to exit")
    root = start_orphan("sleep 300 & wait", wait_until)
    orphans.append(root)

    _proc.terminate_tree(root, include_root=True, process_group=root, grace=5, wait_for_change=time.sleep, poll=0.1)

    assert os.waitpid(ours.pid, os.WNOHANG)[0] == ours.pid
    ours.returncode = 0
