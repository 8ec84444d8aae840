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


def parse_utc(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def test_progress_and_output_arrive_as_runner_events_while_the_job_runs(
    tmp_path: Path, collections_path: str, target_python: str
) -> None:
    private = tmp_path / "runner"
    (private / "project").mkdir(parents=True)
    (private / "inventory").mkdir()
    (private / "project" / "progress.yml").write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    hostvars = {"ansible_connection": "local", "ansible_python_interpreter": target_python}
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": hostvars}}}))
    arrivals = Arrivals()

    runner = ansible_runner.run(
        private_data_dir=str(private),
        playbook="progress.yml",
        envvars={
            "ANSIBLE_COLLECTIONS_PATH": collections_path,
            "ANSIBLE_ASYNC_DIR": str(tmp_path / "async"),
            # The ansible-playbook of the venv that runs the tests.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        event_handler=arrivals,
        quiet=True,
        timeout=300,
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
