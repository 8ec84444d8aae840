# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import time
import typing as t
import zlib
from pathlib import Path

import pytest

from ansible.errors import AnsibleActionFail
from ansible.plugins.loader import become_loader

from ansible_collections.longrun.jobs.plugins.action.async_status import ActionModule as AsyncStatusAction
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import (
    PROTOCOL_VERSION,
    VERSION_KEY,
    LaunchRequest,
    RoundRequest,
    StatusReply,
    StatusRequest,
)
from ansible_collections.longrun.jobs.plugins.plugin_utils import _target_agent
from ansible_collections.longrun.jobs.plugins.plugin_utils._agent_bundle import agent_program
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, _parse_reply


def _wire(request: t.Any, **params: t.Any) -> dict:
    """The request as it goes on the wire, with some params changed (bypassing the controller's checks)."""
    message = request.to_wire()
    message["params"].update(params)
    return message


def _status_request(async_dir: str, jid: str = "j1.2", wait: float = 0) -> dict:
    return StatusRequest(jids=[jid], single=True, wait=wait, async_dir=async_dir).to_wire()


def _run_agent(boot: str, *args: str, stdin: t.Optional[str] = None) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", boot, *args], input=stdin, capture_output=True, text=True, timeout=30, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return _reply(completed.stdout)


def _run_with_argv(request: dict) -> dict:
    encoded = base64.b64encode(json.dumps(request).encode("utf-8")).decode("ascii")
    return _run_agent(_target_agent._BOOT_ARGV, agent_program(), encoded)


def _run_pipelined(request: dict) -> dict:
    return _run_agent(_target_agent._BOOT_STDIN, stdin=agent_program() + "\n" + json.dumps(request))


def _reply(stdout: str) -> dict:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    reply = json.loads(lines[0])
    assert reply.pop(VERSION_KEY) == PROTOCOL_VERSION
    return reply


@pytest.fixture(params=["argv", "pipelined"])
def run_agent(request):
    return _run_with_argv if request.param == "argv" else _run_pipelined


def test_agent_program_is_compilable_python():
    source = zlib.decompress(base64.b64decode(agent_program(), validate=True)).decode("utf-8")

    compile(source, "<agent>", "exec")
    assert "_agent.main import main" in source


def test_agent_program_is_built_once():
    assert agent_program() is agent_program()


def test_status_of_an_unknown_job_is_not_found(run_agent, tmp_path):
    reply = run_agent(_status_request(str(tmp_path)))

    assert reply["changed"] is False
    assert reply["removed"] == []
    [entry] = reply["jobs"]
    assert entry["ansible_job_id"] == "j1.2"
    assert entry["finished"] is True
    assert entry["failed"] is True
    assert entry["job"]["state"] == "not_found"
    assert str(tmp_path) in entry["job"]["msg"]


def test_unknown_operation_fails_clearly(run_agent, tmp_path):
    reply = run_agent({VERSION_KEY: PROTOCOL_VERSION, "op": "reboot", "params": {}})

    assert reply == {"failed": True, "msg": "unknown request 'reboot'"}


@pytest.mark.parametrize("jid", ["../x", "j1/../../etc", ""])
def test_bad_jid_fails_before_touching_files(run_agent, tmp_path, jid):
    reply = run_agent(_status_request(str(tmp_path), jid=jid))

    assert reply["failed"] is True
    assert "jobs" not in reply
    assert ("is not a job id" if jid else "non-empty job id") in reply["msg"]
    assert list(tmp_path.iterdir()) == []


