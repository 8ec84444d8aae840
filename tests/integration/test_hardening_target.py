"""Hardening of the supervisor and the target side (issue 11): signals, limits, the async dir,
the job's stdin, and the way requests reach the target."""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from playbook_run import RunPlaybook

from ansible_collections.longrun.jobs.plugins.plugin_utils._agent_bundle import agent_program

STRAY_SIGNALS = ("HUP", "QUIT", "USR2", "ALRM")
# Linux's limit on one argument (MAX_ARG_STRLEN), less its final NUL.
MAX_COMMAND_BYTES = 128 * 1024 - 1


def one_line_without_traceback(message: str) -> None:
    assert "\n" not in message, message
    assert "Traceback" not in message and "MODULE FAILURE" not in message, message


def test_supervisor_ignores_stray_signals(run_playbook: RunPlaybook, marker: int) -> None:
    jobs = []
    for name in STRAY_SIGNALS:
        jobs.append({"signal": name, "command": f"sleep {marker}", "limit": 20})
        jobs.append({"signal": name, "command": "sh -c 'sleep 15; echo survived'", "limit": 60})
    run = run_playbook("target_signals.yml", extra_vars={"jobs_to_start": jobs}, timeout=200)
    run.assert_ok()
    dumped = run.load("signals.json")
    entries = {entry["ansible_job_id"]: entry for entry in dumped["waited"]["jobs"]}
    assert len(entries) == len(jobs)
    for launched in dumped["launched"]["results"]:
        spec = launched["item"]
        entry = entries[launched["ansible_job_id"]]
        if spec["limit"] == 20:
            # Ended by its supervisor at its limit, not lost and left running.
            assert (entry["state"], entry["reason"]) == ("timed_out", "async_limit"), (spec, entry)
            assert entry["duration"] >= 20, (spec, entry)
        else:
            assert entry["state"] == "succeeded", (spec, entry)
            assert entry["result"]["stdout"] == "survived", (spec, entry)


def test_result_of_a_job_whose_supervisor_died_is_recovered(run_playbook: RunPlaybook) -> None:
    run = run_playbook("target_recover.yml")
    run.assert_ok()
    status = run.load("recover.json")["status"]
    jid = status["ansible_job_id"]
    assert status["job"]["state"] == "succeeded", status
    assert status["failed"] is False
    assert status["stdout"] == "recovered"
    assert status["rc"] == 0
    # Said as a warning, which core shows on stderr from 2.19 on.
    shown = " ".join((run.stdout + run.stderr).split())
    assert f"the supervisor of job {jid}" in shown
    assert "the result was recovered from the module's output" in shown


