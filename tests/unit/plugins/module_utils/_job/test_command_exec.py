# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The command executor: what it runs, the result it writes, and the output it streams from the job's files."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import command_exec as _command_exec
from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _output
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

JID = "j1.1"
SPEC = {
    "_raw_params": None, "cmd": None, "argv": None, "_uses_shell": False, "chdir": None, "executable": None,
    "creates": None, "removes": None, "stdin": None, "stdin_add_newline": True, "strip_empty_ends": True,
    "expand_argument_vars": True,
}


def command(**params) -> dict:
    return {
        "params": dict(SPEC, **params),
        "path_keys": ["chdir", "creates", "removes"],
        "invocation": True,
        "shell_executable": "/bin/sh",
        "nonzero_msg": "non-zero return code",
        "chdir_msg": "Unable to change directory before execution.",
        "chdir_msg_has_error": False,
        "chdir_exception": None,
    }


@pytest.fixture(autouse=True)
def own_cwd(tmp_path, monkeypatch):
    """plan_command changes the directory for chdir, as the module does: give it back after each test."""
    monkeypatch.chdir(tmp_path)


def test_raw_params_are_split_and_expanded(monkeypatch):
    monkeypatch.setenv("LONGRUN_WORD", "expanded")
    plan = _command_exec.plan_command(command(_raw_params="echo '$LONGRUN_WORD' \"a b\" ~"))

    assert plan.result["cmd"] == ["echo", "$LONGRUN_WORD", "a b", "~"]
    assert plan.argv == ["echo", "expanded", "a b", os.path.expanduser("~")]
    assert plan.result["changed"] is True
    assert plan.stdin is None


def test_without_expansion_the_words_stay():
    plan = _command_exec.plan_command(command(argv=["echo", "$HOME", "~"], expand_argument_vars=False))

    assert plan.argv == ["echo", "$HOME", "~"]


@pytest.mark.parametrize(
    ("shell_executable", "executable", "program"),
    [("/bin/sh", None, "/bin/sh"), ("/bin/bash", None, "/bin/bash"), ("/bin/sh", "/bin/dash", "/bin/dash")],
)
def test_shell_commands_run_as_run_command_runs_them(shell_executable, executable, program):
    options = command(_raw_params="echo $HOME | cat", _uses_shell=True, executable=executable)
    options["shell_executable"] = shell_executable

    plan = _command_exec.plan_command(options)

    assert plan.argv == [program, "-c", "echo $HOME | cat"]
    assert plan.result["cmd"] == "echo $HOME | cat"


def test_shell_argv_is_quoted_into_one_command():
    plan = _command_exec.plan_command(command(argv=["echo", "it's"], _uses_shell=True))

    assert plan.argv == ["/bin/sh", "-c", "echo 'it'\"'\"'s'"]
    assert plan.result["cmd"] == ["echo", "it's"]


def test_stdin_gets_a_newline_unless_told_not_to():
    assert _command_exec.plan_command(command(_raw_params="cat", stdin="é")).stdin == "é\n".encode()
    assert _command_exec.plan_command(command(_raw_params="cat", stdin="a", stdin_add_newline=False)).stdin == b"a"
    # An empty stdin is no stdin, as in run_command.
    assert _command_exec.plan_command(command(_raw_params="cat", stdin="")).stdin is None


