"""Hardening of launching and waiting with run (issue 11): the task timeout, module_defaults,
modules whose action plugin picks a backend, and a refused result that keeps its job."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from playbook_run import RunPlaybook

PLAYBOOK_LIBRARY = Path(__file__).resolve().parent / "playbooks" / "library"
# Long enough to outlive every cut wait below, short enough for the test to wait for it.
JOB_SECONDS = 7
TASK_TIMEOUT = 4


def assert_still_running_with_its_id(result: dict, period: int) -> None:
    """A wait cut by the task timeout: failed, with the job id, the record and how to wait for it."""
    assert result["failed"] is True, result
    assert result["finished"] is False, result
    assert result["ansible_job_id"].startswith("j"), result
    assert result["results_file"].endswith(result["ansible_job_id"]), result
    assert result["timedout"]["period"] == period, result
    assert "still running" in result["msg"] and "longrun.jobs.async_status" in result["msg"], result["msg"]
    assert result["job"]["state"] == "running", result


@pytest.mark.parametrize("source", ["keyword", "config"])
def test_task_timeout_keeps_the_job_id(run_playbook: RunPlaybook, source: str) -> None:
    extra_vars = {"job_seconds": JOB_SECONDS, "task_timeout": TASK_TIMEOUT}
    if source == "keyword":
        run = run_playbook("runact_task_timeout.yml", extra_vars=extra_vars)
    else:
        run = run_playbook(
            "runact_task_timeout_config.yml", extra_vars=extra_vars, env={"ANSIBLE_TASK_TIMEOUT": str(TASK_TIMEOUT)}
        )
    run.assert_ok()
    data = run.load("task_timeout.json")
    cut_run = data["cut_run"]
    assert_still_running_with_its_id(cut_run, TASK_TIMEOUT)
    assert cut_run["changed"] is True
    # The job was waited for to its end afterwards, as the message says.
    waited = data["waited"]
    assert waited["ansible_job_id"] == cut_run["ansible_job_id"]
    assert waited["job"]["state"] == "succeeded", waited
    assert waited["rc"] == 0
    if source == "config":
        return
    cut_wait = data["cut_wait"]
    assert_still_running_with_its_id(cut_wait, 2)
    assert cut_wait["ansible_job_id"] == cut_run["ansible_job_id"]
    cut_parallel = data["cut_parallel"]
    assert cut_parallel["failed"] is True
    assert cut_parallel["timedout"]["period"] == TASK_TIMEOUT
    assert "still running" in cut_parallel["msg"], cut_parallel["msg"]
    by_name = {entry["name"]: entry for entry in cut_parallel["results"]}
    for name in ("first", "second"):
        assert by_name[name]["state"] == "running", by_name[name]
        assert by_name[name]["ansible_job_id"].startswith("j")
    assert by_name["never started"]["state"] == "not_started"
    waited = data["parallel_waited"]
    states = {entry["ansible_job_id"]: entry["state"] for entry in waited["jobs"]}
    assert states == {by_name[name]["ansible_job_id"]: "succeeded" for name in ("first", "second")}, waited


def test_task_timeout_in_a_hanging_remote_command_keeps_the_job_id(
    run_playbook: RunPlaybook, tmp_path: Path, target_python: str
) -> None:
    # Core's alarm fires inside our wait when a remote command outlasts the margin before the task timeout:
    # the agent's first command (the launch) passes, every later one (the waits) hangs for 10 s.
    marker = tmp_path / "launched"
    slow_python = tmp_path / "slow-python"
    slow_python.write_text(
        f'#!/bin/sh\nif [ "$1" = -I ]; then if [ -e {marker} ]; then sleep 10; else : > {marker}; fi; fi\n'
        f'exec {target_python} "$@"\n'
    )
    slow_python.chmod(0o755)
    run = run_playbook(
        "runact_task_timeout_alarm.yml",
        extra_vars={
            "job_seconds": JOB_SECONDS, "task_timeout": TASK_TIMEOUT, "slow_python": str(slow_python),
        },
    )
    run.assert_ok()
    data = run.load("task_timeout.json")
    cut_run = data["cut_run"]
    assert cut_run["failed"] is True and cut_run["finished"] is False, cut_run
    assert cut_run["ansible_job_id"].startswith("j"), cut_run
    assert cut_run["timedout"]["period"] == TASK_TIMEOUT, cut_run
    assert "still running" in cut_run["msg"], cut_run["msg"]
    assert data["waited"]["job"]["state"] == "succeeded", data["waited"]


def write_group_collection(root: Path) -> Path:
    """A collection with an action group holding one module, for group/... module_defaults."""
    collection = root / "ansible_collections" / "runact" / "defaults"
    (collection / "meta").mkdir(parents=True)
    (collection / "plugins" / "modules").mkdir(parents=True)
    (collection / "meta" / "runtime.yml").write_text(
        "---\nrequires_ansible: '>=2.18.0'\naction_groups:\n  echo:\n    - echo_args\n"
    )
    shutil.copyfile(PLAYBOOK_LIBRARY / "runact_echo_args.py", collection / "plugins" / "modules" / "echo_args.py")
    return root


def test_module_defaults_apply_to_the_wrapped_module(
    run_playbook: RunPlaybook, tmp_path: Path, collections_path: str
) -> None:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    extra_root = write_group_collection(tmp_path / "collections")
    run = run_playbook(
        "runact_module_defaults.yml",
        extra_vars={"work_dir": str(work_dir)},
        env={"ANSIBLE_COLLECTIONS_PATH": f"{extra_root}{os.pathsep}{collections_path}"},
    )
    run.assert_ok()
    data = run.load("module_defaults.json")
    for name in ("command_job", "shell_job", "command_sync", "parallel"):
        assert data[name] == str(work_dir), (name, data[name])
    # As core: the group's defaults, then the module's own, then the task's arguments.
    assert data["group_job"] == data["group_plain"]
    assert data["group_job"]["msg"] == "from the group"
    assert data["group_job"]["extra"] == "from the module"
    assert data["group_job"]["name"] == "explicit"
    assert data["explicit_job"]["msg"] == "explicit"


def test_backend_picking_modules_run_their_backend(run_playbook: RunPlaybook) -> None:
    run = run_playbook("runact_backend_modules.yml")
    run.assert_ok()
    data = run.load("backend_modules.json")
    # package and service drop `use` and run the module it names, with the other arguments, as core does.
    assert data["package_job"]["echoed"] == data["package_plain"]["echoed"]
    assert data["package_job"]["echoed"]["name"] == "some-package"
    assert data["package_job"]["job"]["state"] == "succeeded"
    assert data["package_var_job"]["echoed"]["name"] == "other-package"
    assert data["service_job"]["echoed"] == data["service_plain"]["echoed"]
    assert data["service_job"]["echoed"]["name"] == "some-service"
    parallel = data["package_parallel"]["results"][0]
    assert parallel["state"] == "succeeded", parallel
    assert parallel["result"]["echoed"]["name"] == "parallel-package"
    # yum is a redirect to dnf: the job runs the dnf module as the plain task does (which fails here, without dnf).
    yum_job, yum_plain = data["yum_job"], data["yum_plain"]
    assert "unknown module" not in yum_job["msg"], yum_job["msg"]
    assert yum_job["failed"] is yum_plain["failed"]
    # The module's own message, at top level or after the job's sentence.
    assert yum_plain["msg"] in yum_job["msg"], (yum_job, yum_plain)
    assert yum_job["job"]["state"] in ("failed", "succeeded"), yum_job


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_a_refused_result_keeps_its_job_and_record(run_playbook: RunPlaybook, async_dir: Path) -> None:
    run = run_playbook("runact_binary_output.yml")
    run.assert_ok()
    refused = run.load("binary_output.json")["refused"]
    assert refused["failed"] is True
    assert "MODULE_STRICT_UTF8_RESPONSE" in refused["msg"], refused["msg"]
    assert refused["changed"] is True
    jid = refused["ansible_job_id"]
    assert jid.startswith("j")
    assert Path(refused["results_file"]).exists()
    # The result was not lost: with the check off, the job's output comes back.
    run = run_playbook(
        "runact_binary_read.yml", extra_vars={"jid": jid}, env={"ANSIBLE_MODULE_STRICT_UTF8_RESPONSE": "false"}
    )
    run.assert_ok()
    again = run.load("binary_read.json")
    assert again["job"]["state"] == "succeeded"
    assert again["stdout"].encode("utf-8", "surrogateescape") == "café ".encode() + b"\xff\xfe end"
    # An empty async dir once the result was delivered is not promised by async_status: only the record is checked.
    assert json.loads(Path(refused["results_file"]).read_text(errors="surrogateescape"))


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_a_refused_run_parallel_result_names_its_job_and_keeps_its_record(run_playbook: RunPlaybook) -> None:
    run = run_playbook("runact_binary_output.yml")
    run.assert_ok()
    refused = run.load("binary_output.json")["refused_parallel"]
    assert refused["failed"] is True
    assert "MODULE_STRICT_UTF8_RESPONSE" in refused["msg"], refused["msg"]
    named = re.search(r"the result of job (j\d+\.\d+) holds output that is not valid UTF-8", refused["msg"])
    assert named, refused["msg"]
    # The last window kept the record whose result the controller refused: it can still be read.
    run = run_playbook(
        "runact_binary_read.yml", extra_vars={"jid": named.group(1)}, env={"ANSIBLE_MODULE_STRICT_UTF8_RESPONSE": "false"}
    )
    run.assert_ok()
    again = run.load("binary_read.json")
    assert again["job"]["state"] == "succeeded"
    assert again["stdout"].encode("utf-8", "surrogateescape") == "café ".encode() + b"\xff\xfe end"


def test_poll_task_prints_the_job_id_right_after_the_launch(run_playbook: RunPlaybook) -> None:
    """An interrupted run leaves its job running: the job id is printed before the first wait window."""
    run = run_playbook("runact_jid_printed.yml")
    run.assert_ok()
    result = run.load("jid_printed.json")
    assert result["job"]["state"] == "succeeded", result
    jid = result["ansible_job_id"]
    started = run.stdout.find(f"longrun: job {jid} started (async 30 s)")
    assert started != -1, run.report()
    assert f"longrun.jobs.async_status jid={jid}" in run.stdout
    # Before the progress lines of the wait, which come once per window while the job runs.
    progress = run.stdout.find(f"longrun: job {jid} is running")
    assert progress != -1, run.report()
    assert started < progress, run.report()
