# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The supervisor, exercised with real launches of tiny Python programs standing in for modules."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._job import supervisor as _supervisor

JID = "j1.1"
WAIT = 20


def read_raw(async_dir: str, jid: str = JID) -> dict:
    with open(os.path.join(async_dir, jid), encoding="utf-8") as handle:
        return json.load(handle)


def test_tail_text_caps_at_the_end():
    assert _supervisor.tail_text(b"abc") == "abc"
    data = b"a" * 10 + b"b" * _supervisor.TAIL_BYTES
    assert _supervisor.tail_text(data) == "b" * _supervisor.TAIL_BYTES
    assert _supervisor.tail_text(b"0123456789", limit=4) == "6789"
    # A multi-byte character cut in half does not break decoding.
    assert _supervisor.tail_text("é".encode() * 3, limit=5).endswith("éé")


def test_normalize_result_turns_warnings_into_strings():
    result = {
        "warnings": [{"msg": "first"}, "second", {"message": "third"}, {"details": [{"msg": "fourth"}]}],
        "deprecations": {"msg": "old", "version": "2.0"},
        "x": 1,
    }
    assert _supervisor.normalize_result(result) == {
        "warnings": ["first", "second", "third", "fourth"],
        "deprecations": ["old"],
        "x": 1,
    }


def test_launch_returns_a_running_record_that_is_private_and_stock_compatible(launcher, async_dir):
    job = launcher.launch("import time; time.sleep(30)")
    assert job["state"] == _record.RUNNING
    assert job["timeout"] == 30
    path = os.path.join(async_dir, JID)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    document = read_raw(async_dir)
    assert document["started"] is True
    assert document["finished"] is False
    meta = document[_record.META_KEY]
    assert meta["pid"] == job["pid"] != os.getpid()
    assert _proc.is_same_process(meta["pid"], meta["pid_start_time"])
    assert _proc.pid_alive(meta["job_pid"])
    assert meta["boot_id"] == _proc.read_boot_id()


def test_succeeding_module(launcher, async_dir, wait_until):
    launcher.launch('print("noise before the result")\nprint(\'{"changed": false, "x": 1}\')')
    record = launcher.wait()
    assert record.state == _record.SUCCEEDED
    assert record.result == {"changed": False, "x": 1}
    assert record.exit_code == 0
    document = read_raw(async_dir)
    assert "started" not in document
    assert document["x"] == 1
    # The record is copied from the captured stdout, which goes right after the record is written;
    # then only the record stays.
    wait_until(lambda: os.listdir(async_dir) == [JID], what="the side files to go")


def test_failing_module(launcher):
    launcher.launch('import sys\nprint(\'{"failed": true, "msg": "boom", "rc": 3}\')\nsys.exit(1)')
    record = launcher.wait()
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_FAILED
    assert record.msg == f"job {JID} failed: boom (rc=3)"
    assert record.result["rc"] == 3
    assert record.exit_code == 1


def test_module_exiting_without_output(launcher):
    launcher.launch("import sys\nsys.stderr.write('oops\\n')\nraise SystemExit(2)")
    record = launcher.wait()
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_CRASHED
    assert record.exit_code == 2
    assert "exited with code 2" in record.msg
    assert record.result["rc"] == 2
    assert record.result["module_stderr"] == "oops\n"


def test_module_killed_by_a_signal(launcher):
    launcher.launch("import os, signal\nprint('{\"x\": 1}', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)")
    record = launcher.wait()
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_CRASHED
    assert record.signal == "SIGKILL"
    assert record.exit_code is None
    assert "killed by SIGKILL" in record.msg
    assert record.result["rc"] == -1


def test_launch_with_a_missing_interpreter_fails_and_leaves_nothing(async_dir):
    spec = _supervisor.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=10, grace=1, interpreter="/nonexistent/python3", payload=b"pass"
    )
    with pytest.raises(_supervisor.LaunchError, match="cannot start the module with interpreter"):
        _supervisor.launch(spec)
    assert os.listdir(async_dir) == []


