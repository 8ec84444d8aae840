# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Starting the job's process: its program, descriptors, signal state, session and TMPDIR."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import spawn as _spawn
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status

JID = "j1.1"


# An old-style module run by sh, not Python: Python would ignore SIGPIPE itself and hide what it inherited.
PROCESS_REPORT = r"""
fds=$(for fd in /proc/$$/fd/*; do readlink "$fd"; done | tr '\n' ' ')
printf '{"blocked": "%s", "ignored": "%s", "session": %s, "pid": %s, "fds": "%s", "tmpdir": "%s"}\n' \
  "$(sed -n 's/^SigBlk:[[:space:]]*//p' /proc/$$/status)" "$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status)" \
  "$(cut -d' ' -f6 /proc/$$/stat)" "$$" "$fds" "$TMPDIR"
"""


@pytest.mark.parametrize("starter", ["posix_spawn", "subprocess"])
def test_the_module_starts_clean_in_a_session_of_its_own(async_dir, janitor, tmp_path, monkeypatch, starter):
    if starter == "subprocess":
        monkeypatch.setattr(_spawn, "_posix_spawn_reports_failures", lambda: False)
    elif not _spawn._posix_spawn_reports_failures():  # pylint: disable=protected-access
        pytest.skip("this C library's posix_spawn does not report exec failures")
    spec = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=30, grace=1, interpreter="/bin/sh", payload=PROCESS_REPORT.encode(),
        style="old",
    )
    # An inheritable descriptor of the launcher's, which the job must not get.
    leaked = tmp_path / "leaked"
    fd = os.open(leaked, os.O_WRONLY | os.O_CREAT, 0o600)
    os.set_inheritable(fd, True)
    try:
        _handshake.launch(spec)
    finally:
        os.close(fd)
    janitor.track_job(async_dir, JID)

    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=20)

    assert record.state == _record.SUCCEEDED, record.msg
    report = record.result
    assert int(report["blocked"], 16) == 0
    for ignored_by_python in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not int(report["ignored"], 16) & (1 << (ignored_by_python - 1))
    assert report["session"] == report["pid"]
    assert str(leaked) not in report["fds"]
    assert report["tmpdir"] == os.path.join(async_dir, f".{JID}.work", "tmp")


def test_a_program_that_exec_refuses_after_the_launch_is_recorded_as_a_crash(async_dir, janitor):
    # Executable, so it passes the launch's checks, but not a program the kernel can run.
    spec = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=10, grace=1, interpreter="binary", payload=b"not a program\n",
        style="binary",
    )

    first = _handshake.launch(spec)

    janitor.track_supervisor(first["pid"], None)
    assert first["state"] == _record.RUNNING
    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=20)
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_CRASHED
    assert record.msg == (
        f"job {JID} crashed: cannot run the binary module: Exec format error; build it for the target's platform"
    )
    assert record.result == {"failed": True, "msg": record.msg, "rc": -1}
    assert sorted(os.listdir(async_dir)) == [JID]


def test_the_module_reads_its_payload_but_its_children_get_dev_null(launcher):
    child = "import os, sys; os.lseek(0, 0, os.SEEK_SET) if not os.isatty(0) else None; sys.stdout.write(repr(os.read(0, 1 << 20)))"
    launcher.launch(
        "import json, os, subprocess, sys\n"
        "SECRET = 'payload-secret'\n"
        f"out = subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True)\n"
        "print(json.dumps({'child_read': out.stdout, 'child_stderr': out.stderr, 'stdin': os.readlink('/proc/self/fd/0')}))\n"
    )
    record = launcher.wait(timeout=20)
    assert record.state == _record.SUCCEEDED, record
    assert record.result["child_read"] == "b''", record.result
    assert record.result["stdin"] == os.devnull


def test_the_job_has_a_private_tmpdir_that_goes_with_it(launcher, async_dir, wait_until):
    launcher.launch(
        """
        import json, os, tempfile
        with tempfile.NamedTemporaryFile(delete=False) as handle:
            handle.write(b"left behind")
        print(json.dumps({"tmpdir": os.environ["TMPDIR"], "left": handle.name}))
        """
    )
    record = launcher.wait()
    assert record.state == _record.SUCCEEDED
    work_dir = os.path.join(async_dir, f".{JID}.work")
    assert record.result["tmpdir"] == os.path.join(work_dir, "tmp")
    assert record.result["left"].startswith(record.result["tmpdir"] + os.sep)
    assert not os.path.exists(work_dir)
    # The captured stdout the record was copied from goes right after the record is written.
    wait_until(lambda: os.listdir(async_dir) == [JID], what="the captured stdout to go")