def test_paths_are_expanded_on_the_target_and_shown_so(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGRUN_DIR", str(tmp_path))
    (tmp_path / "sub").mkdir()

    plan = _command_exec.plan_command(command(_raw_params="pwd", chdir="$LONGRUN_DIR/sub"))

    assert os.getcwd() == str(tmp_path / "sub")
    assert plan.result["invocation"]["module_args"]["chdir"] == str(tmp_path / "sub")


def test_a_failed_chdir_ends_the_job_with_the_module_message(tmp_path):
    options = command(_raw_params="pwd", chdir=str(tmp_path / "missing"))
    placeholder = _command_exec.CHDIR_ERROR_PLACEHOLDER
    options["chdir_exception"] = {"event": {"msg": "x", "chain": {"event": {"msg": placeholder}}}}

    plan = _command_exec.plan_command(options)

    assert plan.ends_at_once
    assert plan.result["failed"] is True
    assert plan.result["msg"] == "Unable to change directory before execution."
    error = plan.result["exception"]["event"]["chain"]["event"]["msg"]
    assert error == f"[Errno 2] No such file or directory: {str(tmp_path / 'missing').encode()!r}"


def test_the_older_chdir_message_carries_the_error(tmp_path):
    options = command(_raw_params="pwd", chdir=str(tmp_path / "missing"))
    options.update(chdir_msg="Unable to change directory before execution: %s", chdir_msg_has_error=True)

    plan = _command_exec.plan_command(options)

    assert plan.result["msg"].startswith("Unable to change directory before execution: [Errno 2]")
    assert "exception" not in plan.result


def test_creates_and_removes_skip_as_the_module_does(tmp_path):
    (tmp_path / "there").write_text("")

    created = _command_exec.plan_command(command(_raw_params="false", creates=str(tmp_path / "th*")))
    removed = _command_exec.plan_command(command(_raw_params="false", removes=str(tmp_path / "gone")))
    runs = _command_exec.plan_command(command(_raw_params="true", creates="gone", removes="there"))

    assert created.ends_at_once and removed.ends_at_once and not runs.ends_at_once
    assert created.result["msg"] == f"Did not run command since '{tmp_path / 'th*'}' exists"
    assert created.result["stdout"] == f"skipped, since {tmp_path / 'th*'} exists"
    assert removed.result["msg"] == f"Did not run command since '{tmp_path / 'gone'}' does not exist"
    assert (created.result["rc"], created.result["changed"]) == (0, False)


def test_bad_parameters_are_refused():
    with pytest.raises(_command_exec.CommandError, match="no command parameters"):
        _command_exec.plan_command(None)
    with pytest.raises(_command_exec.CommandError, match="no command"):
        _command_exec.plan_command(command())


def test_pythonpath_is_cleaned_as_run_command_cleans_it():
    cleaned = _command_exec.command_environment({"PYTHONPATH": "/x/ansible_modlib.zip:/keep:", "A": "1"})
    assert cleaned == {"PYTHONPATH": "/keep", "A": "1"}
    # Nothing left: run_command leaves the variable as it was.
    assert _command_exec.command_environment({"PYTHONPATH": "/a/debug_dir"}) == {"PYTHONPATH": "/a/debug_dir"}


@pytest.mark.parametrize(
    ("data", "strip", "text"),
    [
        (b"a\r\n\r\n", True, "a"),
        (b"a\r\n\r\n", False, "a\r\n\r\n"),
        (b"\n\n", True, ""),
        (b"caf\xc3\xa9 \xff\n", True, "café \udcff"),
        (b"x" * 70000 + b"\n" * 5000, True, "x" * 70000),
    ],
)
def test_text_chunks_strip_and_decode_as_the_module(tmp_path, data, strip, text):
    path = tmp_path / "out"
    path.write_bytes(data)

    assert "".join(_command_exec.text_chunks(str(path), strip=strip)) == text


def test_a_character_cut_by_the_chunk_boundary_stays_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(_output, "CHUNK_BYTES", 3)
    path = tmp_path / "out"
    path.write_bytes("aé😀b".encode())

    assert "".join(_command_exec.text_chunks(str(path), strip=True)) == "aé😀b"


def launch(async_dir: str, janitor, options: dict, jid: str = JID) -> _record.JobRecord:
    spec = _handshake.LaunchSpec(
        jid=jid, async_dir=async_dir, timeout=30, grace=1, interpreter="", payload=b"", style="command",
        command=options,
    )
    first = _handshake.launch(spec)
    janitor.track_job(async_dir, jid)
    assert first["executor"] == "command"
    (record,) = _status.wait_for_jobs(async_dir, [jid], timeout=20)
    return record


def read_document(async_dir: str, jid: str = JID) -> dict:
    with open(_store.record_path(async_dir, jid), encoding="utf-8") as handle:
        return json.load(handle)


def test_a_command_job_ends_with_the_module_result_and_keeps_its_output(async_dir, janitor):
    record = launch(async_dir, janitor, command(
        _raw_params="printf 'out\\n\\n'; printf 'err\\377\\n' >&2; exit 4", _uses_shell=True,
    ))

    document = read_document(async_dir)
    assert record.state == _record.FAILED and record.exit_code == 4
    assert (document["rc"], document["failed"], document["msg"]) == (4, True, "non-zero return code")
    assert (document["stdout"], document["stderr"]) == ("out", "err\udcff")
    assert document["cmd"] == "printf 'out\\n\\n'; printf 'err\\377\\n' >&2; exit 4"
    assert document["invocation"]["module_args"]["_uses_shell"] is True
    assert document["delta"].startswith("0:00:")
    # The output files are the command's own: they stay, private.
    stdout_path = _store.side_path(async_dir, JID, ".stdout")
    with open(stdout_path, "rb") as handle:
        assert handle.read() == b"out\n\n"
    assert os.stat(stdout_path).st_mode & 0o777 == 0o600
    assert os.path.exists(_store.side_path(async_dir, JID, ".stderr"))


def test_a_skipped_command_job_runs_nothing(async_dir, janitor, tmp_path):
    record = launch(async_dir, janitor, command(_raw_params="touch ran", creates=str(tmp_path)))

    document = read_document(async_dir)
    assert record.state == _record.SUCCEEDED
    assert document["stdout"] == f"skipped, since {tmp_path} exists"
    assert (document["rc"], document["changed"], document["stderr"]) == (0, False, "")
    assert document["start"] is None


def test_stdin_reaches_the_command(async_dir, janitor):
    launch(async_dir, janitor, command(_raw_params="cat", stdin="hello"))

    assert read_document(async_dir)["stdout"] == "hello"


def test_a_command_killed_by_a_signal_has_a_negative_rc(async_dir, janitor):
    record = launch(async_dir, janitor, command(_raw_params="kill -KILL $$", _uses_shell=True))

    assert read_document(async_dir)["rc"] == -9
    assert record.state == _record.FAILED


def test_a_program_that_cannot_run_is_declined_when_the_controller_can_run_the_module(tmp_path):
    options = command(_raw_params="longrun-no-such-program x")
    assert _command_exec.plan_command(options).argv[0] == "longrun-no-such-program"

    options["decline_unrunnable"] = True
    with pytest.raises(_command_exec.CommandDeclined, match=_command_exec.DECLINED):
        _command_exec.plan_command(options)
    # Relative to the chdir, as exec would look for it there.
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o700)
    options = dict(command(_raw_params="./script", chdir=str(tmp_path)), decline_unrunnable=True)
    assert _command_exec.plan_command(options).argv == ["./script"]


