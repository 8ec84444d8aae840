"""Issue 14 item 5: a playbook run by ansible-runner (AWX's engine) gets the job's progress and its followed output
as events while it runs.

ansible-runner's stdout callback turns whatever Ansible displays into events, as AWX shows them: our waiting
lines and the followed output lines arrive as ``verbose`` events, each as it is displayed, not in one piece at the
end of the task.
"""

from __future__ import annotations

import datetime
import os
import re
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest
import yaml

# tests/requirements.txt pins it for `make test`; the venvs of the core matrix do not have it.
ansible_runner = pytest.importorskip("ansible_runner", reason="ansible-runner is not installed in this venv")

TASK_NAME = "A job that prints a line and reports its progress every second"
REPORTS = 12
# The job, a shell job on the command executor, prints a line and reports step i of REPORTS each second, then
# ends; run waits for it with poll: 2 and follows its output.
PLAYBOOK = [
    {
        "name": "Progress through ansible-runner",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {
                "name": TASK_NAME,
                "longrun.jobs.run": {
                    "ansible.builtin.shell": (
                        f'for i in $(seq 1 {REPORTS}); do echo "line $i"; '
                        f"""printf '{{"current": %s, "total": {REPORTS}, "msg": "step %s of {REPORTS}"}}\\n' """
                        '"$i" "$i" >&"$LONGRUN_PROGRESS_FD"; sleep 1; done'
                    ),
                    "follow": True,
                    "follow_interval": 2,
                },
                "async": 120,
                "poll": 2,
                "register": "reported",
            },
        ],
    }
]
PROGRESS_RE = re.compile(r"longrun: job (\S+) is running, running for \d+ s: (\d+(?:\.\d+)?)% step (\d+) of 12")
# An event's stdout may hold several lines, ended by CRLF as on a terminal.
OUTPUT_RE = re.compile(r"^\[localhost\] stdout: line (\d+)\r?$", re.MULTILINE)


