# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import io
import json
import os
import sys

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._agent import main as _agent
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import PROTOCOL_VERSION, VERSION_KEY, StatusRequest


def write_ended(async_dir: str, jid: str) -> None:
    _store.write_record(async_dir, _record.JobRecord(jid=jid, state=_record.SUCCEEDED, result={"rc": 0}))


def status_request(async_dir: str, jid: str) -> dict:
    return StatusRequest(jids=[jid], single=True, async_dir=async_dir, remove_ended=True).to_wire()


class DeadPipe(io.StringIO):
    """stdout after the connection dropped: nobody reads it any more."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def run_main(monkeypatch: pytest.MonkeyPatch, request: dict, stdout: io.StringIO) -> None:
    encoded = base64.b64encode(json.dumps(request).encode("utf-8")).decode("ascii")
    monkeypatch.setattr(sys, "argv", ["agent", encoded])
    monkeypatch.setattr(sys, "stdout", stdout)
    _agent.main()


def test_serve_lists_the_ended_jobs_instead_of_removing_them(async_dir):
    write_ended(async_dir, "j1.1")
    after_reply: list = []

    reply = _agent.serve(status_request(async_dir, "j1.1"), after_reply=after_reply)

    assert reply["removed"] == ["j1.1"]
    assert reply["jobs"][0]["result"] == {"rc": 0}
    assert after_reply == [(async_dir, "j1.1")]
    assert os.listdir(async_dir) == ["j1.1"]


def test_main_removes_the_files_once_the_reply_is_out(monkeypatch, async_dir):
    write_ended(async_dir, "j1.1")
    stdout = io.StringIO()

    run_main(monkeypatch, status_request(async_dir, "j1.1"), stdout)

    reply = json.loads(stdout.getvalue())
    assert reply["jobs"][0]["finished"] is True
    assert reply["removed"] == ["j1.1"]
    assert os.listdir(async_dir) == []


def test_main_keeps_the_record_when_the_reply_cannot_be_delivered(monkeypatch, async_dir):
    write_ended(async_dir, "j1.1")

    run_main(monkeypatch, status_request(async_dir, "j1.1"), DeadPipe())

    # The controller's retry after reconnecting still finds the job's true result.
    assert os.listdir(async_dir) == ["j1.1"]
    assert _store.read_record(async_dir, "j1.1").result == {"rc": 0}


def test_deliver_tells_whether_the_reply_went_out():
    assert _agent.deliver("{}\n", io.StringIO()) is True
    assert _agent.deliver("{}\n", DeadPipe()) is False


@pytest.mark.parametrize("version", [1, 2, 3, 5])
def test_main_refuses_a_request_of_another_protocol_version(monkeypatch, async_dir, version):
    write_ended(async_dir, "j1.1")
    stdout = io.StringIO()

    run_main(monkeypatch, dict(status_request(async_dir, "j1.1"), **{VERSION_KEY: version}), stdout)

    reply = json.loads(stdout.getvalue())
    assert reply == {
        "failed": True,
        "msg": (
            f"the longrun agent speaks protocol version {PROTOCOL_VERSION} but the request is version {version}: "
            "the controller and the agent it shipped disagree; reinstall the longrun.jobs collection on the "
            "controller, and do not reuse a kept agent program with another version of it"
        ),
        VERSION_KEY: PROTOCOL_VERSION,
    }
    # Nothing was served: the ended job's record stays.
    assert os.listdir(async_dir) == ["j1.1"]


def test_main_refuses_a_request_without_a_version_as_one_of_version_1(monkeypatch, async_dir):
    stdout = io.StringIO()
    message = status_request(async_dir, "j1.1")
    del message[VERSION_KEY]

    run_main(monkeypatch, message, stdout)

    assert "but the request is version 1" in json.loads(stdout.getvalue())["msg"]
