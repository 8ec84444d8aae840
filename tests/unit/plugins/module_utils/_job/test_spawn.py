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
from ansible_collections.longrun.jobs.plugins.module_utils._job import progress as _progress
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


# The job and a child of its own report; the last report names the job's descriptors and where the file is.
PROGRESS_REPORT = r"""
echo '{"percent": 10, "msg": "from the job"}' >&"$LONGRUN_PROGRESS_FD"
sh -c 'echo "{\"percent\": 20, \"msg\": \"from a child\"}" >&"$LONGRUN_PROGRESS_FD"'
fds=$(ls /proc/self/fd | sort -n | tr '\n' ',')
mode=$(stat -c %a "$LONGRUN_PROGRESS_FILE")
flags=$(sed -n 's/^flags:[[:space:]]*//p' /proc/$$/fdinfo/$LONGRUN_PROGRESS_FD)
printf '{"percent": 30, "msg": "fd=%s fds=%s mode=%s flags=%s file=%s"}\n' \
  "$LONGRUN_PROGRESS_FD" "$fds" "$mode" "$flags" "$LONGRUN_PROGRESS_FILE" >&"$LONGRUN_PROGRESS_FD"
echo '{"percent": 99, "msg": "cut' >&"$LONGRUN_PROGRESS_FD"
echo '{}'
"""


@pytest.mark.parametrize("starter", ["posix_spawn", "subprocess"])
def test_the_job_and_its_children_report_progress_on_their_descriptor(async_dir, janitor, monkeypatch, starter):
    if starter == "subprocess":
        monkeypatch.setattr(_spawn, "_posix_spawn_reports_failures", lambda: False)
    elif not _spawn._posix_spawn_reports_failures():  # pylint: disable=protected-access
        pytest.skip("this C library's posix_spawn does not report exec failures")
    spec = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=30, grace=1, interpreter="/bin/sh", payload=PROGRESS_REPORT.encode(),
        style="old",
    )
    _handshake.launch(spec)
    janitor.track_job(async_dir, JID)

    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=20)

    assert record.state == _record.SUCCEEDED, record.msg
    progress = record.progress
    assert progress["percent"] == 30, progress
    facts = dict(word.split("=", 1) for word in progress["msg"].split())
    assert facts["fd"] == "7"
    # A child of the job has the standard descriptors and the progress file (ls lists its own directory as 3).
    fds = set(facts["fds"].strip(",").split(","))
    assert "7" in fds and fds - {"0", "1", "2", "7"} <= {"3"}
    assert facts["mode"] == "600"
    assert int(facts["flags"], 8) & os.O_APPEND
    assert facts["file"] == os.path.join(async_dir, f".{JID}.progress")
    # The end removed the file, the record kept the report.
    assert not os.path.exists(facts["file"])
    assert _status.inspect_job(async_dir, JID).public()["progress"]["percent"] == 30


def _start_with_descriptor_seven(tmp_path, taken: str) -> str:
    """In a forked child (its descriptors are its own to mess with): start a job, then say what fd 7 is."""
    progress_path, stdout_path, other_path = tmp_path / "progress", tmp_path / "stdout", tmp_path / "other"
    other = os.open(other_path, os.O_WRONLY | os.O_CREAT, 0o600)
    stdout = os.open(stdout_path, os.O_WRONLY | os.O_CREAT, 0o600)
    progress = os.open(progress_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    stdin = os.open(os.devnull, os.O_RDONLY)
    if taken == "by-stdout":
        os.dup2(stdout, _progress.PROGRESS_FD, inheritable=False)
        stdout = _progress.PROGRESS_FD
    elif taken == "by-another-file":
        os.dup2(other, _progress.PROGRESS_FD, inheritable=False)
    else:
        try:
            os.close(_progress.PROGRESS_FD)
        except OSError:
            pass
    pid = _spawn._spawn(  # pylint: disable=protected-access
        ["/bin/sh", "-c", 'echo out; echo \'{"percent": 5}\' >&7'],
        stdin_fd=stdin, stdout_fd=stdout, stderr_fd=stdout, progress_fd=progress, environment={},
    )
    os.waitpid(pid, 0)
    try:
        info = os.fstat(_progress.PROGRESS_FD)
    except OSError:
        return "closed"
    for name, path in (("stdout", stdout_path), ("other", other_path), ("progress", progress_path)):
        if os.path.samestat(info, os.stat(path)):
            return name
    return "unknown"


@pytest.mark.parametrize(
    "taken, seven_after", [("by-stdout", "stdout"), ("by-another-file", "other"), ("free", "closed")]
)
def test_the_subprocess_start_gives_the_supervisor_its_descriptors_back(tmp_path, monkeypatch, taken, seven_after):
    monkeypatch.setattr(_spawn, "_posix_spawn_reports_failures", lambda: False)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        try:
            answer = _start_with_descriptor_seven(tmp_path, taken)
        except BaseException as exc:  # pylint: disable=broad-except
            answer = repr(exc)
        os.write(write_fd, answer.encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as answer:
        seven = answer.read().decode()
    os.waitpid(pid, 0)

    assert seven == seven_after
    assert (tmp_path / "stdout").read_text() == "out\n"
    assert (tmp_path / "progress").read_text() == '{"percent": 5}\n'
