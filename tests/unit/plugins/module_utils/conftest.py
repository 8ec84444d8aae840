# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for tests that touch real files and real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake

WaitUntil = t.Callable[..., t.Any]


def _wait_until(
    predicate: t.Callable[[], t.Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> t.Any:
    """Poll predicate until it returns something truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def wait_until() -> WaitUntil:
    return _wait_until


@pytest.fixture
def umask_022() -> t.Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def async_dir(tmp_path, umask_022) -> str:
    return _store.ensure_async_dir(str(tmp_path / "async"))


def read_meta(async_dir: str, jid: str) -> dict:
    with open(os.path.join(async_dir, jid), encoding="utf-8") as handle:
        return json.load(handle)[_record.META_KEY]


class Launcher:
    """Starts real supervised jobs (tiny Python programs standing in for modules) and tracks their processes."""

    def __init__(self, async_dir: str, janitor) -> None:
        self.async_dir = async_dir
        self.janitor = janitor

    def launch(self, source: str, *, jid: str = "j1.1", timeout: int = 30, grace: int = 1) -> dict:
        spec = _handshake.LaunchSpec(
            jid=jid,
            async_dir=self.async_dir,
            timeout=timeout,
            grace=grace,
            interpreter=sys.executable,
            payload=textwrap.dedent(source).encode("utf-8"),
        )
        job = _handshake.launch(spec)
        self.janitor.track_job(self.async_dir, jid)
        return job

    def meta(self, jid: str = "j1.1") -> dict:
        return read_meta(self.async_dir, jid)

    def launch_shell(self, script: str, **options: t.Any) -> dict:
        """A job whose own process is sh running script (the Python stand-in execs it)."""
        return self.launch(f"import os\nos.execvp('sh', ['sh', '-c', {script!r}])\n", **options)

    def wait(self, jid: str = "j1.1", timeout: float = 20) -> _record.JobRecord:
        (record,) = _status.wait_for_jobs(self.async_dir, [jid], timeout=timeout)
        return record


@pytest.fixture
def launcher(async_dir, janitor) -> Launcher:
    return Launcher(async_dir, janitor)


# A stand-in supervisor that, when signalled for a kill, records that its job succeeded:
# the job ended on its own in the very moment the kill came.
_ENDS_ON_ITS_OWN = """
import signal, sys, time
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
async_dir, jid = sys.argv[1:3]
def succeed(_signum, _frame):
    _store.write_record(async_dir, _record.JobRecord(jid=jid, state=_record.SUCCEEDED, result={"changed": True}))
    sys.exit(0)
signal.signal(signal.SIGUSR1, succeed)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def job_ending_when_killed(async_dir) -> t.Iterator[t.Callable[[str], None]]:
    """Start a running job (by jid) whose supervisor records a success when it gets the kill request."""
    processes: t.List[subprocess.Popen] = []

    def start(jid: str) -> None:
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-c", _ENDS_ON_ITS_OWN, async_dir, jid],
            stdout=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
            start_new_session=True,
        )
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        _store.write_record(async_dir, _record.JobRecord(
            jid=jid,
            state=_record.RUNNING,
            pid=process.pid,
            pid_start_time=_proc.process_start_time(process.pid),
            boot_id=_proc.read_boot_id(),
        ))

    yield start
    for process in processes:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def spawn():
    """Start processes in sessions of their own; kill their groups and reap them afterwards."""
    started = []

    def start(argv):
        process = subprocess.Popen(argv, start_new_session=True)  # pylint: disable=consider-using-with
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                process.wait(timeout=10)
            except ChildProcessError:
                pass
