"""Issue 15 item 3: on_controller_loss. With kill, a job that no controller waits on any more (ansible-playbook
was killed mid-wait) is ended by its supervisor within poll + controller_timeout (+ grace); with keep it goes on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import typing as t
from pathlib import Path

import pytest

from helpers import pids_alive, pids_with_cmdline, wait_until
from playbook_run import RunPlaybook, StartPlaybook

JID_RE = re.compile(r"\Aj[0-9]+\.[0-9]+\Z")
POLL = 2
CONTROLLER_TIMEOUT = 5
GRACE = 1
# Generous slack on the documented bound: process start-up, the last window's round trip, a loaded machine.
SLACK = 4


def job_ids(async_dir: Path) -> list[str]:
    return sorted(entry.name for entry in async_dir.iterdir() if JID_RE.match(entry.name))


def pids_with_sleep(marker: int) -> list[int]:
    return pids_with_cmdline(f"sleep {marker}")


def supervisor_pid(async_dir: Path, jid: str) -> int:
    return json.loads((async_dir / jid).read_text())["_longrun"]["pid"]


def kill_mid_wait(
    start_playbook: StartPlaybook, out_dir: Path, async_dir: Path, *,
    signum: int = signal.SIGKILL, **extra_vars: t.Any
) -> tuple[str, list[int], float]:
    """Start the waited job, signal ansible-playbook's whole process group mid-wait (SIGKILL: a kill -9 or an AWX
    cancel; SIGINT: Ctrl-C); (jid, job pids, kill time)."""
    process = start_playbook("controller_loss_wait.yml", extra_vars={"job_poll": POLL, **extra_vars}).process
    pid_file = out_dir / "job.pid"
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60, message="the job's pid file")
    (jid,) = job_ids(async_dir)
    # Well into the wait: at least one window has renewed the lease.
    time.sleep(POLL + 1)
    assert process.poll() is None, "ansible-playbook ended before it was killed"
    pids = [int(pid_file.read_text()), supervisor_pid(async_dir, jid)]
    assert pids_alive(pids) == pids
    os.killpg(process.pid, signum)
    killed_at = time.monotonic()
    process.communicate(timeout=30)
    return jid, pids, killed_at


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kill_ends_the_job_tree_once_no_controller_waits(
    start_playbook: StartPlaybook, run_playbook: RunPlaybook, out_dir: Path, async_dir: Path,
    marker: int, signum: int,
) -> None:
    """The acceptance test: SIGKILL of ansible-playbook mid-wait, and the job tree ends within the documented time.

    SIGINT (Ctrl-C) ends the run too: the job goes the same way.
    """
    jid, pids, killed_at = kill_mid_wait(
        start_playbook, out_dir, async_dir, signum=signum, loss="kill", controller_timeout=CONTROLLER_TIMEOUT,
        sleep_seconds=marker,
    )
    sleeps = pids_with_sleep(marker)
    assert sleeps, "the job's sleep is not running"
    job_tree = pids[:1] + sleeps
    # The last window began before the kill: the lease lasts about controller_timeout beyond it.
    time.sleep(2)
    assert pids_alive(job_tree) == job_tree, "the job ended before its lease could have expired"
    bound = POLL + CONTROLLER_TIMEOUT + GRACE + SLACK
    wait_until(lambda: not pids_alive(job_tree + pids[1:]), timeout=bound - (time.monotonic() - killed_at),
               message=f"the job tree and its supervisor to end within {bound} s of the kill")
    ended_after = time.monotonic() - killed_at
    assert CONTROLLER_TIMEOUT - 1 <= ended_after <= bound
    assert not (out_dir / "finished").exists()

    run = run_playbook("controller_loss_status.yml", extra_vars={"jid": jid})
    run.assert_ok()
    status = run.load("status.json")
    assert status["failed"] is True
    assert status["finished"] is True
    job = status["job"]
    assert (job["state"], job["reason"]) == ("killed", "controller_lost")
    assert job["on_controller_loss"] == "kill"
    assert job["signal"] == "SIGTERM"
    assert job["msg"].startswith(f"job {jid} was killed because no controller waited on it for {CONTROLLER_TIMEOUT} s")


@pytest.mark.slow
def test_keep_lets_the_job_finish_after_the_controller_is_killed(
    start_playbook: StartPlaybook, run_playbook: RunPlaybook, out_dir: Path, async_dir: Path
) -> None:
    jid, _pids, killed_at = kill_mid_wait(start_playbook, out_dir, async_dir, loss="keep", sleep_seconds=12)
    wait_until((out_dir / "finished").exists, timeout=40, message="the job to finish")
    # It outlived what a lease would have allowed.
    assert time.monotonic() - killed_at > POLL + CONTROLLER_TIMEOUT
    run = run_playbook("controller_loss_status.yml", extra_vars={"jid": jid, "status_wait": 10})
    run.assert_ok()
    status = run.load("status.json")
    assert status["job"]["state"] == "succeeded"
    assert "on_controller_loss" not in status["job"]
    assert not (async_dir / f".{jid}.lease").exists()


def test_a_waited_job_outlives_its_controller_timeout(run_playbook: RunPlaybook, async_dir: Path) -> None:
    """Each wait window renews the lease: a job longer than controller_timeout is not killed while waited on."""
    run = run_playbook(
        "controller_loss_wait.yml",
        extra_vars={"loss": "kill", "controller_timeout": 3, "sleep_seconds": 8, "job_poll": 1},
    )
    run.assert_ok()
    job = run.load("job.json")
    assert job["job"]["state"] == "succeeded", job
    assert job["job"]["on_controller_loss"] == "kill"
    assert job_ids(async_dir) == []
    assert not [entry.name for entry in async_dir.iterdir() if entry.name.endswith(".lease")]


@pytest.mark.slow
def test_a_fire_and_forget_job_with_kill_lives_while_async_status_reads_it(
    run_playbook: RunPlaybook, marker: int
) -> None:
    run = run_playbook("controller_loss_poll0.yml", extra_vars={"marker": marker})
    run.assert_ok()
    data = run.load("poll0.json")
    assert data["job"]["job"]["on_controller_loss"] == "kill"
    # A 10 s wait on a job with an 8 s controller timeout, then a read 1 s later: it still runs.
    assert data["waited"]["job"]["state"] == "running"
    assert data["read_again"]["job"]["state"] == "running"
    expired = data["expired"]["job"]
    assert (expired["state"], expired["reason"]) == ("killed", "controller_lost")
    assert "no controller waited on it for 8 s" in expired["msg"]
    assert pids_with_sleep(marker) == []


def test_bad_controller_loss_options_are_refused_with_one_sentence(run_playbook: RunPlaybook) -> None:
    run = run_playbook("controller_loss_bad.yml")
    run.assert_ok()
    data = run.load("bad.json")
    assert data["with_keep"]["failed"] is True
    assert data["with_keep"]["msg"].startswith("controller_timeout is only used with on_controller_loss: kill")
    assert data["zero"]["failed"] is True
    assert data["zero"]["msg"].startswith("controller_timeout must be 1 to ")
    assert data["unknown"]["failed"] is True
    assert "on_controller_loss" in data["unknown"]["msg"] and "kill" in data["unknown"]["msg"]
    for result in data.values():
        assert "Traceback" not in json.dumps(result)
        assert "ansible_job_id" not in result
