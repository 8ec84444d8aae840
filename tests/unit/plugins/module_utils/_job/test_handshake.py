# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The launcher's side of a launch, exercised with real launches of tiny Python programs standing in for modules."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status

JID = "j1.1"


def read_raw(async_dir: str, jid: str = JID) -> dict:
    with open(os.path.join(async_dir, jid), encoding="utf-8") as handle:
        return json.load(handle)


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


def test_launch_with_a_missing_interpreter_fails_and_leaves_nothing(async_dir):
    spec = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=10, grace=1, interpreter="/nonexistent/python3", payload=b"pass"
    )
    with pytest.raises(_handshake.LaunchError, match="cannot start the module with interpreter"):
        _handshake.launch(spec)
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
    spec = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=10, grace=1, interpreter=interpreter, payload=b"echo", style=style
    )
    with pytest.raises(_handshake.LaunchError, match=f"with interpreter {interpreter!r}: {problem}"):
        _handshake.launch(spec)
    assert os.listdir(async_dir) == []


def test_the_launch_does_not_wait_for_the_module_to_read_its_payload(async_dir, janitor, tmp_path):
    go = tmp_path / "go"
    # The module's interpreter reads its payload only once the test says so, after the launch returned.
    interpreter = f"/bin/sh -c 'while [ ! -e {go} ]; do sleep 0.05; done; exec {sys.executable} -'"
    # Far more than a pipe holds: written to a pipe, the launch would block until the module reads it.
    padding = "#" + "x" * 1023 + "\n"
    source = padding * 1024 + 'print(\'{"changed": false, "stdout": "payload intact"}\')\n'
    spec = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=30, grace=1, interpreter=interpreter, payload=source.encode("utf-8")
    )

    first = _handshake.launch(spec)

    janitor.track_job(async_dir, JID)
    assert first["state"] == _record.RUNNING
    assert not go.exists()
    go.touch()
    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=20)
    assert record.state == _record.SUCCEEDED
    assert record.result["stdout"] == "payload intact"


JOB_PACKAGE = "ansible_collections.longrun.jobs.plugins.module_utils._job"

# Runs in a fresh Python: does what argv[1] names, then prints the collection modules it imported.
IMPORT_PROBE = f"""
import json, sys
async_dir, action = sys.argv[1:3]
if action == "launch":
    from {JOB_PACKAGE} import handshake
    job = handshake.launch(handshake.LaunchSpec(
        jid="j1.1", async_dir=async_dir, timeout=30, grace=1, interpreter=sys.executable,
        payload=b"import time; time.sleep(30)",
    ))
else:
    from {JOB_PACKAGE} import status
    job = status.inspect_job(async_dir, "j1.1").public()
print(json.dumps({{"job": job, "modules": sorted(name for name in sys.modules if name.startswith({JOB_PACKAGE!r}))}}))
"""


def run_probe(async_dir: str, action: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, async_dir, action],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
        timeout=30,
        check=True,
    )
    return json.loads(completed.stdout)


def test_the_launcher_loads_none_of_the_end_of_job_code(async_dir, janitor):
    probe = run_probe(async_dir, "launch")
    janitor.track_job(async_dir, JID)

    assert probe["job"]["state"] == _record.RUNNING
    # Output scanning and result interpretation load in the supervisor, once its job has ended.
    assert not {f"{JOB_PACKAGE}.outcome", f"{JOB_PACKAGE}.output"} & set(probe["modules"])


def test_a_status_request_loads_none_of_the_supervisor_modules(launcher, async_dir):
    launcher.launch("import time; time.sleep(30)")

    probe = run_probe(async_dir, "status")

    assert probe["job"]["state"] == _record.RUNNING
    supervisor_modules = {f"{JOB_PACKAGE}.{name}" for name in ("handshake", "spawn", "supervise", "outcome", "output")}
    assert not supervisor_modules & set(probe["modules"])