def test_undecodable_request_fails_clearly():
    completed = subprocess.run(
        [sys.executable, "-c", _target_agent._BOOT_STDIN],
        input=agent_program() + "\nthis is not json",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    reply = _reply(completed.stdout)
    assert reply["failed"] is True
    assert reply["msg"].startswith("the request could not be decoded")


def test_launch_and_wait_for_the_end(tmp_path, janitor):
    async_dir = str(tmp_path / "async")
    program = "print('{\"changed\": false, \"ok\": 1}')\n"
    launch = _launch_request(async_dir, program, jid="j77", timeout=10, grace=1).to_wire()

    launched = _run_pipelined(launch)
    janitor.track_supervisor(launched["job"]["pid"])

    assert launched.get("failed") is not True, launched
    jid = launched["ansible_job_id"]
    assert jid.startswith("j77.")
    assert launched["results_file"] == f"{async_dir}/{jid}"
    assert launched["job"]["state"] == "running"
    assert launched["job"]["timeout"] == 10

    [entry] = _run_with_argv(_status_request(async_dir, jid=jid, wait=10))["jobs"]
    assert entry["finished"] is True, entry
    assert entry["failed"] is False
    assert entry["job"]["state"] == "succeeded"
    assert entry["result"]["ok"] == 1
    assert entry["result"]["changed"] is False

    janitor.wait_until_gone(launched["job"]["pid"])


def test_launch_with_a_bad_limit_fails_clearly(tmp_path):
    launch = _launch_request(str(tmp_path), "print('{}')").replace(jid="j1", timeout=0, grace=1)
    reply = _run_with_argv(launch.to_wire())

    assert reply == {"failed": True, "msg": "the async limit must be 1 to 3153600000 seconds (100 years), got 0"}


def test_launch_with_bad_locks_fails_clearly(tmp_path):
    launch = _launch_request(str(tmp_path), "print('{}')").replace(jid="j1", locks=["db"], lock_timeout=-1)
    assert _run_with_argv(launch.to_wire()) == {
        "failed": True, "msg": "lock_timeout must be 0 to 3153600000 seconds, got -1",
    }
    launch = launch.replace(locks=["../db"], lock_timeout=None)
    reply = _run_with_argv(launch.to_wire())
    assert reply["failed"] is True
    assert reply["msg"].startswith("cannot launch the job: lock name '../db' is not valid")
    assert not (tmp_path / ".locks").exists()


@pytest.mark.parametrize(
    "stdout, expected",
    [
        ('{"a": 1, "_longrun_protocol": 4}\n', {"a": 1, "_longrun_protocol": 4}),
        (
            'Welcome to host\n{"not": "ours"}\n{"a": 2, "_longrun_protocol": 4}\n\n',
            {"a": 2, "_longrun_protocol": 4},
        ),
        (
            '{"a": 1, "_longrun_protocol": 4}\n{"a": 2, "_longrun_protocol": 4}\n',
            {"a": 2, "_longrun_protocol": 4},
        ),
        ('{"a": 3, "_longrun_protocol": 4}\n{"later": "noise"}\nbye\n', {"a": 3, "_longrun_protocol": 4}),
        ('  {"a": 4, "_longrun_protocol": 4}  \r\n', {"a": 4, "_longrun_protocol": 4}),
        ('{"a": 5, "_longrun_protocol": 4}\n{broken json\n', {"a": 5, "_longrun_protocol": 4}),
        ('["_longrun_protocol"]\n', None),
        ('{"failed": true}\n', None),
        ("Traceback (most recent call last):\n  ...\n", None),
        ("", None),
    ],
    ids=[
        "plain",
        "noise-before",
        "last-wins",
        "noise-after",
        "whitespace",
        "broken-after",
        "list",
        "no-marker",
        "traceback",
        "empty",
    ],
)
def test_parse_reply(stdout, expected):
    assert _parse_reply(stdout) == expected


@pytest.mark.parametrize("version", [2, 3, 5, None])
def test_a_reply_of_another_protocol_version_is_refused(version):
    with pytest.raises(AnsibleActionFail) as raised:
        _parse_reply(json.dumps({"changed": False, "jobs": [], VERSION_KEY: version}) + "\n")

    assert f"replied in protocol version {version}, but this controller speaks version {PROTOCOL_VERSION}" in str(raised.value)
    assert "reinstall the longrun.jobs collection" in str(raised.value)


def test_the_agent_runs_without_site_packages(tmp_path):
    """-S: neither ansible nor the installed collection is importable, only the bundle."""
    request = StatusRequest(mode="list", async_dir=str(tmp_path)).to_wire()
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _target_agent._BOOT_STDIN],
        input=agent_program() + "\n" + json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert StatusReply.from_fields(_reply(completed.stdout)) == StatusReply(changed=False, jobs=[], async_dir=str(tmp_path))


# Standard library modules whose import would add milliseconds to every launch (see _agent.py).
HEAVY_IMPORTS = ("typing", "dataclasses", "inspect", "subprocess", "tempfile", "shutil", "ctypes")


