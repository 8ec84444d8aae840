"""Issue 15 item 1: named jobs. A re-run attaches to the job of its name instead of launching it again,
two racing runs launch one job, on_existing says what else to do, and async_status takes names.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers import wait_until
from playbook_run import RunPlaybook, StartPlaybook


def records(async_dir: Path) -> list[str]:
    return sorted(path.name for path in async_dir.iterdir() if path.name.startswith("j"))


def marker_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_rerun_after_the_controller_was_killed_attaches_to_the_job(
    start_playbook: StartPlaybook, run_playbook: RunPlaybook, async_dir: Path, tmp_path: Path
):
    """ACCEPTANCE: SIGKILL of ansible-playbook 3 s into a named 20 s job; the re-run returns that job's result."""
    marker_file = tmp_path / "marker"
    extra_vars = {"job_name": "backup-db", "marker_file": str(marker_file), "seconds": 20, "poll": 2}
    first = start_playbook("named_run.yml", extra_vars=extra_vars)
    wait_until(lambda: marker_lines(marker_file), timeout=60, message="the named job to start")
    launched = time.monotonic()
    time.sleep(max(0.0, 3 - (time.monotonic() - first.started)))
    first.kill_group()
    assert time.monotonic() - launched < 15, "the job must still run when the controller is killed"
    (jid,) = records(async_dir)
    record = json.loads((async_dir / jid).read_text())
    assert record["_longrun"]["name"] == "backup-db"
    assert record["finished"] is False

    again = run_playbook("named_run.yml", extra_vars=extra_vars, timeout=120)

    again.assert_ok()
    result = again.load("named.json")
    assert result["ansible_job_id"] == jid
    assert result["attached"] is True
    assert result["job"]["name"] == "backup-db"
    assert result["job"]["state"] == "succeeded"
    assert result["stdout"] == "done"
    assert marker_lines(marker_file) == ["run"]
    assert f"attached to job {jid} named backup-db" in again.stdout
    # The wait that saw the end collected the job: the name is free again; its record stays for any other
    # controller waiting on it, until the next launch of the name.
    assert json.loads((async_dir / ".names" / "backup-db").read_text()) == {"jid": jid, "collected": True}
    assert records(async_dir) == [jid]


def test_two_racing_runs_launch_one_job(
    start_playbook: StartPlaybook, run_playbook: RunPlaybook, async_dir: Path, tmp_path: Path
):
    """ACCEPTANCE: two ansible-playbook processes launch the same name at once; exactly one job runs."""
    marker_file = tmp_path / "marker"
    common = {"job_name": "only-once", "marker_file": str(marker_file), "seconds": 6, "poll": 1}
    runs = [start_playbook("named_run.yml", extra_vars=dict(common, dump=f"run{index}")) for index in (1, 2)]

    finished = [run.finish(timeout=180) for run in runs]

    for run in finished:
        run.assert_ok()
    results = [finished[0].load("run1.json"), finished[1].load("run2.json")]
    assert marker_lines(marker_file) == ["run"]
    assert results[0]["ansible_job_id"] == results[1]["ansible_job_id"]
    assert sorted(bool(result.get("attached")) for result in results) == [False, True]
    for result in results:
        assert result["job"]["state"] == "succeeded", result
        assert result["stdout"] == "done"

    # A run after the job's result was delivered runs it again: that is the idempotency of names.
    third = run_playbook("named_run.yml", extra_vars=dict(common, dump="run3"), timeout=120)

    third.assert_ok()
    result = third.load("run3.json")
    assert result["ansible_job_id"] != results[0]["ansible_job_id"]
    assert "attached" not in result
    assert marker_lines(marker_file) == ["run", "run"]
    assert records(async_dir) == [result["ansible_job_id"]]


def test_on_existing_and_async_status_by_name(run_playbook: RunPlaybook, async_dir: Path, tmp_path: Path, marker):
    marker_file = tmp_path / "marker"

    run = run_playbook("named_existing.yml", extra_vars={"marker_file": str(marker_file), "marker": marker})

    run.assert_ok()
    out = run.load("existing.json")
    first_jid = out["first"]["ansible_job_id"]
    assert out["first"]["job"]["name"] == "long-job"
    skipped = out["skipped"]
    assert skipped["skipped"] is True
    assert skipped["changed"] is False
    assert skipped["ansible_job_id"] == first_jid
    assert f"job {first_jid} named 'long-job' is running" in skipped["msg"]
    refused = out["refused"]
    assert refused["failed"] is True
    assert f"a job named 'long-job' exists (job {first_jid} is running) and on_existing is fail" in refused["msg"]
    assert "Traceback" not in refused["msg"]
    assert out["attached"]["ansible_job_id"] == first_jid
    assert out["attached"]["attached"] is True
    assert out["attached"]["changed"] is False
    assert out["by_name"]["ansible_job_id"] == first_jid
    assert out["by_name"]["job"]["state"] == "running"
    assert out["by_name"]["job"]["name"] == "long-job"
    restarted = out["restarted"]["ansible_job_id"]
    assert restarted != first_jid
    assert out["first_after"]["job"]["state"] == "not_found"
    # Three launches were asked for before the restart; one ran.
    assert marker_lines(marker_file)[:2] == ["run", "restarted"]
    waited = out["waited"]
    assert [job["state"] for job in waited["jobs"]] == ["succeeded", "succeeded"]
    assert [job["result"]["stdout"] for job in waited["jobs"]] == ["1", "2"]
    assert all(job["ansible_job_id"].startswith("j") for job in waited["jobs"])
    unknown = out["unknown"]
    assert unknown["failed"] is True
    assert "could not find a job named 'no-such-job'" in unknown["msg"]
    killed = out["killed"]
    assert killed["killed"] == [restarted]
    assert killed["job"]["state"] == "killed"
    assert out["cleaned"]["erased"].endswith(restarted)
    parallel = out["parallel"]["results"]
    assert parallel[0]["name"] == "the label"
    assert parallel[0]["ansible_job_id"] == out["par_first"]["ansible_job_id"]
    assert parallel[0]["result"]["stdout"] == "first"
    assert marker_lines(marker_file)[2:] == ["parallel"]
    # async_status reads leave records, as stock's do; mode=cleanup removed long-job's; the job of par-job
    # was collected by run_parallel and keeps its record until the next launch of its name.
    assert records(async_dir) == sorted(
        [job["ansible_job_id"] for job in waited["jobs"]] + [out["par_first"]["ansible_job_id"]]
    )
    # mode=cleanup removed the name of the job it removed.
    assert sorted(path.name for path in (async_dir / ".names").iterdir() if not path.name.startswith(".")) == [
        "par-job", "quick-1", "quick-2"
    ]


def test_bad_names_get_one_clear_sentence(run_playbook: RunPlaybook, async_dir: Path):
    run = run_playbook("named_bad.yml")

    run.assert_ok()
    out = run.load("bad.json")
    assert "job name '../escape' is not valid" in out["bad_run"]["msg"]
    assert "name makes the task a named job, which needs async" in out["no_async"]["msg"]
    assert "on_existing says what to do when a job of the same name exists: it needs name" in out["no_name"]["msg"]
    assert "jid '../escape' is not a job id" in out["bad_status"]["msg"]
    assert "nor a job name" in out["bad_status"]["msg"]
    assert "job_name: job name 'a/b' is not valid" in out["bad_parallel"]["msg"]
    for result in out.values():
        assert result["failed"] is True
        assert "Traceback" not in result["msg"]
    assert records(async_dir) == []