class Arrivals:
    """The runner's events with the time each reached the event handler."""

    def __init__(self) -> None:
        self.events: t.List[t.Tuple[float, dict]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> bool:
        with self._lock:
            self.events.append((time.time(), event))
        return True


def runner_envvars(collections_path: str, tmp_path: Path) -> dict:
    """The environment of a runner's ansible-playbook: the collection, a private async dir, the venv's ansible."""
    return {
        "ANSIBLE_COLLECTIONS_PATH": collections_path,
        "ANSIBLE_ASYNC_DIR": str(tmp_path / "async"),
        # The ansible-playbook of the venv that runs the tests.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def parse_utc(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def test_progress_and_output_arrive_as_runner_events_while_the_job_runs(
    tmp_path: Path, collections_path: str, target_python: str
) -> None:
    runner, arrivals = run_with_runner(
        tmp_path, "runner", PLAYBOOK, collections_path=collections_path, inventory=local_inventory(target_python)
    )

    stdout = runner.stdout.read() if runner.stdout else ""
    assert (runner.status, runner.rc) == ("successful", 0), stdout
    (task_end,) = [
        (arrived, event) for arrived, event in arrivals.events
        if event.get("event") == "runner_on_ok" and event["event_data"].get("task") == TASK_NAME
    ]
    job = task_end[1]["event_data"]["res"]["job"]
    assert job["state"] == "succeeded"
    assert job["executor"] == "command"
    # The task's own event carries the job's last report.
    assert job["progress"]["percent"] == 100
    assert job["progress"]["msg"] == f"step {REPORTS} of {REPORTS}"
    assert (job["progress"]["current"], job["progress"]["total"]) == (REPORTS, REPORTS)

    progress_events = [
        (arrived, event) for arrived, event in arrivals.events if PROGRESS_RE.search(event.get("stdout") or "")
    ]
    assert len(progress_events) >= 2, stdout
    assert {event["event"] for _arrived, event in progress_events} == {"verbose"}
    steps = [int(PROGRESS_RE.search(event["stdout"]).group(3)) for _arrived, event in progress_events]
    assert steps == sorted(steps) and steps[0] < steps[-1], steps
    # Each arrived while the job ran: before it ended (by the target's clock, the same machine's) and well
    # before the task's own event, not in one batch with it.
    ended = parse_utc(job["ended_at"])
    first_arrival = progress_events[0][0]
    assert first_arrival < ended - 2, (first_arrival, ended)
    assert first_arrival < task_end[0] - 2, (first_arrival, task_end[0])
    # The artifacts say the same: each progress event was created before the job's end.
    for _arrived, event in progress_events[:-1]:
        created = datetime.datetime.fromisoformat(event["created"]).replace(tzinfo=datetime.timezone.utc)
        assert created.timestamp() < ended, event["created"]

    # The followed output: each line once, in order, as verbose events; the first ones arrived while the job ran.
    output_events = [
        (arrived, event) for arrived, event in arrivals.events if OUTPUT_RE.search(event.get("stdout") or "")
    ]
    numbers = [int(n) for _arrived, event in output_events for n in OUTPUT_RE.findall(event["stdout"])]
    assert numbers == list(range(1, REPORTS + 1)), stdout
    assert {event["event"] for _arrived, event in output_events} == {"verbose"}
    first_output = output_events[0][0]
    assert first_output < ended - 2, (first_output, ended)
    assert first_output < task_end[0] - 2, (first_output, task_end[0])
    early = [event for arrived, event in output_events if arrived < ended]
    assert len(early) >= 2, [(arrived, event["stdout"]) for arrived, event in output_events]


# Issue 16 item 2: the demo through ansible-runner's Python API, and a cancel (AWX's cancel: SIGKILL of
# ansible-playbook's process group) mid-wait with on_controller_loss kill and keep.
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
CANCEL_POLL = 2
CANCEL_CONTROLLER_TIMEOUT = 5
CANCEL_GRACE = 1
# Generous slack on the documented bound: process start-up, the last window's round trip, a loaded machine.
CANCEL_SLACK = 4
WAITED_TASK = "A job waited on by a run that AWX cancels"
STATUS_TASK = "Read the job's status after the cancel"


def run_with_runner(
    tmp_path: Path, name: str, playbook: t.Any, *, collections_path: str, inventory: t.Optional[dict] = None,
    **options: t.Any,
) -> t.Tuple[t.Any, Arrivals]:
    """Run a playbook (a path to copy, or its tasks as data) through ansible_runner.run; the runner and its events."""
    private = tmp_path / name
    (private / "project").mkdir(parents=True)
    (private / "inventory").mkdir()
    if isinstance(playbook, Path):
        (private / "project" / "playbook.yml").write_text(playbook.read_text())
    else:
        (private / "project" / "playbook.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    arrivals = Arrivals()
    runner = ansible_runner.run(
        private_data_dir=str(private),
        playbook="playbook.yml",
        envvars=runner_envvars(collections_path, tmp_path),
        event_handler=arrivals,
        quiet=True,
        timeout=300,
        **options,
    )
    return runner, arrivals


def task_results(arrivals: Arrivals, task: str) -> t.List[dict]:
    """The results of a task's runner_on_ok / runner_on_failed events."""
    return [
        event["event_data"]["res"] for _arrived, event in arrivals.events
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and event["event_data"].get("task") == task
    ]


def local_inventory(target_python: str, host: str = "localhost") -> dict:
    return {"all": {"hosts": {host: {"ansible_connection": "local", "ansible_python_interpreter": target_python}}}}


def test_the_demo_runs_through_the_runner_api(tmp_path: Path, collections_path: str) -> None:
    """examples/demo.yml with its own inventory, as `make demo` runs it, through ansible_runner.run."""
    inventory = yaml.safe_load((EXAMPLES_DIR / "inventory.yml").read_text())
    runner, arrivals = run_with_runner(
        tmp_path, "demo", EXAMPLES_DIR / "demo.yml", collections_path=collections_path, inventory=inventory,
    )
    stdout = runner.stdout.read() if runner.stdout else ""
    assert (runner.status, runner.rc) == ("successful", 0), stdout
    (backup,) = task_results(arrivals, "Run a 3 s backup with async 60 and poll 15")
    assert backup["job"]["state"] == "succeeded"
    assert backup["stdout"] == "backup done"
    assert 3 <= backup["job"]["duration"] < 10
    (report,) = task_results(arrivals, "Wait up to 30 s for the report job")
    assert report["job"]["state"] == "succeeded"
    (slow,) = task_results(arrivals, "Run a job that outlives its 2 s limit (its timeout is the expected outcome)")
    assert (slow["job"]["state"], slow["job"]["reason"]) == ("timed_out", "async_limit")
    # Our display lines arrive as events, as AWX shows them: the line that names the started job.
    started = [
        event for _arrived, event in arrivals.events
        if re.search(r"\[localhost\] longrun: job \S+ started \(async 60 s\)", event.get("stdout") or "")
    ]
    assert started and {event["event"] for event in started} == {"verbose"}, stdout


def waited_job_playbook(out_dir: Path, *, loss: str, sleep: int) -> list:
    options: dict = {"on_controller_loss": loss, "grace": CANCEL_GRACE}
    if loss == "kill":
        options["controller_timeout"] = CANCEL_CONTROLLER_TIMEOUT
    return [{
        "name": "A run that AWX cancels mid-wait",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": WAITED_TASK,
            "longrun.jobs.run": {
                "ansible.builtin.shell": f"echo $$ > {out_dir}/job.pid; sleep {sleep}; echo finished > {out_dir}/finished",
                **options,
            },
            "async": 120,
            "poll": CANCEL_POLL,
        }],
    }]


