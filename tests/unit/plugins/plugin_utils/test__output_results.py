# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry, StatusReply
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_results import output_result


def read(text: str, *, offset: int = 0, truncated: bool = False, complete: bool = False) -> dict:
    size = offset + len(text.encode())
    return {"text": text, "offset": offset, "next_offset": size, "size": size, "skipped": 0,
            "truncated": truncated, "complete": complete, "source": "file"}


def entry(jid: str, state: str = "running", **output) -> JobEntry:
    return JobEntry(ansible_job_id=jid, finished=state != "running", job={"state": state}, output=output or None)


def test_one_job_has_its_text_and_offsets_at_the_top_level():
    reply = StatusReply(jobs=[entry("j1.1", stdout=read("a\n", offset=10, truncated=True), stderr=read(""))])
    result = output_result(reply, single=True)
    assert result["stdout"] == "a\n" and result["stderr"] == ""
    assert result["next_since"] == {"stdout": 12, "stderr": 0}
    assert result["truncated"] is True and result["complete"] is False
    assert "text" not in result["output"]["stdout"]
    assert result["changed"] is False and "failed" not in result
    assert result["msg"] == "read 2 bytes of output from 1 job; more follows: read on from next_since"


def test_many_jobs_give_next_since_by_job():
    reply = StatusReply(jobs=[
        entry("j1.1", "succeeded", stdout=read("x", complete=True), stderr=read("", complete=True)),
        entry("j2.2", stdout=read("yy"), stderr=read("")),
    ])
    result = output_result(reply, single=False)
    assert [job["stdout"] for job in result["jobs"]] == ["x", "yy"]
    assert result["next_since"] == {"j1.1": {"stdout": 1, "stderr": 0}, "j2.2": {"stdout": 2, "stderr": 0}}
    assert result["complete"] is False and result["failed"] is False


def test_a_hidden_job_has_no_text_sizes_or_offsets():
    reply = StatusReply(jobs=[entry("j1.1", hidden=True, msg="the output of job j1.1 is hidden by no_log")])
    result = output_result(reply, single=True)
    assert result["hidden"] is True
    assert result["msg"] == "the output of job j1.1 is hidden by no_log"
    assert not {"stdout", "stderr", "output", "next_since"} & set(result)


def test_a_job_that_is_not_there_fails():
    missing = JobEntry(ansible_job_id="j9.9", finished=True, failed=True,
                       job={"state": "not_found", "msg": "could not find job j9.9"})
    result = output_result(StatusReply(jobs=[missing, entry("j1.1", stdout=read("a"), stderr=read(""))]), single=False)
    assert result["failed"] is True
    assert "could not find job j9.9" in result["msg"]
    assert list(result["next_since"]) == ["j1.1"]
