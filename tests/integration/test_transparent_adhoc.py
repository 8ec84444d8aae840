"""Ad hoc commands in transparent mode: ``ansible -B/-P`` and ``-m async_status`` over local and ssh.

With the collection's transparent dir on ``ANSIBLE_ACTION_PLUGINS``, ``ansible all -B 60 -P 0 -a ...``
starts a longrun job whose id ``-m async_status -a jid=...`` reads, and ``-B 60 -P 5`` long-polls:
it returns about when the job ends instead of at core's next poll step. ``-v`` names longrun.

ansible-core ships no JSON stdout callback (tree and oneline are deprecated), so the results are
parsed from the default ad hoc output, ``host | STATUS => {json}``.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import re
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import yaml
from helpers import pids_with_cmdline, terminate_pids, wait_until
from playbook_run import Target, tail

CORE_DEFAULT_TEXT = "~/.ansible/plugins/action:/usr/share/ansible/plugins/action"
# Long enough that stock's poller, which first looks at the job one poll step after the launch,
# could not return as early as the long-poll does, even on a loaded machine.
POLL_SECONDS = 10
# From the job's end to the return of ansible: the long-poll reply, fetching the result, the exit.
RETURN_MARGIN = 2.5
RUN_TIMEOUT = 90


class AdHocRun(t.NamedTuple):
    stdout: str
    result: dict[str, t.Any]
    # Wall-clock time (time.time()) at which the ansible process had exited.
    returned_at: float


class RunAdHoc(t.Protocol):
    def __call__(self, *args: str) -> AdHocRun:
        ...


@pytest.fixture
def sleep_arg() -> t.Iterator[t.Callable[[float], str]]:
    """Sleep durations no other process uses (``4.123``), to find a job's process; stopped afterwards."""
    used: list[str] = []

    def make(seconds: float) -> str:
        arg = f"{seconds:.0f}.{random.randint(100, 999)}"
        used.append(arg)
        return arg

    yield make
    for arg in used:
        terminate_pids(pids_with_cmdline(f"sleep {arg}"), grace=2)


@pytest.fixture
def run_adhoc(
    target: Target,
    ansible_playbook_bin: Path,
    collections_path: str,
    async_dir: Path,
    tmp_path: Path,
    transparent_dir: Path,
) -> RunAdHoc:
    """Run ``ansible all -i <target inventory> ...`` in transparent mode and parse the target's result."""
    ansible_bin = ansible_playbook_bin.with_name("ansible")
    (host,) = yaml.safe_load(target.inventory.read_text())["all"]["hosts"]

    def run(*args: str) -> AdHocRun:
        command = [str(ansible_bin), "all", "-i", str(target.inventory), *args]
        completed = subprocess.run(
            command,
            env={
                **os.environ,
                "ANSIBLE_COLLECTIONS_PATH": collections_path,
                "ANSIBLE_ACTION_PLUGINS": f"{transparent_dir}:{CORE_DEFAULT_TEXT}",
                "ANSIBLE_ASYNC_DIR": str(async_dir),
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_HOST_KEY_CHECKING": "False",
                **target.env,
            },
            # A scratch cwd keeps a stray ansible.cfg in the checkout from changing the run.
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        returned_at = time.time()
        report = (
            f"command: {' '.join(command)}\nrc: {completed.returncode}\n"
            f"--- stdout ---\n{tail(completed.stdout)}\n--- stderr ---\n{tail(completed.stderr)}"
        )
        assert completed.returncode == 0, report
        # Transparent mode must not cost a warning-free run its silence.
        assert "[WARNING]" not in completed.stderr and "[DEPRECATION WARNING]" not in completed.stderr, report
        return AdHocRun(completed.stdout, host_result(completed.stdout, host, report), returned_at)

    return run


def host_result(stdout: str, host: str, report: str) -> dict[str, t.Any]:
    """The JSON result that the ad hoc callback prints after ``<host> | CHANGED => ``."""
    match = re.search(rf"^{re.escape(host)} \| [A-Z]+ => ", stdout, re.MULTILINE)
    assert match, f"no JSON result for {host}\n{report}"
    result, _end = json.JSONDecoder().raw_decode(stdout, match.end())
    return t.cast(dict, result)


def record_finished(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()).get("finished"))
    except (OSError, ValueError):
        return False


def utc_timestamp(iso: str) -> float:
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def test_background_command_then_async_status(
    run_adhoc: RunAdHoc, async_dir: Path, sleep_arg: t.Callable[[float], str]
) -> None:
    # Long enough that the status run, a whole ad hoc start of its own, still finds it running on a busy machine.
    seconds = sleep_arg(15)

    launch = run_adhoc("-B", "60", "-P", "0", "-a", f"sleep {seconds}", "-v")

    jid = launch.result["ansible_job_id"]
    assert launch.result["job"]["origin"] == "longrun", launch.result
    assert launch.result["started"] and not launch.result["finished"], launch.result
    assert f"longrun: ansible.legacy.command runs as job {jid}" in launch.stdout
    assert json.loads((async_dir / jid).read_text())["_longrun"]["schema"] >= 1
    # The launch returns once the supervisor runs; the module starts the command a moment later.
    wait_until(lambda: pids_with_cmdline(f"sleep {seconds}"), timeout=10, message=f"sleep {seconds} to start")

    running = run_adhoc("-m", "async_status", "-a", f"jid={jid}")

    assert running.result["ansible_job_id"] == jid
    assert running.result["started"] and not running.result["finished"], running.result
    assert running.result["job"]["state"] == "running", running.result

    wait_until(lambda: record_finished(async_dir / jid), timeout=30, message=f"job {jid} to end")
    finished = run_adhoc("-m", "async_status", "-a", f"jid={jid}")

    assert finished.result["finished"] and finished.result["rc"] == 0, finished.result
    assert finished.result["cmd"] == ["sleep", seconds]
    assert finished.result["job"]["state"] == "succeeded", finished.result


def test_long_poll_returns_when_the_job_ends(
    run_adhoc: RunAdHoc, async_dir: Path, sleep_arg: t.Callable[[float], str]
) -> None:
    seconds = sleep_arg(2)

    run = run_adhoc("-B", "60", "-P", str(POLL_SECONDS), "-a", f"sleep {seconds}", "-v")

    job = run.result["job"]
    assert run.result["finished"] and run.result["rc"] == 0, run.result
    assert job["origin"] == "longrun" and job["state"] == "succeeded", run.result
    assert f"longrun: job {run.result['ansible_job_id']} started" in run.stdout
    late = run.returned_at - utc_timestamp(job["ended_at"])
    assert late < RETURN_MARGIN, f"ansible returned {late:.1f} s after the job ended: {job}"
    # Before the first poll step of stock's poller, which comes a full step after the launch.
    assert run.returned_at < utc_timestamp(job["started_at"]) + POLL_SECONDS, job
    # As stock's poller cleans up: the result that ends the wait takes the job's files with it.
    assert not (async_dir / run.result["ansible_job_id"]).exists()
