"""Issue 11 hardening of async_status, run_parallel, the roles and the display: real playbook runs."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from playbook_run import RunPlaybook

JSON_CALLBACK_ENV = {
    "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).resolve().parent / "status_callbacks"),
    "ANSIBLE_STDOUT_CALLBACK": "json_stdout",
}
PROGRESS_RE = re.compile(r"\[target\] longrun: job \S+ is running, running for \d+ s \(waited \d+ s\)")


def test_progress_stays_off_stdout_with_a_json_callback(run_playbook: RunPlaybook) -> None:
    run = run_playbook("status_progress.yml", env=JSON_CALLBACK_ENV)
    run.assert_ok()
    # The whole of stdout is the callback's one JSON document.
    document = json.loads(run.stdout)
    assert [entry["status"] for entry in document["results"]] == ["ok"]
    assert document["stats"]["target"]["failures"] == 0
    # The progress lines were still shown, away from the machine-readable output.
    assert PROGRESS_RE.search(run.stderr), run.report()


def test_progress_is_shown_with_the_default_callback(run_playbook: RunPlaybook) -> None:
    run = run_playbook("status_progress.yml")
    run.assert_ok()
    assert PROGRESS_RE.search(run.stdout), run.report()


def test_cleanup_of_jobs_fails_on_missing_ones_as_with_jid(run_playbook: RunPlaybook) -> None:
    run = run_playbook("status_cleanup.yml")
    run.assert_ok()
    data = run.load("cleanup.json")
    by_jid = data["jid_missing"]
    assert by_jid["failed"] is True
    with_missing = data["with_missing"]
    assert with_missing["failed"] is True
    assert with_missing["not_found"] == ["j999999.1"]
    assert "j999999.1" in with_missing["msg"]
    assert "not found" in with_missing["msg"]
    # The job that was there is still removed.
    assert len(with_missing["removed"]) == 1


def test_check_mode_cleanup_erases_nothing_and_says_so(run_playbook: RunPlaybook) -> None:
    run = run_playbook("status_cleanup.yml")
    run.assert_ok()
    data = run.load("cleanup.json")
    dry = data["dry_one"]
    assert data["record_kept"] is True
    assert "erased" not in dry
    assert dry["changed"] is True
    assert dry.get("failed") is not True
    assert f"the record of job {dry['ansible_job_id']} would be removed" in dry["msg"]


def test_batch_rc_is_the_modules_own_rc(run_playbook: RunPlaybook) -> None:
    run = run_playbook("status_rc.yml")
    run.assert_ok()
    data = run.load("rc.json")
    waited = data["waited"]
    no_rc, rc_3 = waited["jobs"]
    # ansible.builtin.file returns no rc: its process exit code (1) is not passed off as one.
    assert no_rc["state"] == "failed"
    assert no_rc["rc"] is None
    assert no_rc["exit_code"] == 1
    assert rc_3["rc"] == 3
    assert rc_3["exit_code"] == 1
    assert "rc=1" not in waited["msg"]
    assert f"{rc_3['ansible_job_id']}: rc=3" in waited["msg"]
    assert f"{no_rc['ansible_job_id']}: file (/nonexistent/longrun-status-test) is absent" in waited["msg"]
    windowed = data["windowed"]
    by_name = {entry["name"]: entry for entry in windowed["results"]}
    assert by_name["no-rc"]["rc"] is None
    assert by_name["no-rc"]["exit_code"] == 1
    assert by_name["rc-3"]["rc"] == 3
    header, *rows = windowed["msg"].splitlines()[1:]
    rc_column = slice(header.index("RC"), header.index("DURATION"))
    cells = {row.split()[0]: row[rc_column].strip() for row in rows}
    assert cells == {"no-rc": "", "rc-3": "3"}, windowed["msg"]


@pytest.mark.parametrize("verbosity", ["0", "1"], ids=["default", "v"])
def test_no_log_hides_every_result(run_playbook: RunPlaybook, verbosity: str) -> None:
    secret = f"SECRET{secrets.token_hex(8)}"
    run = run_playbook("status_no_log.yml", extra_vars={"secret": secret}, env={"ANSIBLE_VERBOSITY": verbosity})
    run.assert_ok()
    data = run.load("no_log.json")
    assert data["role_failed"] is True
    assert data["parallel_results"] == ["succeeded", "failed"]
    assert secret not in run.stdout, run.report()
    assert secret not in run.stderr, run.report()
    assert "censored" in run.stdout or verbosity == "0"
