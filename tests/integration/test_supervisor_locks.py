"""Acceptance of issue 15, locks: jobs that share a lock run one at a time, a killed holder releases it,
lock_timeout ends a wait, and the dpkg preset holds dpkg's own frontend lock."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import pids_with_cmdline
from playbook_run import RunPlaybook


def intervals(waited: dict) -> list[tuple[float, float]]:
    """(start, end) epoch times that each job printed, in launch order."""
    found = []
    for job in waited["jobs"]:
        words = job["result"]["stdout"].split()
        assert words[0::2] == ["start", "end"], job["result"]["stdout"]
        found.append((float(words[1]), float(words[3])))
    return found


def test_three_jobs_with_one_lock_run_one_at_a_time(
    run_playbook: RunPlaybook, async_dir: Path, marker: int
) -> None:
    lock_name = f"it-{marker}"
    run = run_playbook("locks_one_at_a_time.yml", extra_vars={"lock_name": lock_name})
    run.assert_ok()
    data = run.load("locks.json")
    launched = [result["ansible_job_id"] for result in data["launched"]["results"]]
    first_state = data["launched"]["results"][0]["job"]["state"]
    assert first_state == "running"
    for result in data["launched"]["results"][1:]:
        assert result["job"]["state"] == "waiting"
        assert result["job"]["locks"] == [lock_name]
        assert result["job"]["waiting_for"]["lock"] == lock_name
    early = data["early"]["jobs"]
    assert [job["state"] for job in early] == ["running", "waiting", "waiting"]
    # While one waits, its status names the holder.
    assert [job["waiting_for"]["holder"] for job in early[1:]] == [launched[0]] * 2
    assert "waiting_for" not in early[0]
    assert data["early"]["summary"]["waiting"] == 2
    waited = data["waited"]
    assert [job["state"] for job in waited["jobs"]] == ["succeeded"] * 3
    spans = sorted(intervals(waited))
    for (_start, end), (next_start, _next_end) in zip(spans, spans[1:]):
        assert end <= next_start, spans
    lock_dir = async_dir / ".locks"
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((lock_dir / lock_name).stat().st_mode) == 0o600


def test_a_killed_holder_releases_the_lock_and_lock_timeout_ends_a_wait(
    run_playbook: RunPlaybook, marker: int
) -> None:
    lock_name = f"it-{marker}"
    run = run_playbook("locks_holder_killed.yml", extra_vars={"lock_name": lock_name, "marker": marker})
    run.assert_ok()
    data = run.load("holder.json")
    holder_jid = data["holder"]["ansible_job_id"]
    gave_up = data["gave_up"]
    assert gave_up["failed"] is True
    assert gave_up["changed"] is False
    assert gave_up["job"]["state"] == "failed"
    assert gave_up["job"]["reason"] == "lock_timeout"
    assert f"the lock '{lock_name}' held by job {holder_jid}" in gave_up["msg"]
    # The controller said what the job waited for.
    assert f"waiting for lock {lock_name} (held by job {holder_jid})" in run.stdout
    waiting = data["waiting"]
    assert waiting["job"]["state"] == "waiting"
    assert waiting["job"]["waiting_for"]["holder"] == holder_jid
    assert waiting["finished"] is False
    assert data["next_end"]["job"]["state"] == "succeeded"
    assert data["next_end"]["stdout"] == "ran"
    assert data["holder_end"]["job"]["state"] == "lost"
    # The holder's job lost its supervisor, not its life: the marker fixture ends it; it still runs here.
    assert pids_with_cmdline(f"sleep {marker}")


needs_dpkg = pytest.mark.skipif(
    not (os.path.exists("/var/lib/dpkg/lock-frontend") and shutil.which("dpkg") and os.geteuid() == 0),
    reason="the dpkg preset test needs dpkg and root",
)


@needs_dpkg
def test_the_dpkg_preset_holds_the_frontend_lock(run_playbook: RunPlaybook) -> None:
    run = run_playbook("locks_dpkg.yml")
    run.assert_ok()
    data = run.load("dpkg.json")
    dpkg_jid = data["dpkg_job"]["ansible_job_id"]
    assert data["dpkg_job"]["job"]["state"] == "running"
    assert data["dpkg_job"]["job"]["locks"] == ["dpkg"]
    outside = data["outside"]
    assert outside["failed"] is True
    assert "frontend lock" in outside["stderr"]
    # apt takes dpkg's lock itself: its preset waits for the dpkg job, then runs apt under its own lock.
    assert data["apt_waiting"]["job"]["state"] == "waiting"
    assert data["apt_waiting"]["job"]["waiting_for"]["holder"] == dpkg_jid
    jobs = data["waited"]["jobs"]
    assert [job["state"] for job in jobs] == ["succeeded", "succeeded"]
    assert jobs[0]["result"]["stdout"] == "inside-ok"
    assert jobs[0]["ended_at"] <= jobs[1]["started_at"]


def test_run_parallel_jobs_that_share_a_lock_run_one_at_a_time(run_playbook: RunPlaybook, marker: int) -> None:
    run = run_playbook("locks_parallel.yml", extra_vars={"lock_name": f"it-{marker}"})
    run.assert_ok()
    results = run.load("parallel.json")["parallel"]["results"]
    assert [result["state"] for result in results] == ["succeeded"] * 3
    spans = [tuple(float(word) for word in result["result"]["stdout"].split()[1::2]) for result in results]
    first, second, free = spans
    assert first[1] <= second[0] or second[1] <= first[0], spans
    # The job without the lock did not wait for it.
    assert free[0] < max(first[0], second[0]), spans


def test_bad_lock_options_fail_with_one_sentence(run_playbook: RunPlaybook, become_user: str) -> None:
    python = next((path for path in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(path, os.X_OK)), None)
    if python is None:
        pytest.skip("no system-wide python3 for the become user")
    run = run_playbook("locks_bad_input.yml", extra_vars={"job_user": become_user, "job_python": python})
    run.assert_ok()
    data = run.load("bad.json")
    assert data["bad_name"]["msg"].startswith("lock name '../etc' is not valid: use 1 to 100 letters")
    assert data["no_lock"]["msg"] == (
        "lock_timeout is how long the job waits for its locks: it needs lock (a lock name or a list)"
    )
    assert data["no_async"]["msg"] == "lock needs async: the job's supervisor holds the locks"
    assert data["parallel_bad"]["msg"].startswith("job 1 (first): lock name 7 is not valid")
    for name in ("bad_name", "no_lock", "no_async", "parallel_bad"):
        assert data[name]["failed"] is True
        assert "Traceback" not in data[name]["msg"]
    if os.path.exists("/var/lib/dpkg/lock-frontend"):
        assert data["not_root"]["failed"] is True
        assert "the lock preset 'dpkg' needs /var/lib/dpkg/lock-frontend, which uid" in data["not_root"]["msg"]
        assert data["not_root"]["msg"].endswith("run the task as root (become: true)")


# Holds dpkg's frontend lock as dpkg and apt do (a POSIX write lock) until its stdin closes.
_HOLD_DPKG_LOCK = """
import fcntl, os, sys
fd = os.open("/var/lib/dpkg/lock-frontend", os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@needs_dpkg
def test_the_dpkg_preset_waits_for_another_holder_and_names_its_pid(run_playbook: RunPlaybook) -> None:
    holder = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", _HOLD_DPKG_LOCK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        run = run_playbook("locks_dpkg_busy.yml")
    finally:
        holder.communicate(timeout=10)
    run.assert_ok()
    gave_up = run.load("busy.json")["gave_up"]
    assert gave_up["job"]["reason"] == "lock_timeout"
    assert f"the lock 'dpkg' held by process {holder.pid}" in gave_up["msg"]
    assert f"waiting for lock dpkg (held by process {holder.pid})" in run.stdout