def status_playbook(jid: str) -> list:
    return [{
        "name": "Read a job after the cancel",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": STATUS_TASK,
            "longrun.jobs.async_status": {"jid": jid, "wait": 30},
            "ignore_errors": True,
        }],
    }]


class CancelMidWait:
    """The runner's cancel_callback: True once the job runs and a window or more of the wait has passed."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self.job_seen_at: t.Optional[float] = None
        self.canceled_at: t.Optional[float] = None

    def __call__(self) -> bool:
        if self.canceled_at is not None:
            return True
        if self.job_seen_at is None:
            if self.pid_file.exists() and self.pid_file.read_text().strip():
                self.job_seen_at = time.monotonic()
            return False
        if time.monotonic() - self.job_seen_at < CANCEL_POLL + 1:
            return False
        self.canceled_at = time.monotonic()
        return True


def pids_running(pids: t.Iterable[int]) -> t.List[int]:
    running = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state not in ("Z", "X"):
            running.append(pid)
    return running


@pytest.mark.parametrize("loss", ["kill", "keep"])
def test_a_runner_cancel_mid_wait_leaves_the_documented_state(
    tmp_path: Path, collections_path: str, target_python: str, loss: str
) -> None:
    """Cancelling the runner SIGKILLs ansible-playbook's process group: with kill the job is killed once its
    lease expires (controller_lost), within poll + controller_timeout + grace; with keep it finishes."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    async_dir = tmp_path / "async"
    # keep: long enough to outlive by far what a lease would have allowed after the cancel.
    sleep = 30 if loss == "keep" else 300
    cancel = CancelMidWait(out_dir / "job.pid")
    runner, _arrivals = run_with_runner(
        tmp_path, "cancel", waited_job_playbook(out_dir, loss=loss, sleep=sleep), collections_path=collections_path,
        inventory=local_inventory(target_python), cancel_callback=cancel,
    )
    assert runner.status == "canceled", runner.stdout.read() if runner.stdout else ""
    assert cancel.canceled_at is not None
    (jid,) = [entry.name for entry in async_dir.iterdir() if re.match(r"\Aj[0-9]+\.[0-9]+\Z", entry.name)]
    job_pid = int((out_dir / "job.pid").read_text())
    if loss == "kill":
        bound = CANCEL_POLL + CANCEL_CONTROLLER_TIMEOUT + CANCEL_GRACE + CANCEL_SLACK
        while pids_running([job_pid]) and time.monotonic() - cancel.canceled_at < bound:
            time.sleep(0.1)
        ended_after = time.monotonic() - cancel.canceled_at
        assert not pids_running([job_pid]), f"the job still runs {ended_after:.1f} s after the cancel"
        assert ended_after >= CANCEL_CONTROLLER_TIMEOUT - 1, ended_after
        assert not (out_dir / "finished").exists()
    runner, arrivals = run_with_runner(
        tmp_path, "status", status_playbook(jid), collections_path=collections_path,
        inventory=local_inventory(target_python),
    )
    assert runner.status == "successful", runner.stdout.read() if runner.stdout else ""
    (status,) = task_results(arrivals, STATUS_TASK)
    job = status["job"]
    if loss == "kill":
        assert (job["state"], job["reason"]) == ("killed", "controller_lost"), job
        assert f"no controller waited on it for {CANCEL_CONTROLLER_TIMEOUT} s" in job["msg"]
    else:
        # The job ran to its end: the worker that ansible-playbook left behind did not collect it.
        assert job["state"] == "succeeded", job
        assert (out_dir / "finished").exists()
        assert time.monotonic() - t.cast(float, cancel.canceled_at) > CANCEL_POLL + CANCEL_CONTROLLER_TIMEOUT
