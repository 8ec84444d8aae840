"""The modules are docs only: the actions are the one way to run our plugins, with core's keep switch for debugging."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from playbook_run import RunPlaybook

KEPT_RE = re.compile(
    r"^<[^>]+> longrun: keep_remote_files is on: the agent and the request stay in (?P<dir>\S+); "
    r"to run the request again: (?P<command>.+)$",
    re.MULTILINE,
)


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
    assert "The 'longrun.jobs.job_wrapper' module has been removed." in output, run.report()
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
