"""Proves the harness itself: both transports, out_dir dumps and a per-test async dir."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import pids_alive, process_exists_with_cmdline, wait_until
from playbook_run import RunPlaybook


def test_smoke_playbook(run_playbook: RunPlaybook, async_dir: Path) -> None:
    run = run_playbook("smoke.yml", timeout=120)
    run.assert_ok()
    results = run.load("smoke.json")

    assert results["whoami"]["stdout"] == pwd.getpwuid(os.geteuid()).pw_name

    job = results["job"]
    assert job["started"] == 1
    # ANSIBLE_ASYNC_DIR must reach the target over ssh too, or tests could not inspect job files.
    assert Path(job["results_file"]).parent == async_dir

    job_result = results["job_result"]
    assert job_result["finished"] == 1
    assert job_result["rc"] == 0
    assert job_result["cmd"] == ["sleep", "1"]

    assert results["results_file"]["stat"]["exists"] is True
    assert not (async_dir / job["ansible_job_id"]).exists(), "cleanup in always: should remove the status file"


# The failure report does not depend on the transport, so one is enough.
@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_assert_ok_reports_playbook_output(run_playbook: RunPlaybook) -> None:
    run = run_playbook("fail.yml", extra_vars={"marker": "harness-failure-marker"}, timeout=60)

    assert run.rc != 0
    with pytest.raises(AssertionError, match="harness-failure-marker"):
        run.assert_ok()


def test_process_helpers_follow_a_child() -> None:
    marker = f"longrun-harness-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        wait_until(lambda: process_exists_with_cmdline(marker), timeout=10)
        assert pids_alive([child.pid]) == [child.pid]

        child.terminate()
        # Not reaped yet, so the child is a zombie here: it must already count as gone.
        wait_until(lambda: not pids_alive([child.pid]), timeout=10)
        assert not process_exists_with_cmdline(marker)
    finally:
        child.kill()
        child.wait()


def test_wait_until_fails_with_message() -> None:
    with pytest.raises(AssertionError, match="never true"):
        wait_until(lambda: False, timeout=0.2, interval=0.05, message="never true")


def test_test_files_have_unique_names() -> None:
    # The unit and integration trees are collected in one run without packages: two test files
    # of the same name there make pytest refuse the second one ("import file mismatch").
    tests_dir = Path(__file__).resolve().parents[1]
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted(tests_dir.rglob("test_*.py")):
        if "output" in path.relative_to(tests_dir).parts[:1]:
            continue
        if path.name in seen:
            clashes.append(f"{seen[path.name]} and {path}")
        seen.setdefault(path.name, path)
    assert not clashes, "rename one of each: " + "; ".join(clashes)