@pytest.mark.parametrize(
    "interpreter, style, problem",
    [
        ("{tmp}/not-executable", "new", "Permission denied"),
        ("/nonexistent/bash", "old", "No such file or directory"),
    ],
)
def test_launch_with_an_unusable_program_fails_and_leaves_nothing(async_dir, tmp_path, interpreter, style, problem):
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    interpreter = interpreter.format(tmp=tmp_path)
    spec = _supervisor.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=10, grace=1, interpreter=interpreter, payload=b"echo", style=style
    )
    with pytest.raises(_supervisor.LaunchError, match=f"with interpreter {interpreter!r}: {problem}"):
        _supervisor.launch(spec)
    assert os.listdir(async_dir) == []


def test_a_program_that_exec_refuses_after_the_launch_is_recorded_as_a_crash(async_dir, janitor):
    # Executable, so it passes the launch's checks, but not a program the kernel can run.
    spec = _supervisor.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=10, grace=1, interpreter="binary", payload=b"not a program\n",
        style="binary",
    )

    first = _supervisor.launch(spec)

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


def test_timeout_terminates_the_module(launcher):
    started = time.monotonic()
    launcher.launch("import time; time.sleep(60)", timeout=2, grace=1)
    record = launcher.wait()
    elapsed = time.monotonic() - started
    assert record.state == _record.TIMED_OUT
    assert record.reason == _record.REASON_ASYNC_LIMIT
    assert record.signal == "SIGTERM"
    assert "timed out after 2 s" in record.msg
    assert record.result["failed"] is True
    assert 2 <= elapsed <= 2 + 1 + 3


def test_timeout_kills_the_whole_tree_including_escapees(launcher, tmp_path, wait_until, janitor):
    pid_file = tmp_path / "pids.json"
    inner_file = tmp_path / "inner.pid"
    source = f"""
        import json, os, subprocess, time
        escaped = subprocess.Popen(["setsid", "sleep", "300"])
        stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300 & echo $! > {inner_file}; wait"])
        with open({str(pid_file) + ".tmp"!r}, "w") as handle:
            json.dump({{"escaped": escaped.pid, "stubborn": stubborn.pid}}, handle)
        os.replace({str(pid_file) + ".tmp"!r}, {str(pid_file)!r})
        time.sleep(300)
    """
    started = time.monotonic()
    launcher.launch(source, timeout=1, grace=1)
    meta = read_raw(launcher.async_dir)[_record.META_KEY]
    pids = {"job": meta["job_pid"]}
    try:
        pids.update(
            wait_until(lambda: pid_file.exists() and json.loads(pid_file.read_text()), timeout=5, what="the pid file")
        )
        pids["inner"] = int(
            wait_until(lambda: inner_file.exists() and inner_file.read_text().strip(), timeout=5, what="the inner pid")
        )
        for pid in pids.values():
            janitor.track(pid)
        record = launcher.wait()
        assert record.state == _record.TIMED_OUT
        assert "then SIGKILL after 1 s grace" in record.msg
        assert time.monotonic() - started <= 1 + 1 + 3
        alive = {name: pid for name, pid in pids.items() if _proc.pid_alive(pid)}
        assert alive == {}
        assert _proc.live_descendants(meta["pid"]) == []
    finally:
        for pid in pids.values():
            if _proc.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_killed_supervisor_is_reported_lost(launcher, async_dir):
    launcher.launch("import time; time.sleep(30)")
    meta = read_raw(async_dir)[_record.META_KEY]
    try:
        os.kill(meta["pid"], signal.SIGKILL)
        record = launcher.wait(timeout=10)
        assert record.state == _record.LOST
        assert record.reason == _record.REASON_SUPERVISOR_GONE
        assert str(meta["pid"]) in record.msg
        # The lost end is persisted so that stock async_status sees it as finished too.
        document = read_raw(async_dir)
        assert "started" not in document
        assert document["failed"] is True
        assert document[_record.META_KEY]["state"] == _record.LOST
    finally:
        job_pid = read_raw(async_dir)[_record.META_KEY]["job_pid"]
        try:
            os.killpg(job_pid, signal.SIGKILL)
        except OSError:
            pass


def test_changed_boot_id_is_reported_as_a_reboot(launcher, async_dir, monkeypatch, tmp_path):
    if _proc.read_boot_id() is None:
        pytest.skip("this host has no readable boot id")
    launcher.launch("import time; time.sleep(30)")
    assert _status.inspect_job(async_dir, JID).state == _record.RUNNING
    other_boot = tmp_path / "other_boot_id"
    other_boot.write_text("00000000-0000-0000-0000-000000000000\n")
    # Only this process sees the new boot id; the supervisor keeps running.
    monkeypatch.setenv(_proc.BOOT_ID_FILE_ENV, str(other_boot))
    record = _status.inspect_job(async_dir, JID)
    assert record.state == _record.LOST
    assert record.reason == _record.REASON_HOST_REBOOTED