def test_huge_async_and_a_file_as_async_dir_are_refused_clearly(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "async-file"
    not_a_dir.write_text("a file\n")
    run = run_playbook("target_bad_limits.yml", extra_vars={"file_async_dir": str(not_a_dir)})
    run.assert_ok()
    dumped = run.load("bad_limits.json")
    huge = dumped["huge"]
    assert huge["failed"] is True
    assert huge["msg"] == (
        "async must be at most 3153600000 seconds (100 years), got 99999999999999: set a limit the job can reach"
    )
    file_dir = dumped["file_dir"]
    assert file_dir["failed"] is True
    assert file_dir["msg"] == (
        f"cannot launch the job: the async dir {not_a_dir} is not a directory: point ansible_async_dir at a directory"
    )
    for message in (huge["msg"], file_dir["msg"]):
        one_line_without_traceback(message)
    assert not_a_dir.read_text() == "a file\n"


def test_async_dir_mode_is_never_changed_and_shared_dirs_are_refused(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    link_to_shared = tmp_path / "link-to-shared"
    link_to_shared.symlink_to(shared)
    own = tmp_path / "own"
    own.mkdir()
    own.chmod(0o755)
    link_to_own = tmp_path / "link-to-own"
    link_to_own.symlink_to(own)
    dirs = [str(shared), str(link_to_shared), str(own), str(link_to_own)]
    run = run_playbook("target_async_dir_modes.yml", extra_vars={"async_dirs": dirs})
    run.assert_ok()
    results = {entry["item"]: entry for entry in run.load("async_dir_modes.json")["results"]}
    for refused in (shared, link_to_shared):
        entry = results[str(refused)]
        assert entry["failed"] is True, entry
        assert entry["msg"] == (
            f"cannot launch the job: the async dir {refused} is writable by other users (mode 1777), who could tamper "
            "with the jobs' files: make it private (chmod 700) or set ansible_async_dir to a directory of the job's user"
        )
    for accepted in (own, link_to_own):
        entry = results[str(accepted)]
        assert entry["failed"] is False, entry
        assert entry["job"]["state"] == "succeeded", entry
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE(own.stat().st_mode) == 0o755
    assert sorted(os.listdir(shared)) == []


def test_module_children_cannot_read_the_payload(run_playbook: RunPlaybook, tmp_path: Path) -> None:
    secret = "pw-" + secrets.token_hex(16)
    dump = tmp_path / "read-by-children"
    run = run_playbook("target_child_stdin.yml", extra_vars={"secret": secret, "dump": str(dump)})
    run.assert_ok()
    result = run.load("child_stdin.json")
    assert result["failed"] is False, result
    assert (result["seeking_rc"], result["shell_rc"]) == (0, 0), result
    read = dump.read_bytes() if dump.exists() else b""
    assert secret.encode() not in read
    # What stock gives a module's children: an empty stdin.
    assert read == b""
    assert secret not in run.stdout + run.stderr


def test_failed_become_leaves_no_request_on_the_target(run_playbook: RunPlaybook, tmp_path: Path, become_user: str) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    system_tmp.chmod(0o1777)
    secret = "pw-" + secrets.token_hex(16)
    run = run_playbook(
        "target_become_fails.yml",
        extra_vars={"job_user": become_user, "system_tmp": str(system_tmp), "secret": secret},
    )
    run.assert_ok()
    launched = run.load("become_fails.json")
    assert launched["failed"] is True, launched
    assert "ansible_job_id" not in launched
    # The request dir was made there, then removed: no copy of the request stays behind.
    assert sorted(os.listdir(system_tmp)) == []
    assert "could not remove the request dir" not in run.stdout + run.stderr


def launch_commands(output: str) -> list[tuple[int, str]]:
    """(command length, where) of each launch request, from the -vvv lines of the agent."""
    found = re.findall(r"longrun: the request \((\d+) bytes\) goes to the target (on the command line|in a file)"
                       r"(?:: the command would be (\d+) bytes)?", output)
    return [(int(length or 0), where) for size, where, length in found if int(size) > 10000]


def test_request_near_the_command_line_limit_with_an_environment(run_playbook: RunPlaybook) -> None:
    # Sized from the agent program, which shares the command line with the request (base64, 4/3 of its size):
    # the 2 KB environment then brings the command to a few bytes of the limit.
    big = "b" * ((MAX_COMMAND_BYTES - len(agent_program()) - 3500) * 3 // 4)
    env = {"ANSIBLE_BECOME_ALLOW_SAME_USER": "true", "ANSIBLE_VERBOSITY": "3"}
    calibration = run_playbook("target_argv_boundary.yml", extra_vars={"big": big, "pad_sizes": [2048]}, env=env)
    calibration.assert_ok()
    [(length, _where)] = launch_commands(calibration.stdout)
    # A 2 KB environment plus this request bring the command within a few bytes of the limit.
    boundary = 2048 + MAX_COMMAND_BYTES - length
    assert 1024 < boundary < 4096, length
    pads = list(range(boundary - 40, boundary + 41, 4))
    run = run_playbook("target_argv_boundary.yml", extra_vars={"big": big, "pad_sizes": pads}, env=env, timeout=400)
    run.assert_ok()
    dumped = run.load("argv_boundary.json")
    for launched in dumped["launched"]["results"]:
        assert launched["failed"] is False, {key: launched.get(key) for key in ("item", "msg", "module_stderr")}
    assert [entry["state"] for entry in dumped["waited"]["jobs"]] == ["succeeded"] * len(pads), dumped["waited"]["msg"]
    assert all(entry["result"]["args_bytes"] > len(big) for entry in dumped["waited"]["jobs"])
    commands = launch_commands(run.stdout)
    assert len(commands) == len(pads)
    on_command_line = [length for length, where in commands if where == "on the command line"]
    assert on_command_line and max(on_command_line) <= MAX_COMMAND_BYTES
    # The window crossed the limit: the longest command that went is at most one step short of it.
    assert max(on_command_line) > MAX_COMMAND_BYTES - 20, commands
    assert any(where == "in a file" and length > MAX_COMMAND_BYTES for length, where in commands), commands
