"""Switching transparent mode on and off: the environment variable, the role's ansible.cfg, and what a task becomes.

``ansible-config dump --only-changed`` must show the transparent dir on the action plugin path
when the mode is on, by ``ANSIBLE_ACTION_PLUGINS`` or by the ``action_plugins`` line that the role
``longrun.jobs.transparent_mode`` writes, and nothing once the role has switched it off again.
With the mode off an async ``command:`` task is a stock job; with it on, a longrun job.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import textwrap
import typing as t
from pathlib import Path

import pytest
from playbook_run import RunPlaybook, tail

ROLE_PLAYBOOK = "longrun.jobs.transparent_mode"
CORE_DEFAULT_TEXT = "~/.ansible/plugins/action:/usr/share/ansible/plugins/action"
CORE_DEFAULT = [os.path.expanduser("~/.ansible/plugins/action"), "/usr/share/ansible/plugins/action"]
# The settings that would switch the mode on or off behind the test's back.
CLEARED_ENV = ("ANSIBLE_ACTION_PLUGINS", "ANSIBLE_CONFIG", "ANSIBLE_HOME")
RUN_TIMEOUT = 120

ASYNC_COMMAND_PLAYBOOK = """\
- name: An async command, as existing playbooks write it
  hosts: all
  gather_facts: false
  tasks:
    - name: Start the command in the background
      command: sleep 0.3
      async: 30
      poll: 0
      register: launched

    - name: Wait for it with a plain async_status loop
      async_status:
        jid: "{{ launched.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 40
      delay: 0.25

    - name: Keep both results
      copy:
        dest: "{{ out_dir }}/async_command.json"
        content: "{{ {'launched': launched, 'status': status} | to_json }}"
        mode: "0600"
      delegate_to: localhost