def test_sigterm_to_the_supervisor_kills_the_job(launcher, async_dir, wait_until):
    launcher.launch("import time; time.sleep(30)", grace=2)
    meta = read_raw(async_dir)[_record.META_KEY]
    os.kill(meta["pid"], signal.SIGTERM)
    record = launcher.wait(timeout=10)
    assert record.state == _record.KILLED
    assert record.reason == _record.REASON_KILL_REQUESTED
    assert record.signal == "SIGTERM"
    assert record.msg == f"job {JID} was killed on request with SIGTERM"
    assert not _proc.pid_alive(meta["job_pid"])
    wait_until(
        lambda: not _proc.is_same_process(meta["pid"], meta["pid_start_time"]), timeout=5, what="the supervisor to exit"
    )


def test_several_jobs_in_one_dir(launcher, async_dir):
    launcher.launch("print('{\"n\": 1}')", jid="j1.1")
    launcher.launch("import time; time.sleep(0.5); print('{\"n\": 2}')", jid="j1.2")
    first, second = _status.wait_for_jobs(async_dir, ["j1.1", "j1.2"], timeout=WAIT)
    assert (first.state, first.result) == (_record.SUCCEEDED, {"n": 1})
    assert (second.state, second.result) == (_record.SUCCEEDED, {"n": 2})


def test_the_record_carries_the_start_time_of_the_job_process(launcher, async_dir):
    launcher.launch("import time; time.sleep(30)")
    meta = read_raw(async_dir)[_record.META_KEY]
    assert meta["job_start_time"] == _proc.process_start_time(meta["job_pid"])
    assert meta["job_start_time"] is not None
    assert _store.read_record(async_dir, JID).job_start_time == meta["job_start_time"]


def stubborn(ready_file) -> str:
    """A job that ignores every signal a kill may start with (so only SIGKILL ends it), then says it is ready."""
    return (
        "import signal, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\n"
        f"open({str(ready_file)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )


def obedient(ready_file) -> str:
    return f"import time\nopen({str(ready_file)!r}, 'w').close()\ntime.sleep(60)\n"


@pytest.mark.parametrize(
    "source, signal_name, grace, expected_msg",
    [
        (stubborn, "INT", 1, "was killed on request with SIGINT, then SIGKILL after 1 s grace"),
        (stubborn, "HUP", 0, "was killed on request with SIGHUP, then SIGKILL after 0 s grace"),
        (obedient, "HUP", 3, "was killed on request with SIGHUP"),
        (stubborn, "KILL", 3, "was killed on request with SIGKILL"),
    ],
    ids=["int-escalates", "hup-no-grace", "hup-enough", "kill-at-once"],
)
def test_kill_request_uses_the_requested_signal_and_grace(
    launcher, async_dir, tmp_path, wait_until, source, signal_name, grace, expected_msg
):
    ready = tmp_path / "ready"
    launcher.launch(source(ready), grace=10)
    wait_until(ready.exists, what="the job to set up its signal handling")
    meta = read_raw(async_dir)[_record.META_KEY]
    _store.write_kill_request(async_dir, JID, signal_name=signal_name, grace=grace)
    started = time.monotonic()
    os.kill(meta["pid"], signal.SIGUSR1)
    record = launcher.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert record.state == _record.KILLED
    assert record.reason == _record.REASON_KILL_REQUESTED
    assert record.signal == f"SIG{signal_name}"
    assert record.msg == f"job {JID} {expected_msg}"
    assert record.result == {"failed": True, "msg": record.msg, "changed": True}
    # The job's own grace (10 s) was not used.
    assert elapsed < grace + 4
    if "then SIGKILL" in expected_msg:
        assert elapsed >= grace
    assert not _proc.pid_alive(meta["job_pid"])
    # The request is a side file and goes with the others.
    assert os.listdir(async_dir) == [JID]


@pytest.mark.parametrize(
    "request_text",
    [None, "not json", '{"signal": "INT"}', '{"signal": "INT", "grace": -1}', '{"signal": "BOGUS", "grace": 7}'],
    ids=["no-request", "garbage", "no-grace", "negative-grace", "unknown-signal"],
)
def test_kill_without_a_usable_request_uses_sigterm_and_the_job_grace(
    launcher, async_dir, tmp_path, wait_until, request_text
):
    ready = tmp_path / "ready"
    launcher.launch(stubborn(ready), grace=0)
    wait_until(ready.exists, what="the job to set up its signal handling")
    meta = read_raw(async_dir)[_record.META_KEY]
    if request_text is not None:
        with open(_store.side_path(async_dir, JID, ".kill"), "w", encoding="utf-8") as handle:
            handle.write(request_text)
    os.kill(meta["pid"], signal.SIGUSR1)
    record = launcher.wait(timeout=10)
    assert record.state == _record.KILLED
    assert record.signal == "SIGTERM"
    assert record.msg == f"job {JID} was killed on request with SIGTERM, then SIGKILL after 0 s grace"
    assert os.listdir(async_dir) == [JID]


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


def test_the_record_holds_the_supervisor_peak_memory(launcher, async_dir):
    launcher.launch('print(\'{"changed": false}\')')
    launcher.wait()
    assert 0 < read_raw(async_dir)[_record.META_KEY]["supervisor_max_rss"] < 200 * 1024


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    point = tmp_path / "small"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], capture_output=True, check=False
    )
    if mounted.returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


