"""The modules are docs only: the actions are the one way to run our plugins, with core's keep switch for debugging."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playbook_run import RunPlaybook

KEPT_RE = re.compile(
    r"^<[^>]+> longrun: keep_remote_files is on: the agent and the request stay in (?P<dir>\S+); "
    r"to run the request again: (?P<command>.+)$",
    re.MULTILINE,
)
KEPT_BECOME_RE = re.compile(
    r"^<[^>]+> longrun: keep_remote_files is on: the agent and the request stay in (?P<dir>\S+); "
    r"to run the request again as (?P<user>\S+): (?P<command>.+)$",
    re.MULTILINE,
)


def shared_python() -> str:
    """A Python every user can run (pyenv's live under /root)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no system-wide python3 for the become user")


# Written at run time: ansible-lint's syntax check would refuse it in the playbooks dir, rightly.
TOMBSTONE_PLAYBOOK = """---
- name: A task that names the removed job_wrapper module
  hosts: target
  gather_facts: false
  tasks:
    - name: Call the internal supervisor module directly
      longrun.jobs.job_wrapper:
        jid: j1
        async_dir: "{{ async_dir }}"
        timeout: 10
        interpreter: /usr/bin/python3
        payload: ""
"""


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_a_task_naming_the_removed_job_wrapper_fails_with_the_tombstone(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    playbook = tmp_path / "job_wrapper.yml"
    playbook.write_text(TOMBSTONE_PLAYBOOK)

    run = run_playbook(playbook)

    assert run.rc != 0, run.report()
    output = " ".join((run.stdout + run.stderr).split())
    # Core words the removal itself differently across versions ("The '...' module has been removed." on
    # 2.19 and later, "... has been removed." on 2.18); the tombstone's own text is the same on all.
    assert "longrun.jobs.job_wrapper' module has been removed" in output or (
        "longrun.jobs.job_wrapper has been removed" in output
    ), run.report()
    assert "longrun.jobs.job_wrapper was the internal supervisor of longrun.jobs.run and is gone" in output, run.report()
    assert "launch jobs with longrun.jobs.run" in output, run.report()


def _keep_env(remote_tmp: Path, keep: bool) -> dict[str, str]:
    return {"ANSIBLE_KEEP_REMOTE_FILES": "1" if keep else "0", "ANSIBLE_VERBOSITY": "1", "ANSIBLE_REMOTE_TEMP": str(remote_tmp)}


def test_the_keep_switch_leaves_each_request_on_the_target_to_run_again(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    remote_tmp = tmp_path / "remote_tmp"
    remote_tmp.mkdir(mode=0o700)

    run = run_playbook("modules_keep.yml", env=_keep_env(remote_tmp, keep=True))

    run.assert_ok()
    kept = KEPT_RE.findall(run.stdout)
    # The launch, at least one wait of the run task, and the list.
    assert len(kept) >= 3, run.report()
    for directory, _command in kept:
        assert Path(directory).parent == remote_tmp
        assert sorted(path.name for path in Path(directory).iterdir()) == ["longrun_agent.py", "longrun_request.json"]
    assert sorted(remote_tmp.iterdir()) == sorted(Path(directory) for directory, _command in kept)
    requests = [json.loads((Path(directory) / "longrun_request.json").read_text()) for directory, _command in kept]
    assert requests[0]["op"] == "launch"
    assert requests[-1]["params"]["mode"] == "list"
    _directory, list_command = kept[-1]
    done = subprocess.run(["sh", "-c", list_command], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert "_longrun_protocol" in reply
    assert reply["jobs"] == []


def test_without_the_keep_switch_no_request_leaves_files(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    remote_tmp = tmp_path / "remote_tmp"
    remote_tmp.mkdir(mode=0o700)

    run = run_playbook("modules_keep.yml", env=_keep_env(remote_tmp, keep=False))

    run.assert_ok()
    assert KEPT_RE.findall(run.stdout) == []
    assert list(remote_tmp.iterdir()) == []


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_the_keep_switch_hands_the_files_to_an_unprivileged_become_user(
    run_playbook: RunPlaybook, tmp_path: Path, become_user: str
) -> None:
    remote_tmp = tmp_path / "remote_tmp"
    remote_tmp.mkdir(mode=0o700)
    python = shared_python()
    kept: list[tuple[str, str]] = []
    try:
        run = run_playbook(
            "modules_keep_become.yml",
            extra_vars={"job_user": become_user, "job_user_python": python},
            env={**_keep_env(remote_tmp, keep=True), "ANSIBLE_ASYNC_DIR": "~/.ansible_async", "ANSIBLE_PIPELINING": "0"},
        )
        kept = KEPT_BECOME_RE.findall(run.stdout)
        run.assert_ok()
        # The launch and at least one wait, each from files the become user could read.
        assert len(kept) >= 2, run.report()
        for directory, user, _command in kept:
            assert user == become_user
            assert sorted(path.name for path in Path(directory).iterdir()) == ["longrun_agent.py", "longrun_request.json"]
        _directory, _user, status_command = kept[-1]
        done = subprocess.run(
            ["su", "-s", "/bin/sh", become_user, "-c", status_command],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "_longrun_protocol" in json.loads(done.stdout)
    finally:
        # Kept on purpose by the switch, outside the test's dirs: a system tmp dir for the become user.
        for directory, _user, _command in kept:
            shutil.rmtree(directory, ignore_errors=True)