"""


class RunAnsible(t.Protocol):
    def __call__(self, tool: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        ...


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The current dir of the runs: a project whose ansible.cfg the role writes."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def run_ansible(ansible_playbook_bin: Path, collections_path: str, project: Path) -> RunAnsible:
    """Run a tool of the venv's ansible-core (ansible-config, ansible-playbook) in ``project``; fail on rc != 0."""

    def run(tool: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {key: value for key, value in os.environ.items() if key not in CLEARED_ENV}
        completed = subprocess.run(
            [str(ansible_playbook_bin.with_name(tool)), *args],
            cwd=project,
            env={
                **base,
                "ANSIBLE_COLLECTIONS_PATH": collections_path,
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_FORCE_COLOR": "0",
                # The role's playbook runs on the implicit localhost, with no inventory.
                "ANSIBLE_LOCALHOST_WARNING": "False",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
                **(env or {}),
            },
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        if completed.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed with rc {completed.returncode}\n"
                f"--- stdout ---\n{tail(completed.stdout)}\n--- stderr ---\n{tail(completed.stderr)}"
            )
        return completed

    return run


def action_plugin_path(dump: str) -> tuple[str, list[str]] | None:
    """(origin, paths) of DEFAULT_ACTION_PLUGIN_PATH in ``ansible-config dump --only-changed``, None when unchanged."""
    match = re.search(r"^DEFAULT_ACTION_PLUGIN_PATH\((?P<origin>[^)]*)\) = (?P<value>\[.*\])$", dump, re.MULTILINE)
    if match is None:
        return None
    # A Python list of strings, which is also JSON once its quotes are swapped (paths hold no quotes).
    return match["origin"], json.loads(match["value"].replace("'", '"'))


def printed_lines(stdout: str) -> list[str]:
    """The lines of the role's debug message, out of the default callback's JSON."""
    lines = []
    for line in stdout.splitlines():
        match = re.match(r'^\s+(".*"),?$', line)
        if match:
            lines.append(json.loads(match[1]))
    return lines


def recap_changed(stdout: str) -> int:
    match = re.search(r"^localhost\s+: ok=\d+\s+changed=(\d+)", stdout, re.MULTILINE)
    assert match, f"no recap for localhost in:\n{tail(stdout)}"
    return int(match[1])


def test_config_dump_shows_the_environment_variable(run_ansible: RunAnsible, transparent_dir: Path) -> None:
    assert action_plugin_path(run_ansible("ansible-config", "dump", "--only-changed").stdout) is None

    dump = run_ansible("ansible-config", "dump", "--only-changed", env={"ANSIBLE_ACTION_PLUGINS": str(transparent_dir)})

    assert action_plugin_path(dump.stdout) == ("env: ANSIBLE_ACTION_PLUGINS", [str(transparent_dir)])


def test_role_prints_the_lines_and_writes_nothing(
    run_ansible: RunAnsible, project: Path, transparent_dir: Path
) -> None:
    run = run_ansible("ansible-playbook", ROLE_PLAYBOOK)

    lines = printed_lines(run.stdout)
    expected_value = f"{transparent_dir}:{CORE_DEFAULT_TEXT}"
    assert f"action_plugins = {expected_value}" in lines, lines
    exports = [line for line in lines if line.startswith("export ANSIBLE_ACTION_PLUGINS=")]
    assert len(exports) == 1, lines
    assert recap_changed(run.stdout) == 0
    assert list(project.iterdir()) == []

    # The printed line, as a shell would take it, switches the mode on and keeps core's own dirs.
    value = shlex.split(exports[0])[1].split("=", 1)[1]
    assert value == expected_value
    dump = run_ansible("ansible-config", "dump", "--only-changed", env={"ANSIBLE_ACTION_PLUGINS": value})
    assert action_plugin_path(dump.stdout) == ("env: ANSIBLE_ACTION_PLUGINS", [str(transparent_dir), *CORE_DEFAULT])


def test_role_writes_a_new_ansible_cfg_and_removes_the_option(
    run_ansible: RunAnsible, project: Path, transparent_dir: Path
) -> None:
    config = project / "ansible.cfg"
    enable = (ROLE_PLAYBOOK, "-e", "transparent_mode_config_file=ansible.cfg")
    disable = (*enable, "-e", "transparent_mode_state=disabled")

    first = run_ansible("ansible-playbook", *enable)
    second = run_ansible("ansible-playbook", *enable)

    assert config.read_text() == f"[defaults]\naction_plugins = {transparent_dir}:{CORE_DEFAULT_TEXT}\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    assert recap_changed(first.stdout) > 0
    assert recap_changed(second.stdout) == 0, tail(second.stdout)
    dump = run_ansible("ansible-config", "dump", "--only-changed")
    assert action_plugin_path(dump.stdout) == (str(config), [str(transparent_dir), *CORE_DEFAULT])

    # The molecule scenario extensions/molecule/transparent_mode runs the switch-off twice.
    off = run_ansible("ansible-playbook", *disable)

    assert config.read_text() == "[defaults]\n"
    assert recap_changed(off.stdout) > 0
    assert action_plugin_path(run_ansible("ansible-config", "dump", "--only-changed").stdout) is None


def test_role_keeps_a_project_ansible_cfg(run_ansible: RunAnsible, project: Path, transparent_dir: Path) -> None:
    config = project / "ansible.cfg"
    mine = project / "my_action_plugins"
    original = textwrap.dedent(
        f"""\
        # The project's own settings.
        [defaults]
        forks = 3
        action_plugins = {mine}

        [ssh_connection]
        pipelining = True
        """
    )
    config.write_text(original)
    config.chmod(0o600)
    enable = (ROLE_PLAYBOOK, "-e", f"transparent_mode_config_file={config}")

    run_ansible("ansible-playbook", *enable)

    assert config.read_text() == original.replace(f"= {mine}", f"= {transparent_dir}:{mine}")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    dump = run_ansible("ansible-config", "dump", "--only-changed")
    assert action_plugin_path(dump.stdout) == (str(config), [str(transparent_dir), str(mine)])

    run_ansible("ansible-playbook", *enable, "-e", "transparent_mode_state=disabled")

    assert config.read_text() == original


# What switches the mode is the controller's configuration: one transport is enough here, and
# test_transparent_adhoc.py runs jobs over both.
@pytest.mark.parametrize("target", ["local"], indirect=True)
@pytest.mark.parametrize("mode", ["off", "on"])
def test_async_command_is_a_longrun_job_only_when_on(
    run_playbook: RunPlaybook, transparent_dir: Path, async_dir: Path, tmp_path: Path, mode: str
) -> None:
    playbook = tmp_path / "async_command.yml"
    playbook.write_text(ASYNC_COMMAND_PLAYBOOK)
    env = {"ANSIBLE_ACTION_PLUGINS": f"{transparent_dir}:{CORE_DEFAULT_TEXT}"} if mode == "on" else {}

    run = run_playbook(playbook, env=env)

    run.assert_ok()
    results = run.load("async_command.json")
    launched, status = results["launched"], results["status"]
    record = json.loads((async_dir / launched["ansible_job_id"]).read_text())
    assert status["finished"] and status["rc"] == 0 and not status.get("failed")
    if mode == "off":
        assert "job" not in launched and "job" not in status, results
        assert "_longrun" not in record, record
    else:
        assert launched["job"]["origin"] == "longrun", launched
        assert status["job"]["state"] == "succeeded", status
        assert record["_longrun"]["schema"] >= 1, record
        assert record["_longrun"]["state"] == "succeeded", record