# The module first closes its stdin, the payload file: the disk is then filled to the last page.
FILL_THE_DISK = """
    import os
    os.close(0)
    {before}
    fd = os.open({filler!r}, os.O_WRONLY | os.O_CREAT)
    for size in (65536, 4096, 1):
        try:
            while True:
                os.write(fd, b"\\0" * size)
        except OSError:
            pass
"""


def test_a_result_that_does_not_fit_is_recorded_as_not_saved(small_tmpfs, launcher):
    async_dir = launcher.async_dir = _store.ensure_async_dir(str(small_tmpfs / "async"))
    before = "print('{\"changed\": true, \"stdout\": \"done\"}', flush=True)"
    launcher.launch(FILL_THE_DISK.format(before=before, filler=str(small_tmpfs / "filler")))
    record = launcher.wait()
    # The output took the last free page; freeing it made room for a short record.
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_RESULT_NOT_SAVED
    assert record.msg.startswith(f"job {JID} succeeded, but its result could not be saved: cannot write the status file")
    assert "the disk is full" in record.msg
    assert record.result == {"failed": True, "msg": record.msg, "rc": 0}
    assert os.listdir(async_dir) == [JID]


def test_a_full_disk_at_the_end_leaves_the_job_lost_with_the_reason(small_tmpfs, launcher, wait_until):
    async_dir = launcher.async_dir = _store.ensure_async_dir(str(small_tmpfs / "async"))
    launcher.launch(FILL_THE_DISK.format(before="", filler=str(small_tmpfs / "filler")))
    meta = launcher.meta()
    wait_until(lambda: not _proc.pid_alive(meta["pid"]), what="the supervisor to give up")
    record = _status.inspect_job(async_dir, JID)
    assert record.state == _record.LOST
    assert record.reason == _record.REASON_SUPERVISOR_GONE
    assert f"because the file system of {async_dir} is full (free space there)" in record.msg
    # No temp file of the failed writes is left; the record still says running on disk.
    assert sorted(os.listdir(async_dir)) == [JID]
    os.unlink(small_tmpfs / "filler")
    assert _status.inspect_job(async_dir, JID).state == _record.LOST
    assert read_raw(async_dir)[_record.META_KEY]["state"] == _record.LOST


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
        monkeypatch.setattr(_supervisor, "_posix_spawn_reports_failures", lambda: False)
    elif not _supervisor._posix_spawn_reports_failures():  # pylint: disable=protected-access
        pytest.skip("this C library's posix_spawn does not report exec failures")
    spec = _supervisor.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=30, grace=1, interpreter="/bin/sh", payload=PROCESS_REPORT.encode(),
        style="old",
    )
    # An inheritable descriptor of the launcher's, which the job must not get.
    leaked = tmp_path / "leaked"
    fd = os.open(leaked, os.O_WRONLY | os.O_CREAT, 0o600)
    os.set_inheritable(fd, True)
    try:
        _supervisor.launch(spec)
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