def test_a_launch_imports_none_of_the_heavy_standard_modules(tmp_path, janitor):
    request = _launch_request(str(tmp_path / "async"), "print('{}')").to_wire()
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", _target_agent._BOOT_STDIN],
        input=agent_program() + "\n" + json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    launched = _reply(completed.stdout)
    janitor.track_supervisor(launched["job"]["pid"])

    assert launched["job"]["state"] == "running", launched
    # -X importtime lists every module the launcher imported, one per line: "import time: self | cumulative | name".
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if line.startswith("import time:")}
    assert "ansible_collections.longrun.jobs.plugins.module_utils._job.handshake" in imported
    assert sorted(imported.intersection(HEAVY_IMPORTS)) == []


def test_a_status_request_imports_neither_the_supervisor_nor_the_round_code(tmp_path):
    request = _status_request(str(tmp_path), jid="j1.2")
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", _target_agent._BOOT_STDIN],
        input=agent_program() + "\n" + json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert _reply(completed.stdout)["jobs"][0]["job"]["state"] == "not_found"
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if line.startswith("import time:")}
    assert "ansible_collections.longrun.jobs.plugins.module_utils._agent.status_request" in imported
    assert [name for name in imported if "supervis" in name or name.endswith("._agent.rounds")] == []


def test_kill_list_and_cleanup_through_the_agent(run_agent, tmp_path, janitor):
    async_dir = str(tmp_path / "async")
    launched = _run_pipelined(_launch_request(async_dir, "import time; time.sleep(60)").to_wire())
    janitor.track_supervisor(launched["job"]["pid"])
    jid = launched["ansible_job_id"]

    listed = run_agent(StatusRequest(mode="list", async_dir=async_dir).to_wire())
    assert [(entry["ansible_job_id"], entry["job"]["state"]) for entry in listed["jobs"]] == [(jid, "running")]

    killed = run_agent(StatusRequest(mode="kill", jids=[jid], grace=0, wait=10, async_dir=async_dir).to_wire())
    assert killed["killed"] == [jid]
    assert killed["jobs"][0]["job"]["state"] == "killed"
    janitor.wait_until_gone(launched["job"]["pid"])

    cleaned = run_agent(StatusRequest(mode="cleanup", older_than=0.0, async_dir=async_dir).to_wire())
    assert cleaned["removed"] == [jid]
    assert list(Path(async_dir).iterdir()) == []


def test_a_round_through_the_agent(tmp_path, janitor):
    async_dir = str(tmp_path / "async")
    round_request = RoundRequest(
        async_dir=async_dir, queue=[(0, _launch_request(async_dir, "print('{\"w\": 1}')"))], wait=10
    )

    reply = _run_pipelined(round_request.to_wire())

    [[key, launched]] = reply["launched"]
    assert key == 0
    janitor.track_supervisor(launched["job"]["pid"])
    [ended] = reply["ended"]
    assert ended["ansible_job_id"] == launched["ansible_job_id"]
    assert ended["result"] == {"w": 1}


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            _wire(StatusRequest(mode="status", async_dir="/x")),
            "mode=status needs job ids",
        ),
        (_wire(StatusRequest(async_dir="/x"), jids="j1"), "the status request's jids must be a list, got str"),
        (_wire(RoundRequest(async_dir="/x"), queue=[{"key": 1}]), "queue[0] must be a [key, launch request] pair"),
        (_wire(RoundRequest(async_dir="/x"), running=["../x"]), "is not a job id"),
        (_wire(RoundRequest(async_dir="")), "the async dir is empty"),
        (dict(_wire(StatusRequest(async_dir="/x", jids=["j1"])), **{VERSION_KEY: 1}),
         f"the longrun agent speaks protocol version {PROTOCOL_VERSION} but the request is version 1"),
    ],
    ids=["status-without-jids", "jids-string", "round-queue", "round-running", "round-async-dir", "old-version"],
)
def test_refused_requests_come_back_as_one_clear_message(request_, message):
    reply = _run_with_argv(request_)

    assert reply["failed"] is True
    assert message in reply["msg"]
    assert "internal error" not in reply["msg"]


def _launch_request(
    async_dir: str, source: str, *, jid: str = "j88", timeout: int = 30, grace: int = 0
) -> LaunchRequest:
    return LaunchRequest(
        jid=jid,
        async_dir=async_dir,
        timeout=timeout,
        grace=grace,
        interpreter=sys.executable,
        payload=base64.b64encode(source.encode("utf-8")).decode("ascii"),
        style="new",
    )


# Routing of requests by a real action plugin with a real local connection.

@pytest.fixture
def agent(make_action, task_vars):
    action = make_action(AsyncStatusAction, "longrun.jobs.async_status", {})
    return TargetAgent(action, task_vars)


