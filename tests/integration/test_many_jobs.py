"""Acceptance of issue 3: many jobs in one async_status call, kill, list and cleanup."""

from __future__ import annotations

import datetime
from pathlib import Path

from helpers import pids_with_cmdline
from playbook_run import RunPlaybook

# The call must return this soon after the last job's recorded end.
RETURN_AFTER_LAST_END = 1.5


def timestamp(text: str) -> float:
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def test_one_call_waits_for_twenty_jobs(run_playbook: RunPlaybook) -> None:
    run = run_playbook("batch_wait.yml")
    run.assert_ok()
    data = run.load("batch.json")
    waited = data["waited"]
    summary = waited["summary"]
    assert summary["total"] == 20
    assert (summary["succeeded"], summary["failed"], summary["timed_out"]) == (16, 3, 1)
    assert summary["running"] == 0
    assert waited["finished"] is True
    assert waited["failed"] is True
    assert len(waited["jobs"]) == 20
    # Input order is kept: the over-limit job was launched last.
    assert waited["jobs"][-1]["state"] == "timed_out"
    assert [job["rc"] for job in waited["jobs"][16:19]] == [3, 3, 3]
    assert {job["ansible_job_id"] for job in waited["failed_jobs"]} == {
        job["ansible_job_id"] for job in waited["jobs"][16:]
    }
    assert waited["jobs"][0]["result"]["stdout"] == "ok"
    last_end = max(timestamp(job["ended_at"]) for job in waited["jobs"])
    assert 0 <= data["returned_at"] - last_end < RETURN_AFTER_LAST_END
    timed_out_jid = waited["jobs"][-1]["ansible_job_id"]
    assert waited["msg"].startswith("20 jobs: 16 succeeded, 3 failed (")
    assert f"1 timed_out ({timed_out_jid} after 3 s)" in waited["msg"]
    assert "rc=3" in waited["msg"]
    listed = data["listed"]
    assert listed["summary"]["failed"] == 3
    assert listed["summary"]["timed_out"] == 1
    assert listed["summary"]["total"] == 4


def test_return_when_any_returns_at_the_first_end(run_playbook: RunPlaybook) -> None:
    run = run_playbook("batch_any.yml")
    run.assert_ok()
    data = run.load("any.json")
    states = [job["state"] for job in data["first"]["jobs"]]
    assert states == ["succeeded", "running", "running"]
    assert data["first"]["finished"] is False
    assert data["first"]["failed"] is False
    first = data["first"]["jobs"][0]
    print("launch loop took", data["wait_started_at"] - timestamp(first["started_at"]))
    # About 2 s after the launch, and at once after the first end (not at the next poll tick).
    assert 2.0 <= data["returned_at"] - timestamp(first["started_at"])
    assert data["returned_at"] - max(timestamp(first["ended_at"]), data["wait_started_at"]) < 1.0
    killed = data["killed"]
    assert [job["state"] for job in killed["jobs"]] == ["succeeded", "killed", "killed"]
    assert sorted(killed["killed"]) == sorted(job["ansible_job_id"] for job in killed["jobs"][1:])
    assert killed["failed"] is False


def test_kill_ends_term_ignoring_and_setsid_processes(run_playbook: RunPlaybook, marker: int) -> None:
    run = run_playbook("kill.yml", extra_vars={"marker": marker})
    run.assert_ok()
    data = run.load("kill.json")
    killed = data["killed"]
    assert killed["failed"] is False
    assert killed["changed"] is True
    assert killed["job"]["state"] == "killed"
    assert killed["job"]["reason"] == "kill_requested"
    assert killed["job"]["signal"] == "SIGTERM"
    assert "then SIGKILL after 2 s grace" in killed["job"]["msg"]
    assert killed["jobs"][0]["state"] == "killed"
    assert pids_with_cmdline(f"sleep {marker}") == []
    # grace 2 s plus the SIGKILL and the record: well within 4.5 s of the kill request.
    started = timestamp(killed["job"]["started_at"])
    ended = timestamp(killed["job"]["ended_at"])
    assert ended - started < 1 + 4.5 + 1
    again = data["again"]
    assert again["failed"] is False
    assert again["changed"] is False
    assert again["killed"] == []
    assert again["job"]["state"] == "killed"
    assert data["status"]["job"]["state"] == "killed"
    assert data["status"]["failed"] is True


def test_cleanup_by_age_never_removes_a_running_record(
    run_playbook: RunPlaybook, async_dir: Path, marker: int
) -> None:
    run = run_playbook("cleanup.yml", extra_vars={"marker": marker})
    run.assert_ok()
    data = run.load("cleanup.json")
    long_jid = data["long"]["ansible_job_id"]
    assert data["before"]["summary"]["total"] == 4
    assert data["dry"]["changed"] is True
    assert len(data["dry"]["removed"]) == 3
    cleaned = data["cleaned"]
    assert sorted(cleaned["removed"]) == sorted(data["dry"]["removed"])
    assert long_jid not in cleaned["removed"]
    assert cleaned["spared"] == [long_jid]
    assert [job["ansible_job_id"] for job in data["after"]["jobs"]] == [long_jid]
    assert data["after"]["jobs"][0]["state"] == "running"
    forced = data["forced"]
    assert forced["killed"] == [long_jid]
    assert forced["removed"] == [long_jid]
    assert data["final"]["jobs"] == []
    assert sorted(path.name for path in async_dir.iterdir()) == []
    assert pids_with_cmdline(f"sleep {marker}") == []


def test_parallel_role_fails_fast_and_honours_its_overall_limit(
    run_playbook: RunPlaybook, async_dir: Path, marker: int
) -> None:
    run = run_playbook("parallel.yml", extra_vars={"marker": marker})
    run.assert_ok()
    data = run.load("parallel.json")
    bad, slow, later = data["fail_fast"]
    assert (bad["name"], bad["state"], bad["rc"]) == ("bad", "failed", 3)
    assert slow["state"] == "killed"
    assert "bad ended failed and fail_fast is set" in slow["msg"]
    assert later["state"] == "not_started"
    assert later["ansible_job_id"] is None
    table = data["fail_fast_msg"].splitlines()
    assert table[0] == "3 of 3 jobs did not succeed:"
    assert table[1].split() == ["NAME", "STATE", "RC", "DURATION", "MESSAGE"]
    assert table[2].split()[:3] == ["bad", "failed", "3"]
    (endless,) = data["limited"]
    assert endless["state"] == "killed"
    assert endless["msg"].startswith("the overall limit of 2 s (parallel_wait, or wait) passed")
    assert endless["duration"] < 2 + 1 + 3
    assert pids_with_cmdline(f"sleep {marker}") == []
    # Every record of the role's jobs was removed.
    assert list(async_dir.iterdir()) == []