def test_the_launch_does_not_wait_for_the_module_to_read_its_payload(async_dir, janitor, tmp_path):
    go = tmp_path / "go"
    # The module's interpreter reads its payload only once the test says so, after the launch returned.
    interpreter = f"/bin/sh -c 'while [ ! -e {go} ]; do sleep 0.05; done; exec {sys.executable} -'"
    # Far more than a pipe holds: written to a pipe, the launch would block until the module reads it.
    padding = "#" + "x" * 1023 + "\n"
    source = padding * 1024 + 'print(\'{"changed": false, "stdout": "payload intact"}\')\n'
    spec = _supervisor.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=30, grace=1, interpreter=interpreter, payload=source.encode("utf-8")
    )

    first = _supervisor.launch(spec)

    janitor.track_job(async_dir, JID)
    assert first["state"] == _record.RUNNING
    assert not go.exists()
    go.touch()
    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=20)
    assert record.state == _record.SUCCEEDED
    assert record.result["stdout"] == "payload intact"


STRAY_SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE, signal.SIGTSTP)


def test_stray_signals_to_the_supervisor_change_nothing(launcher, async_dir, wait_until, tmp_path):
    started = tmp_path / "started"
    launcher.launch(
        f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(1.5); print('{{\"survived\": true}}')"
    )
    wait_until(started.exists, timeout=10, what="the module to start")
    meta = read_raw(async_dir)[_record.META_KEY]
    for signum in STRAY_SIGNALS:
        os.kill(meta["pid"], signum)
    time.sleep(0.2)
    assert _proc.is_same_process(meta["pid"], meta["pid_start_time"])
    record = launcher.wait(timeout=10)
    assert record.state == _record.SUCCEEDED
    assert record.result["survived"] is True


def kill_supervisor_and_wait_for_module(async_dir, wait_until) -> dict:
    """SIGKILL the job's supervisor, then wait until the module it ran has ended too; returns the record's meta."""
    meta = read_raw(async_dir)[_record.META_KEY]
    os.kill(meta["pid"], signal.SIGKILL)
    wait_until(
        lambda: not _proc.is_same_process(meta["job_pid"], meta["job_start_time"]), timeout=10, what="the module to end"
    )
    return meta


def test_the_result_of_a_module_that_outlived_its_supervisor_is_recovered(launcher, async_dir, wait_until):
    launcher.launch("import time; time.sleep(1); print('{\"changed\": true, \"x\": 1, \"warnings\": [\"own\"]}')")
    meta = kill_supervisor_and_wait_for_module(async_dir, wait_until)
    record = _status.inspect_job(async_dir, JID)
    assert record.state == _record.SUCCEEDED
    assert (record.result["x"], record.result["changed"]) == (1, True)
    assert record.exit_code is None
    assert record.result["warnings"][0] == "own"
    assert f"the supervisor of job {JID} (pid {meta['pid']}) died" in record.result["warnings"][1]
    # Written as the supervisor would have: the side files are gone, stock sees an ended job.
    document = read_raw(async_dir)
    assert document["finished"] is True and document["x"] == 1
    assert sorted(os.listdir(async_dir)) == [JID]


def test_a_module_that_outlived_its_supervisor_without_a_result_is_lost(launcher, async_dir, wait_until):
    launcher.launch("import time; time.sleep(1)")
    meta = kill_supervisor_and_wait_for_module(async_dir, wait_until)
    record = _status.inspect_job(async_dir, JID)
    assert (record.state, record.reason) == (_record.LOST, _record.REASON_SUPERVISOR_GONE)


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


def _inspect_state(async_dir: str) -> tuple:
    record = _status.inspect_job(async_dir, JID)
    return record.state, len((record.result or {}).get("x", ""))


def test_readers_that_find_the_dead_supervisor_together_all_see_the_recovered_result(launcher, async_dir, wait_until):
    import multiprocessing  # pylint: disable=import-outside-toplevel

    launcher.launch("import time; time.sleep(1); print('{\"x\": \"' + 'y' * 3000000 + '\"}')")
    meta = kill_supervisor_and_wait_for_module(async_dir, wait_until)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        states = pool.map(_inspect_state, [async_dir] * 4)
    assert states == [(_record.SUCCEEDED, 3000000)] * 4
