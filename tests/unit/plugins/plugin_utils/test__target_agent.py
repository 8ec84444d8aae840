# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import json
import subprocess
import sys
import typing as t
import zlib

import pytest

from ansible_collections.longrun.jobs.plugins.plugin_utils import _target_agent
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import _parse_reply, agent_program

PROTOCOL = {"_longrun_protocol": 1}


def _status_request(async_dir: str, jid: str = "j1.2", wait: float = 0) -> dict:
    return {"op": "status", "params": {"jid": jid, "mode": "status", "wait": wait, "_async_dir": async_dir}}


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
    assert reply.pop("_longrun_protocol") == 1
    return reply


@pytest.fixture(params=["argv", "pipelined"])
def run_agent(request):
    return _run_with_argv if request.param == "argv" else _run_pipelined


def test_agent_program_is_compilable_python():
    source = zlib.decompress(base64.b64decode(agent_program(), validate=True)).decode("utf-8")

    compile(source, "<agent>", "exec")
    assert "_agent import main" in source


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
    reply = run_agent({"op": "reboot", "params": {}})

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
    launch = {
        "op": "launch",
        "params": {
            "jid": "j77",
            "async_dir": async_dir,
            "timeout": 10,
            "grace": 1,
            "interpreter": sys.executable,
            "payload": base64.b64encode(program.encode("utf-8")).decode("ascii"),
            "style": "new",
        },
    }

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
    reply = _run_with_argv({"op": "launch", "params": {"jid": "j1", "async_dir": str(tmp_path), "timeout": 0, "grace": 1}})

    assert reply == {"failed": True, "msg": "the async limit must be 1 or more seconds, got 0"}


@pytest.mark.parametrize(
    "stdout, expected",
    [
        ('{"a": 1, "_longrun_protocol": 1}\n', {"a": 1, "_longrun_protocol": 1}),
        (
            'Welcome to host\n{"not": "ours"}\n{"a": 2, "_longrun_protocol": 1}\n\n',
            {"a": 2, "_longrun_protocol": 1},
        ),
        (
            '{"a": 1, "_longrun_protocol": 1}\n{"a": 2, "_longrun_protocol": 1}\n',
            {"a": 2, "_longrun_protocol": 1},
        ),
        ('{"a": 3, "_longrun_protocol": 1}\n{"later": "noise"}\nbye\n', {"a": 3, "_longrun_protocol": 1}),
        ('  {"a": 4, "_longrun_protocol": 1}  \r\n', {"a": 4, "_longrun_protocol": 1}),
        ('{"a": 5, "_longrun_protocol": 1}\n{broken json\n', {"a": 5, "_longrun_protocol": 1}),
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
