# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The typed protocol: every request and reply survives the wire, bad ones are refused with a clear message."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils import _protocol
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import (
    PROTOCOL_VERSION,
    VERSION_KEY,
    JobEntry,
    LaunchReply,
    LaunchRequest,
    ProtocolError,
    RoundReply,
    RoundRequest,
    StatusReply,
    StatusRequest,
    VersionMismatch,
)

LAUNCH = LaunchRequest(
    jid="j123456789012", async_dir="~/.ansible_async", timeout=30, grace=5, interpreter="/usr/bin/python3",
    payload="cHJpbnQoKQ==", style="new", args_data=None,
)
STATUS = StatusRequest(
    mode="kill", jids=["j1.2", "j3.4"], single=False, wait=10.5, return_when="any", signal="INT", grace=3,
    states=None, older_than=None, force=False, check_mode=True, remove_ended=False, keep_undecodable=True,
    async_dir="/async", ignored=2,
)
ROUND = RoundRequest(
    async_dir="/async", running=["j1.2"], queue=[(0, LAUNCH), (3, LAUNCH.replace(jid="j9"))], limit=2, wait=55.0,
    stop_on_failure=True, more_queued=True, forget=["j5.6"], keep_undecodable=False,
)
ENTRY = JobEntry(
    ansible_job_id="j1.2", results_file="/async/j1.2", finished=True, failed=False,
    job={"state": "succeeded", "duration": 1.5}, result={"rc": 0, "stdout": "done"}, age=None,
)


def through_the_wire(message: dict) -> dict:
    return json.loads(json.dumps(message))


@pytest.mark.parametrize("request_", [LAUNCH, STATUS, ROUND, StatusRequest(mode="list", async_dir="/a")],
                         ids=["launch", "status", "round", "list"])
def test_a_request_survives_the_wire(request_):
    message = through_the_wire(request_.to_wire())

    assert message[VERSION_KEY] == PROTOCOL_VERSION
    assert _protocol.request_from_wire(message) == request_


@pytest.mark.parametrize("request_, reply", [
    (LAUNCH, LaunchReply(ansible_job_id="j1.2", results_file="/async/j1.2", job={"state": "running"})),
    (LAUNCH, LaunchReply(failed=True, msg="cannot launch the job")),
    (STATUS, StatusReply(changed=True, jobs=[ENTRY], killed=["j1.2"], refused={"j3.4": "not ours"}, ignored=2)),
    (STATUS, StatusReply(jobs=[ENTRY.replace(result=None, age=12.0)], async_dir="/async")),
    (ROUND, RoundReply(launched=[(0, LaunchReply(ansible_job_id="j1.2")), (3, LaunchReply(failed=True, msg="no"))],
                       ended=[ENTRY], running=[], unlaunched=[5], changed=True)),
], ids=["launch", "launch-failed", "kill", "list", "round"])
def test_a_reply_survives_the_wire(request_, reply):
    message = through_the_wire(reply.to_wire())

    assert message[VERSION_KEY] == PROTOCOL_VERSION
    assert _protocol.decode_reply(request_, message) == reply


def test_a_failure_decodes_as_a_failed_reply_of_any_kind():
    for request_ in (LAUNCH, STATUS, ROUND):
        reply = _protocol.decode_reply(request_, _protocol.failure("it broke"))
        assert (reply.failed, reply.msg) == (True, "it broke")


def wire_with(request_: t.Any, **params: t.Any) -> dict:
    message = request_.to_wire()
    message["params"].update(params)
    return message


@pytest.mark.parametrize("message, words", [
    ("not a dict", "a request must be a JSON object, got str"),
    ({VERSION_KEY: PROTOCOL_VERSION, "op": "status"}, "the request's params must be an object, got null"),
    ({VERSION_KEY: PROTOCOL_VERSION, "op": "window", "params": {}}, "unknown request 'window'"),
    (wire_with(STATUS, jids=["../../etc/passwd"]), "the status request's jids[0]: jid '../../etc/passwd' is not a job id"),
    (wire_with(STATUS, jids="j1.2"), "the status request's jids must be a list, got str"),
    (wire_with(STATUS, mode="delete"), "the status request's mode must be one of status, kill, list, cleanup"),
    (wire_with(STATUS, wait="10"), "the status request's wait must be a number, got str"),
    (wire_with(STATUS, force="yes"), "the status request's force must be true or false, got str"),
    (wire_with(LAUNCH, jid="../j1"), "the launch request's jid: jid '../j1' is not a job id"),
    (wire_with(LAUNCH, timeout="30"), "the launch request's timeout must be an integer, got str"),
    (wire_with(STATUS, grace=-1), "the status request's grace must be 0 or a positive integer, got int"),
    (wire_with(LAUNCH, style="perl"), "the launch request's style must be one of new, old"),
    (wire_with(ROUND, queue=[[1]]), "the round request's queue[0] must be a [key, launch request] pair"),
    (wire_with(ROUND, queue=[[1, {"jid": "j1/2"}]]), "the round request's queue[0]'s launch request's jid: jid"),
    (wire_with(ROUND, forget=["j1.2", "x/y"]), "the round request's forget[1]: jid 'x/y' is not a job id"),
], ids=lambda value: str(value)[:30])
def test_a_malformed_request_is_refused_with_a_clear_message(message, words):
    with pytest.raises(ProtocolError) as raised:
        _protocol.request_from_wire(message)
    assert words in str(raised.value)


@pytest.mark.parametrize("version, shown", [(2, "2"), (3, "3"), (5, "5"), (None, "None")])
def test_a_request_of_another_version_is_refused(version, shown):
    message = STATUS.to_wire()
    if version is None:
        del message[VERSION_KEY]
        shown = "1"  # the controllers of version 1 sent none
    else:
        message[VERSION_KEY] = version

    with pytest.raises(VersionMismatch) as raised:
        _protocol.request_from_wire(message)
    assert f"protocol version {PROTOCOL_VERSION} but the request is version {shown}" in str(raised.value)
    assert "reinstall the longrun.jobs collection" in str(raised.value)


def test_a_reply_of_another_version_is_refused():
    message = dict(StatusReply(jobs=[ENTRY]).to_wire(), **{VERSION_KEY: 1})

    with pytest.raises(VersionMismatch, match=f"replied in protocol version 1, but this controller speaks version {PROTOCOL_VERSION}"):
        _protocol.decode_reply(STATUS, message)


def test_a_malformed_reply_is_refused_with_a_clear_message():
    message = StatusReply(jobs=[ENTRY]).to_wire()
    message["jobs"][0]["finished"] = "yes"

    with pytest.raises(ProtocolError, match=r"the StatusReply's jobs\[0\]'s finished must be true or false, got str"):
        _protocol.decode_reply(STATUS, message)


def test_holds_undecodable_text_finds_lone_surrogates_in_keys_values_and_entries():
    assert _protocol.holds_undecodable_text({"a": ["ok", "bad \udcff"]})
    assert _protocol.holds_undecodable_text({"bad \udcff": 1})
    assert _protocol.holds_undecodable_text(ENTRY.replace(result={"stdout": "\udcff"}))
    assert not _protocol.holds_undecodable_text(ENTRY)