class PaddedListRequest(StatusRequest):
    """A list request made too large for the command line by a param that the target ignores."""

    __slots__ = ()

    def to_wire(self) -> dict:
        message = super().to_wire()
        message["params"]["padding"] = "x" * _target_agent.MAX_COMMAND_BYTES
        return message


def _list_request(async_dir: str, *, padding: int = 0) -> StatusRequest:
    kind = PaddedListRequest if padding else StatusRequest
    return kind(mode="list", async_dir=async_dir)


def test_without_pipelining_a_connection_that_can_pipeline_uses_stdin(agent, remote_commands, async_dir):
    assert agent.request(_list_request(async_dir)) == StatusReply(changed=False, jobs=[], async_dir=async_dir)

    [call] = remote_commands.calls
    assert call["in_data"].decode().startswith(agent_program() + "\n")
    assert call["cmd"].endswith(shlex.quote(_target_agent._BOOT_STDIN))


@pytest.mark.parametrize("pipelining", [True], ids=["pipelined"], indirect=True)
def test_enabled_pipelining_uses_stdin_even_with_become(agent, remote_commands, play_context, async_dir, pipelining):
    play_context.become = True

    agent.request(_list_request(async_dir))

    [call] = remote_commands.calls
    assert call["in_data"] is not None


@pytest.mark.parametrize("become_user", ["connection user", "root"])
def test_measuring_a_command_leaves_the_become_plugin_unarmed(agent, connection, play_context, become_user):
    """Building a become command sets the plugin's success marker, which the connection then waits for.

    Core runs a command for the connection user itself without become, so a marker armed by the
    measure made the next command wait for a success line that never came (the local connection).
    """
    me = pwd.getpwuid(os.geteuid()).pw_name
    user = me if become_user == "connection user" else "root"
    play_context.become = True
    become = become_loader.get("ansible.builtin.su")
    become.set_options(direct={"become_user": user})
    connection.set_become_plugin(become)
    before = dict(vars(become))

    command = agent._as_run("echo hi")  # pylint: disable=protected-access

    assert vars(become) == before
    if user == me:
        assert "su " not in command
    else:
        assert command.startswith("su ")


@pytest.fixture(params=["become", "no-pipelining-connection"])
def stdin_refused(request, play_context, connection) -> str:
    """Ways a request may not go over stdin when pipelining is off."""
    if request.param == "become":
        play_context.become = True
    else:
        connection.has_pipelining = False
    return request.param


def test_small_requests_go_on_the_command_line_when_stdin_is_refused(agent, remote_commands, async_dir, stdin_refused):
    reply = agent.request(_list_request(async_dir))

    assert reply.jobs == []
    [call] = remote_commands.calls
    assert call["in_data"] is None
    assert _target_agent._BOOT_ARGV in shlex.split(call["cmd"])


def test_large_requests_go_through_a_file_whose_dir_goes_in_the_same_command(
    agent, remote_commands, connection, remote_tmp, async_dir
):
    connection.has_pipelining = False

    reply = agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))

    assert reply == StatusReply(changed=False, jobs=[], async_dir=async_dir)
    make_tmp, run = remote_commands.calls
    assert "mkdir" in make_tmp["cmd"]
    assert run["in_data"] is None
    assert "/longrun_request" in run["cmd"]
    assert "; rc=$?; rm -rf " in run["cmd"]
    assert run["cmd"].endswith("; exit $rc")
    assert connection._shell.tmpdir is None
    assert os.listdir(remote_tmp) == []


def test_large_requests_with_become_take_three_operations(agent, remote_commands, play_context, remote_tmp, async_dir):
    # A become to root or to the connection user can read and remove the connection user's files.
    play_context.become = True

    reply = agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))

    assert reply.jobs == []
    make_dir, run = remote_commands.calls
    assert make_dir["sudoable"] is False
    assert "umask 77 && mkdir -p " in make_dir["cmd"]
    assert "/longrun_request" in run["cmd"]
    assert "; rc=$?; rm -rf " in run["cmd"]
    assert os.listdir(remote_tmp) == []