def test_an_unreadable_directory_is_left_for_the_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(_command_exec.os, "access", lambda path, mode: path != str(tmp_path))
    work = tmp_path / "tmp"
    work.mkdir()

    _command_exec.plan_command(command(_raw_params="pwd"), temp_dir=str(work))

    assert os.getcwd() == str(work)


def test_a_command_that_cannot_start_without_the_module_to_fall_back_on_crashes_clearly(async_dir, janitor):
    record = launch(async_dir, janitor, command(_raw_params="longrun-no-such-program"))

    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_CRASHED
    assert "cannot execute the command 'longrun-no-such-program'" in record.msg


def test_the_output_of_a_command_job_whose_supervisor_died_is_not_read_as_a_module_result(async_dir):
    from ansible_collections.longrun.jobs.plugins.module_utils._job import outcome as _outcome

    _store.write_record(async_dir, _record.JobRecord(jid=JID, state=_record.RUNNING, executor="command"))
    fd = _store.open_side_file(async_dir, JID, ".stdout")
    os.write(fd, b'{"changed": false, "msg": "printed by the command"}\n')
    os.close(fd)

    assert _outcome.recover_end(async_dir, JID) is None
    assert _store.read_record(async_dir, JID).state == _record.RUNNING


def test_an_unusable_locale_is_replaced_as_ansible_module_replaces_it(monkeypatch):
    import locale

    monkeypatch.setenv("LC_ALL", "xx_NOT.a-locale")
    expected = "C"
    listed = os.popen("locale -a 2>/dev/null").read().split()
    for name in ("C.utf8", "C.UTF-8", "en_US.utf8", "en_US.UTF-8", "C", "POSIX"):
        if name in listed:
            expected = name
            break
    try:
        environment = _command_exec.command_environment(dict(os.environ))
    finally:
        monkeypatch.delenv("LC_ALL")
        locale.setlocale(locale.LC_ALL, "")

    assert (environment["LANG"], environment["LC_ALL"], environment["LC_MESSAGES"]) == (expected,) * 3


def test_a_usable_locale_is_kept():
    environment = _command_exec.command_environment({"LANG": "C", "A": "1"})
    assert environment == {"LANG": "C", "A": "1"}
