"""Acceptance of the core: longrun.jobs.run and longrun.jobs.async_status over local and ssh."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import typing as t
import stat
from pathlib import Path

import pytest

from ansible.release import __version__ as ansible_version

from helpers import pids_with_cmdline, wait_until
from playbook_run import RunPlaybook

LOCAL_OPERATION_RE = re.compile(r"^<[^>]+> (?:EXEC|PUT|FETCH) .{0,100}", re.MULTILINE)
SSH_OPERATION_RE = re.compile(r"^<[^>]+> SSH: EXEC .{0,100}", re.MULTILINE)
# The stock poller needs about 16.7 s for this job; ours returns when it ends.
LONG_POLL_BOUND = 9.0
# ansible.builtin.command's own msg for a non-zero exit, as each core words it.
COMMAND_FAILURE_MSG = (
    "The command exited with a non-zero return code."
    if tuple(int(part) for part in ansible_version.split(".")[:2]) >= (2, 21)
    else "non-zero return code"
)


def job_files(async_dir: Path) -> list[str]:
    return sorted(path.name for path in async_dir.iterdir())


def test_long_poll_returns_when_the_job_ends(run_playbook: RunPlaybook, async_dir: Path) -> None:
    run = run_playbook("run_long_poll.yml")
    run.assert_ok()
    data = run.load("long_poll.json")
    result = data["result"]
    assert result["stdout"] == "backup done"
    assert result["rc"] == 0
    assert result["finished"] is True
    assert result["failed"] is False
    assert result["job"]["state"] == "succeeded"
    assert result["ansible_job_id"].startswith("j")
    assert 3.0 <= data["task_seconds"] < LONG_POLL_BOUND
    # Once a poll > 0 task has its result, the job's files are gone.
    assert job_files(async_dir) == []


def test_timeout_terminates_the_whole_tree(run_playbook: RunPlaybook, marker: int) -> None:
    run = run_playbook("run_timeout.yml", extra_vars={"marker": marker})
    run.assert_ok()
    result = run.load("timed_out.json")
    job = result["job"]
    assert job["state"] == "timed_out"
    assert job["reason"] == "async_limit"
    assert job["signal"] == "SIGTERM"
    assert result["failed"] is True
    assert result["msg"] == f"job {result['ansible_job_id']} timed out after 3 s (async limit) and was terminated with SIGTERM"
    # Enforced to the second: terminated at the limit, not on a 5 s tick.
    assert 3.0 <= job["duration"] < 4.5
    assert pids_with_cmdline(f"sleep {marker}") == []


def test_killed_supervisor_is_reported_lost(run_playbook: RunPlaybook, marker: int) -> None:
    run = run_playbook("run_lost.yml", extra_vars={"marker": marker})
    run.assert_ok()
    data = run.load("lost.json")
    status = data["status"]
    assert status["job"]["state"] == "lost"
    assert status["job"]["reason"] == "supervisor_gone"
    assert status["failed"] is True
    assert status["finished"] is True
    assert "was lost" in status["msg"]
    # The end is persisted, so stock async_status stops reporting it as running.
    # Stock async_status says finished as 1 up to ansible-core 2.18 and as true from 2.19 on.
    assert data["stock_status"]["finished"] in (True, 1)
    assert data["stock_status"]["failed"] is True


def test_stock_and_longrun_read_each_other(run_playbook: RunPlaybook, async_dir: Path) -> None:
    run = run_playbook("compat.yml")
    run.assert_ok()
    data = run.load("compat.json")
    stock_reads_ours = data["stock_reads_ours"]
    assert stock_reads_ours["finished"] in (True, 1)
    assert stock_reads_ours["stdout"] == "hello from longrun"
    assert stock_reads_ours["rc"] == 0
    ours_reads_stock = data["ours_reads_stock"]
    assert ours_reads_stock["job"]["state"] == "succeeded"
    assert ours_reads_stock["job"]["origin"] == "stock"
    assert ours_reads_stock["stdout"] == "hello from stock"
    assert ours_reads_stock["finished"] is True
    erased = [item["erased"] for item in data["cleanup"]["results"]]
    assert erased == [str(async_dir / data["ours"]["ansible_job_id"]), str(async_dir / data["stock"]["ansible_job_id"])]
    assert job_files(async_dir) == []


def test_records_are_private_and_jids_cannot_escape(run_playbook: RunPlaybook, async_dir: Path) -> None:
    outside = async_dir.parent / "outside"
    outside.write_text("must survive")
    async_dir.chmod(0o755)
    bad_jids = ["../outside", str(outside), "j1/../../outside", "", "j1.2.3"]
    old_umask = os.umask(0o022)
    try:
        run = run_playbook("security.yml", extra_vars={"bad_jids": bad_jids})
    finally:
        os.umask(old_umask)
    run.assert_ok()
    data = run.load("security.json")
    # An async dir that existed keeps its mode (issue 11): the records in it are private anyway.
    assert stat.S_IMODE(async_dir.stat().st_mode) == 0o755
    record = async_dir / data["job"]["ansible_job_id"]
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    for item in data["refused"]["results"]:
        assert item["failed"] is True
        assert "Traceback" not in item["msg"]
        assert "MODULE FAILURE" not in item["msg"]
        assert "\n" not in item["msg"]
    assert data["refused_status"]["failed"] is True
    assert "is not a job id" in data["refused_status"]["msg"]
    assert outside.read_text() == "must survive"
    running_cleanup = data["running_cleanup"]
    assert running_cleanup["failed"] is True
    assert "still running" in running_cleanup["msg"]


def test_run_behaviour(run_playbook: RunPlaybook, out_dir: Path) -> None:
    run = run_playbook("run_behaviour.yml")
    run.assert_ok()
    data = run.load("behaviour.json")
    assert data["sync_run"]["stdout"] == "synchronous"
    assert "ansible_job_id" not in data["sync_run"]
    looped = data["looped"]["results"]
    assert [item["stdout"] for item in looped] == ["first", "second"]
    assert looped[0]["ansible_job_id"] != looped[1]["ansible_job_id"]
    until_run = data["until_run"]
    assert until_run["attempts"] == 3
    assert until_run["job"]["state"] == "succeeded"
    checked = data["checked"]
    assert checked.get("failed") is not True
    assert not (out_dir / "must-not-exist").exists()
    module_failed = data["module_failed"]
    assert module_failed["job"]["state"] == "failed"
    assert module_failed["job"]["reason"] == "module_failed"
    assert module_failed["rc"] == 3
    assert module_failed["stdout"] == "some output"
    # The module's own msg, as stock gives it; our sentence is job.msg.
    assert module_failed["msg"] == COMMAND_FAILURE_MSG
    assert "rc=3" in module_failed["job"]["msg"]
    module_crashed = data["module_crashed"]
    assert module_crashed["job"]["state"] == "failed"
    assert module_crashed["job"]["reason"] == "module_crashed"
    assert module_crashed["job"]["signal"] == "SIGKILL"
    rescued = data["rescued"]
    assert rescued["job"]["state"] == "timed_out"
    assert rescued["failed"] is True


BAD_RUN_ARGS = [
    ({"ansible.builtin.command": "echo", "ansible.builtin.shell": "echo"}, "more than one module"),
    ({"nosuch.collection.module": "x"}, "unknown module"),
    ({"ansible.builtin.command": "echo", "colour": "red"}, "unknown key(s) colour"),
    ({"grace": 3}, "no module to run"),
    ({"ansible.builtin.command": "echo", "grace": -1}, "grace must be 0 or more"),
    ({"ansible.builtin.command": "echo", "grace": "soon"}, "grace"),
    ({"ansible.builtin.command": ["echo"]}, "must be a string"),
    ({"ansible.builtin.copy": {"src": "a", "dest": "b"}}, "controller-side action plugin"),
]
BAD_STATUS_ARGS = [
    ({"jid": ""}, "non-empty job id"),
    ({"jid": "../x"}, "is not a job id"),
    ({"jid": "j1.2", "mode": "explode"}, "mode"),
    ({"jid": "j1.2", "wait": -5}, "wait must be 0 or more"),
    ({"jid": "j1.2", "wait": "later"}, "wait"),
    ({"mode": "status"}, "jid"),
    ({"jid": "j1.2", "colour": "red"}, "colour"),
    ({"jobs": "j1.2"}, "jobs must be a list"),
    ({"jobs": [42]}, "jobs[0] is not a job id string, a registered async result or a registered loop result (got integer)"),
    ({"jobs": ["../etc"]}, "is not a job id"),
    ({"jid": "j1.2", "jobs": ["j1.3"]}, "mutually exclusive"),
    ({"jid": "j1.2", "states": ["failed"]}, "states is only used with mode=list or mode=cleanup"),
    ({"mode": "cleanup"}, "mode=cleanup needs jid, jobs or a filter"),
    ({"mode": "list", "older_than": "yesterday"}, "older_than 'yesterday' is not a duration"),
    ({"mode": "list", "older_than": -1}, "older_than must be 0 or more seconds"),
    ({"jid": "j1.2", "mode": "kill", "grace": -1}, "grace must be 0 or more"),
    ({"jid": "j1.2", "mode": "kill", "signal": "STOP"}, "signal"),
    ({"jobs": ["j1.2"], "return_when": "some"}, "return_when"),
    ({"mode": "list", "states": ["sleeping"]}, "states"),
]
BAD_PARALLEL_ARGS = [
    ({"jobs": ["sleep 1"]}, "job 1 must be a dictionary"),
    ({"jobs": [{"name": "x", "ansible.builtin.command": "true", "async": 0}]}, "job 1 (x): async must be 1 or more"),
    ({"jobs": [{"ansible.builtin.command": "true", "ansible.builtin.shell": "true"}]}, "more than one module"),
    ({"jobs": [{"name": "y"}]}, "job 1 (y): no module to run"),
    ({"jobs": [{"ansible.builtin.command": "true"}], "limit": -1}, "limit must be 0 or more"),
]


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_bad_input_fails_with_one_clear_line(run_playbook: RunPlaybook) -> None:
    run = run_playbook(
        "bad_input.yml",
        extra_vars={
            "bad_run_args": [case[0] for case in BAD_RUN_ARGS],
            "bad_status_args": [case[0] for case in BAD_STATUS_ARGS],
            "bad_parallel_args": [case[0] for case in BAD_PARALLEL_ARGS],
        },
    )
    run.assert_ok()
    data = run.load("bad_input.json")
    cases = (
        list(zip(data["bad_run"]["results"], BAD_RUN_ARGS))
        + list(zip(data["bad_status"]["results"], BAD_STATUS_ARGS))
        + list(zip(data["bad_parallel"]["results"], BAD_PARALLEL_ARGS))
    )
    assert len(cases) == len(BAD_RUN_ARGS) + len(BAD_STATUS_ARGS) + len(BAD_PARALLEL_ARGS)
    for result, (args, expected) in cases:
        message = result["msg"]
        assert result["failed"] is True, args
        assert expected in message, (args, message)
        assert "\n" not in message, (args, message)
        assert "Traceback" not in message and "MODULE FAILURE" not in message, (args, message)


def shared_python() -> str:
    """A Python every user can run (pyenv's live under /root)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no system-wide python3 for the become user")


def remote_operations(output: str, task_name: str) -> list[str]:
    """Remote operations of one task in -vvv output."""
    section = output.split(f"TASK [{task_name}]", 1)[1].split("TASK [", 1)[0]
    # Over ssh a transfer prints a PUT line and the EXEC line of its sftp process: count the processes.
    pattern = SSH_OPERATION_RE if SSH_OPERATION_RE.search(section) else LOCAL_OPERATION_RE
    return pattern.findall(section)


def test_become_user_runs_and_owns_the_job(run_playbook: RunPlaybook, become_user: str, other_user: str) -> None:
    home = Path(pwd.getpwnam(become_user).pw_dir)
    # The become user cannot enter the test's private dirs: use the default async dir, in its home.
    run = run_playbook(
        "become.yml",
        extra_vars={"job_user": become_user, "job_user_python": shared_python(), "other_user": other_user},
        # -vvv shows each remote operation: EXEC and PUT lines (local), one SSH: EXEC per ssh or sftp process.
        env={"ANSIBLE_ASYNC_DIR": "~/.ansible_async", "ANSIBLE_VERBOSITY": "3", "ANSIBLE_PIPELINING": "0"},
    )
    run.assert_ok()
    # Root becoming an unprivileged user, without pipelining: a launch is three remote operations
    # (make the handover dir, transfer the request, run it), against stock's six.
    operations = remote_operations(run.stdout, "Launch a job as the become user")
    assert len(operations) == 3, operations
    data = run.load("become.json")
    assert data["launched"]["results_file"].startswith(str(home / ".ansible_async") + "/")
    assert data["waited"]["stdout"] == become_user
    assert data["waited"]["job"]["state"] == "succeeded"
    assert data["polled"]["stdout"] == become_user
    record, directory = data["record"]["stat"], data["directory"]["stat"]
    assert (record["pw_name"], record["mode"]) == (become_user, "0600")
    assert (directory["pw_name"], directory["mode"]) == (become_user, "0700")
    # Another unprivileged user can neither read the record nor get the job from async_status.
    assert data["other_cat"]["rc"] != 0
    assert "Permission denied" in data["other_cat"]["stderr"]
    assert data["other_cat"]["stdout"] == ""
    other_status = data["other_status"]
    assert other_status["failed"] is True
    assert "\n" not in other_status["msg"] and "Traceback" not in other_status["msg"]
    assert become_user not in other_status.get("stdout", "")


@pytest.fixture
def ssh_login_and_password(sshd: t.Any, other_user: str, become_user: str) -> t.Iterator[str]:
    """Key login over the private sshd for other_user, and a fresh password for become_user (su asks for it)."""
    home = Path(pwd.getpwnam(other_user).pw_dir)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(Path(f"{sshd.key_path}.pub").read_text())
    account = pwd.getpwnam(other_user)
    for path in (ssh_dir, keys):
        os.chown(path, account.pw_uid, account.pw_gid)
    keys.chmod(0o600)
    # sshd without PAM refuses accounts whose password is locked ("!"); "*" only means no password.
    subprocess.run(["usermod", "--password", "*", other_user], check=True)
    password = secrets.token_urlsafe(16)
    subprocess.run(["chpasswd"], input=f"{become_user}:{password}\n", text=True, check=True)
    try:
        yield password
    finally:
        keys.unlink()
        for user in (other_user, become_user):
            subprocess.run(["usermod", "--lock", user], check=False, capture_output=True)


def handover_dirs() -> list[str]:
    return sorted(name for name in os.listdir("/var/tmp") if name.startswith("longrun-"))


@pytest.mark.parametrize("target", ["ssh"], indirect=True)
@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl: make test installs the acl package")
def test_unprivileged_connection_becoming_another_user_launches_in_three_operations(
    run_playbook: RunPlaybook, become_user: str, other_user: str, ssh_login_and_password: str
) -> None:
    before = handover_dirs()
    run = run_playbook(
        "become_nonadmin.yml",
        extra_vars={
            "job_user": become_user,
            "job_user_python": shared_python(),
            "connection_user": other_user,
            "job_user_password": ssh_login_and_password,
        },
        env={"ANSIBLE_ASYNC_DIR": "~/.ansible_async", "ANSIBLE_VERBOSITY": "3", "ANSIBLE_PIPELINING": "0"},
    )
    run.assert_ok()
    data = run.load("become_nonadmin.json")
    assert data["waited"]["stdout"] == become_user
    assert data["waited"]["job"]["state"] == "succeeded"
    # The request is handed over with ACLs in a private dir: make it, transfer, run (stock: six operations).
    operations = remote_operations(run.stdout, "Launch a job as the become user")
    assert len(operations) == 3, operations
    # The connection user's watcher removes the handover dir once the agent has used it.
    wait_until(lambda: handover_dirs() == before, timeout=5, message="the handover dir is removed")