def test_large_requests_with_unprivileged_become_and_no_handover_take_cores_way(
    agent, remote_commands, connection, play_context, remote_tmp, async_dir, monkeypatch, tmp_path
):
    play_context.become = True
    # Core decides who is unprivileged from the become plugin; only its answer matters here.
    monkeypatch.setattr(agent.action, "_is_become_unprivileged", lambda: True)
    monkeypatch.setattr(agent.action, "_get_remote_user", lambda: "not-an-admin")
    monkeypatch.setattr(agent.action, "get_become_option", lambda name: pwd.getpwuid(os.geteuid()).pw_name)
    real_option = agent.action.get_shell_option
    # No system tmp dir to hand the request over in: core's tmp dir and permission fixes take over.
    monkeypatch.setattr(
        agent.action,
        "get_shell_option",
        lambda name, default=None: (
            [str(tmp_path / "missing")] if name == "system_tmpdirs" else real_option(name, default)
        ),
    )
    monkeypatch.setattr(agent.action, "_fixup_perms2", lambda paths, **kwargs: None)

    reply = agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))

    assert reply.jobs == []
    _handover, _make_tmp, run = remote_commands.calls
    assert "rm -rf" not in run["cmd"]
    tmpdir = connection._shell.tmpdir
    assert os.listdir(tmpdir) == ["longrun_request"]
    agent.action.cleanup()
    assert os.listdir(remote_tmp) == []


@pytest.fixture
def admin_becomes_unprivileged(agent, play_context, tmp_path, monkeypatch):
    """An admin connection becoming an unprivileged user; system_tmpdirs point at a scratch dir."""
    play_context.become = True
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    real_option = agent.action.get_shell_option

    def shell_option(name, default=None):
        if name == "system_tmpdirs":
            return [str(tmp_path / "missing"), str(system_tmp)]
        return real_option(name, default=default)

    monkeypatch.setattr(agent.action, "get_shell_option", shell_option)
    monkeypatch.setattr(agent.action, "_is_become_unprivileged", lambda: True)
    monkeypatch.setattr(agent.action, "_get_remote_user", lambda: "root")
    monkeypatch.setattr(agent.action, "_get_admin_users", lambda: ["root"])
    # chown to the user running the tests always succeeds, root or not.
    monkeypatch.setattr(agent.action, "get_become_option", lambda name: pwd.getpwuid(os.geteuid()).pw_name)
    return system_tmp


def spy_on_transfers(agent, monkeypatch, inspect) -> list:
    """(path, inspect(path)) of each transfer, taken just before the transfer writes the file."""
    seen = []
    real_transfer = agent.action._transfer_data

    def spy(path, data):
        seen.append((path, inspect(path)))
        return real_transfer(path, data)

    monkeypatch.setattr(agent.action, "_transfer_data", spy)
    return seen


def test_large_requests_from_an_admin_to_an_unprivileged_user_take_three_operations(
    agent, remote_commands, connection, admin_becomes_unprivileged, async_dir, monkeypatch
):
    # The file is there before the transfer, private, so the transfer only fills it in.
    transfers = spy_on_transfers(
        agent, monkeypatch, lambda path: os.path.exists(path) and stat.S_IMODE(os.stat(path).st_mode)
    )

    reply = agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))

    assert reply.jobs == []
    make_dir, run = remote_commands.calls
    assert make_dir["sudoable"] is False
    assert "chown " in make_dir["cmd"]
    [(path, mode)] = transfers
    assert os.path.dirname(os.path.dirname(path)) == str(admin_becomes_unprivileged)
    assert mode == 0o600
    assert shlex.quote(path) in run["cmd"]
    assert "; rc=$?; rm -rf " in run["cmd"]
    assert os.listdir(admin_becomes_unprivileged) == []
    assert connection._shell.tmpdir is None


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian package acl)")
def test_large_requests_from_a_non_admin_to_an_unprivileged_user_use_acls(
    agent, remote_commands, connection, admin_becomes_unprivileged, async_dir, monkeypatch
):
    monkeypatch.setattr(agent.action, "_get_remote_user", lambda: "not-an-admin")
    user = pwd.getpwuid(os.geteuid()).pw_name
    transfers = spy_on_transfers(
        agent, monkeypatch, lambda path: subprocess.run(["getfacl", "-cp", path], capture_output=True, text=True, check=True).stdout
    )

    reply = agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))

    assert reply.jobs == []
    make_dir, run = remote_commands.calls
    assert make_dir["sudoable"] is False
    assert "setfacl" in make_dir["cmd"] and "chown" not in make_dir["cmd"]
    [(_path, acl)] = transfers
    assert f"user:{user}:r--" in acl.splitlines()
    assert "other::---" in acl.splitlines()
    assert "; rc=$?; rm -rf " in run["cmd"]
    # The watcher that would remove the dir for an unprivileged become user has nothing left to do.
    assert wait_until_empty(admin_becomes_unprivileged)
    assert connection._shell.tmpdir is None


