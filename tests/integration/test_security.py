"""Security: job ids and paths never reach outside the async dir; records stay private to their owner."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import pids_with_cmdline
from playbook_run import RunPlaybook

LINK_JID = "j99999.1"
# Each leaves the async dir or is not a job id at all.
BAD_JIDS = ["../bait/x", "/etc/passwd", "j1/../../bait/x", "..", ".", "j1.2.3", "", "j1 ", "~root"]


def one_line_refusal(result: dict, jid: str) -> str:
    message = result["msg"]
    assert result["failed"] is True, (jid, result)
    assert "\n" not in message, (jid, message)
    assert "Traceback" not in message and "MODULE FAILURE" not in message, (jid, message)
    return message


def test_no_job_id_reaches_outside_the_async_dir(run_playbook: RunPlaybook, async_dir: Path, marker: int) -> None:
    bait_dir = async_dir.parent / "bait"
    run = run_playbook(
        "security_paths.yml",
        extra_vars={"bait_dir": str(bait_dir), "marker": marker, "bad_jids": BAD_JIDS, "link_jid": LINK_JID},
    )
    run.assert_ok()
    data = run.load("security_paths.json")
    bait_record = Path(data["bait"]["results_file"])
    assert bait_record.parent == bait_dir

    for key in ("status_jid", "wait_jobs", "kill_jid", "kill_jobs", "cleanup_jid", "cleanup_jobs"):
        results = data[key]["results"]
        assert [item["item"] for item in results] == BAD_JIDS, key
        for item in results:
            message = one_line_refusal(item, item["item"])
            assert "job id" in message, (key, message)

    # A record that is a symlink is refused as unreadable, never followed.
    link_status = data["link_status"]
    one_line_refusal(link_status, LINK_JID)
    assert link_status["job"]["state"] == "unreadable"
    assert str(async_dir / LINK_JID) in link_status["msg"]
    assert "symbolic link" in link_status["msg"]
    assert link_status["stdout"] == "" and "cmd" not in link_status
    # Nothing to kill behind an unreadable record; the bait below proves no signal went through the link.
    assert data["link_kill"]["killed"] == []
    assert data["link_kill"]["job"]["state"] == "unreadable"
    listed = {entry["ansible_job_id"]: entry for entry in data["link_list"]["jobs"]}
    assert listed[LINK_JID]["state"] == "unreadable"
    # Cleanup removes the link itself and nothing it points at.
    assert data["link_cleanup"].get("failed") is not True, data["link_cleanup"]
    assert not os.path.lexists(async_dir / LINK_JID)

    # The bait survived all of it: its record, its process and its running state.
    assert data["bait_status"]["job"]["state"] == "running"
    assert data["bait_status"]["finished"] is False
    # The playbook's last task kills the bait through its own dir.
    assert pids_with_cmdline(f"sleep {marker}") == []