def wait_until_empty(directory, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while os.listdir(directory):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_handover_dir_that_cannot_be_made_falls_back_to_cores_way(
    agent, remote_commands, connection, admin_becomes_unprivileged, async_dir, monkeypatch
):
    monkeypatch.setattr(agent.action, "get_become_option", lambda name: "no-such-user-longrun")
    monkeypatch.setattr(agent.action, "_fixup_perms2", lambda paths, **kwargs: None)

    reply = agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))

    assert reply.jobs == []
    assert len(remote_commands.calls) == 3
    # The failed attempt left nothing behind.
    assert os.listdir(admin_becomes_unprivileged) == []
    agent.action.cleanup()


def test_a_private_dir_that_cannot_be_made_fails_with_advice(agent, remote_commands, connection, async_dir, monkeypatch):
    connection.has_pipelining = False
    monkeypatch.setattr(agent.action, "get_shell_option", lambda name, default=None: "/proc/no-such-dir")

    with pytest.raises(AnsibleActionFail, match="cannot create a temporary directory under /proc/no-such-dir"):
        agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))


def test_large_requests_use_an_existing_tmp_dir_and_keep_it(agent, remote_commands, connection, remote_tmp, async_dir):
    connection.has_pipelining = False
    tmpdir = agent.action._make_tmp_path()
    remote_commands.calls.clear()

    agent.request(_list_request(async_dir, padding=_target_agent.MAX_COMMAND_BYTES))

    [run] = remote_commands.calls
    assert shlex.quote(os.path.join(tmpdir, "longrun_request")) in run["cmd"]
    assert "rm -rf" not in run["cmd"]
    assert connection._shell.tmpdir == tmpdir
    assert os.path.isdir(tmpdir)
    agent.action.cleanup()
    assert os.listdir(remote_tmp) == []


def test_a_missing_interpreter_fails_with_advice(make_action, task_vars, async_dir):
    action = make_action(AsyncStatusAction, "longrun.jobs.async_status", {})
    agent = TargetAgent(action, task_vars, interpreter="/nonexistent/python3")

    with pytest.raises(AnsibleActionFail) as caught:
        agent.request(_list_request(async_dir))

    message = caught.value.message
    assert message.startswith(
        "the longrun agent did not answer on the target (rc=127) using the interpreter '/nonexistent/python3'"
    )
    assert message.endswith("check ansible_python_interpreter (Python 3.8 or later is needed)")


@pytest.mark.parametrize(
    "reply, refused",
    [
        ({"jobs": [{"result": {"stdout": "caf\u00e9 \U0001f600"}}]}, False),
        ({"jobs": [{"result": {"stdout": "ok \udcff end"}}]}, True),
        ({"jobs": [{"result": {"lines": ["a", "\udcfe"]}}]}, True),
        ({"jobs": [{"result": {"\udcff": 1}}]}, True),
    ],
)
def test_replies_with_invalid_utf8_are_refused_as_core_refuses_module_results(reply, refused, monkeypatch):
    monkeypatch.setenv("ANSIBLE_MODULE_STRICT_UTF8_RESPONSE", "true")
    if refused:
        with pytest.raises(AnsibleActionFail, match="not valid UTF-8.*MODULE_STRICT_UTF8_RESPONSE"):
            _target_agent._refuse_invalid_utf8(reply)
    else:
        _target_agent._refuse_invalid_utf8(reply)
    monkeypatch.setenv("ANSIBLE_MODULE_STRICT_UTF8_RESPONSE", "false")
    _target_agent._refuse_invalid_utf8(reply)


def test_a_reply_that_does_not_follow_the_protocol_is_refused_clearly(agent, monkeypatch, async_dir):
    reply = {"changed": False, "jobs": [{"ansible_job_id": "../x"}], VERSION_KEY: PROTOCOL_VERSION}
    monkeypatch.setattr(agent, "_send", lambda request: reply)

    with pytest.raises(AnsibleActionFail) as raised:
        agent.request(_list_request(async_dir))

    assert str(raised.value).startswith(
        "the longrun agent on the target sent a reply this controller cannot read: the StatusReply's jobs[0]'s "
        "ansible_job_id: jid '../x' is not a job id"
    )
