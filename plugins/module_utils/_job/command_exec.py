# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The command executor: a command or shell job run by the supervisor itself, with the module's result.

ansible.builtin.command holds the command's output in memory until the command exits. The
supervisor instead starts the command with its stdout and stderr on the job's side files, so the
output is on disk as it is written, and at the end writes the result the module would have
returned, streaming the output from those files into the record. The controller decided that the
task is one the executor runs exactly as the module would (plugin_utils/_command_executor.py) and
sent the parameters, the messages and the argument spec's defaults of its ansible-core.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import shlex

from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Type checkers only: the supervisor imports this module on every command job's launch.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record

EXECUTOR = "command"
# Must match plugin_utils/_command_executor.CHDIR_ERROR_PLACEHOLDER.
CHDIR_ERROR_PLACEHOLDER = "@@longrun:chdir-error@@"
# Must match plugin_utils/_command_executor.DECLINED: the controller then launches the module instead.
DECLINED = "the command executor leaves this job to the module"
# What run_command drops from PYTHONPATH: the AnsiballZ module library (the executor has none, but the
# supervisor's own environment may hold one).
_ANSIBALLZ_PATH_ENDINGS = ("/ansible_modlib.zip", "/debug_dir")
_DEFAULT_SHELL = "/bin/sh"


class CommandError(ValueError):
    """The launch request's command parameters are not usable; the message says which."""


class CommandDeclined(CommandError):
    """The command cannot be started (no such program): the module, which says so in its own words, must run."""


class CommandPlan:
    """What the supervisor runs, or the result that ends the job without running anything."""

    __slots__ = ("argv", "stdin", "result", "strip", "nonzero_msg", "started")

    def __init__(self) -> None:
        self.argv: t.List[str] = []
        self.stdin: t.Optional[bytes] = None
        # Every key of the module's result but stdout and stderr, as the module sets them before the run.
        self.result: t.Dict[str, t.Any] = {}
        self.strip = True
        self.nonzero_msg = ""
        self.started: t.Optional[datetime.datetime] = None

    @property
    def ends_at_once(self) -> bool:
        """The job ends without running the command: a skip (creates/removes) or a failed chdir."""
        return not self.argv


def plan_command(
    command: t.Any, *, temp_dir: t.Optional[str] = None, shell_default: str = _DEFAULT_SHELL
) -> CommandPlan:
    """Do what the module does before running the command: paths, chdir, creates/removes; raises CommandError.

    temp_dir is the job's TMPDIR, where the command starts when the current directory is not readable.
    """
    if not isinstance(command, dict) or not isinstance(command.get("params"), dict):
        raise CommandError("the launch request has style command but no command parameters")
    _leave_unreadable_cwd(temp_dir)
    params = dict(command["params"])
    for key in command.get("path_keys") or ():
        # As AnsibleModule does with options of type path, as the user running the job.
        if isinstance(params.get(key), str):
            params[key] = os.path.expanduser(os.path.expandvars(params[key]))
    plan = CommandPlan()
    plan.strip = bool(params.get("strip_empty_ends", True))
    plan.nonzero_msg = str(command.get("nonzero_msg") or "")
    result: t.Dict[str, t.Any] = {
        "changed": False, "rc": None, "cmd": None, "start": None, "end": None, "delta": None, "msg": "",
    }
    if command.get("invocation"):
        result["invocation"] = {"module_args": params}
    plan.result = result
    shell = bool(params.get("_uses_shell"))
    args: t.Any = params.get("_raw_params") or params.get("cmd")
    if not shell and args:
        args = shlex.split(args)
    args = args or params.get("argv")
    if isinstance(args, list):
        args = [str(arg) for arg in args]
    if not args:
        raise CommandError("the command parameters name no command")
    result["cmd"] = args
    chdir = params.get("chdir")
    if chdir:
        try:
            os.chdir(chdir.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            _fail_chdir(result, command, exc)
            return plan
    for key, exists, sentence in (("creates", True, "exists"), ("removes", False, "does not exist")):
        path = params.get(key)
        if path and bool(glob.glob(path)) is exists:
            result["msg"] = f"Did not run command since '{path}' {sentence}"
            result["stdout"] = f"skipped, since {path} {sentence}"
            result["rc"] = 0
            return plan
    result["changed"] = True
    plan.argv = _program(args, shell=shell, params=params, shell_executable=command.get("shell_executable"),
                         shell_default=shell_default)
    if command.get("decline_unrunnable") and not _can_execute(plan.argv[0]):
        raise CommandDeclined(f"{DECLINED}: cannot execute {plan.argv[0]!r}")
    stdin = params.get("stdin")
    if stdin:
        if params.get("stdin_add_newline", True):
            stdin += "\n"
        plan.stdin = stdin.encode("utf-8", "surrogateescape")
    return plan


def _leave_unreadable_cwd(temp_dir: t.Optional[str]) -> None:
    """As AnsibleModule does: from a directory the user cannot read (become), move to its tmp dir, $HOME or /tmp."""
    try:
        if os.access(os.getcwd(), os.F_OK | os.R_OK):
            return
    except OSError:
        pass
    for candidate in (temp_dir, os.path.expandvars("$HOME"), "/tmp"):
        try:
            if candidate and os.access(candidate, os.F_OK | os.R_OK):
                os.chdir(candidate)
                return
        except OSError:
            continue


def _can_execute(program: str) -> bool:
    """Whether exec would find program, as execvp looks for it (after the chdir, as the module)."""
    candidates = [program] if "/" in program else [os.path.join(path, program) for path in os.get_exec_path()]
    return any(os.path.isfile(candidate) and os.access(candidate, os.X_OK) for candidate in candidates if program)


def _fail_chdir(result: dict, command: dict, problem: OSError) -> None:
    message = str(command.get("chdir_msg") or "")
    if command.get("chdir_msg_has_error"):
        message = message.replace("%s", str(problem), 1)
    result["msg"] = message
    result["failed"] = True
    template = command.get("chdir_exception")
    if template is not None:
        result["exception"] = _fill_placeholder(template, str(problem))


def _fill_placeholder(value: t.Any, text: str) -> t.Any:
    if isinstance(value, str):
        return value.replace(CHDIR_ERROR_PLACEHOLDER, text)
    if isinstance(value, dict):
        return {key: _fill_placeholder(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill_placeholder(item, text) for item in value]
    return value


def _program(
    args: t.Union[str, t.List[str]], *, shell: bool, params: dict, shell_executable: t.Any, shell_default: str
) -> t.List[str]:
    """The argv that AnsibleModule.run_command would execute."""
    if shell:
        text = " ".join(shlex.quote(arg) for arg in args) if isinstance(args, list) else args
        executable = params.get("executable")
        if executable:
            return [executable, "-c", text]
        if shell_executable not in (None, _DEFAULT_SHELL):
            return [str(shell_executable), "-c", text]
        return [shell_default, "-c", text]
    words = shlex.split(args) if isinstance(args, str) else args
    if params.get("expand_argument_vars", True):
        return [os.path.expanduser(os.path.expandvars(word)) for word in words if word is not None]
    return [word for word in words if word is not None]


# The locales AnsibleModule falls back to, in its order, when the environment's locale is not usable.
_PARSABLE_LOCALES = ("C.utf8", "C.UTF-8", "en_US.utf8", "en_US.UTF-8", "C", "POSIX")


def command_environment(environment: t.Dict[str, str]) -> t.Dict[str, str]:
    """The environment the module's command would see: the module process's, PYTHONPATH cleaned as run_command does.

    environment is this process's own plus the job's additions: its locale is the one checked here.
    """
    environment = dict(environment)
    best = _fallback_locale()
    if best is not None:
        # As AnsibleModule's locale check does, for the tools the command runs.
        environment.update(LANG=best, LC_ALL=best, LC_MESSAGES=best)
    if "PYTHONPATH" in environment:
        kept = [
            path for path in environment["PYTHONPATH"].split(":")
            if path and not path.endswith(_ANSIBALLZ_PATH_ENDINGS)
        ]
        # run_command leaves the variable as it was when nothing is left.
        if kept:
            environment["PYTHONPATH"] = ":".join(kept)
    return environment


def _fallback_locale() -> t.Optional[str]:
    """None when the environment's locale is usable, else the locale AnsibleModule would switch to."""
    # Imported here: only command jobs need it, once per job.
    import locale  # pylint: disable=import-outside-toplevel

    try:
        locale.setlocale(locale.LC_ALL, "")
        return None
    except locale.Error:
        pass
    import subprocess  # pylint: disable=import-outside-toplevel

    try:
        # Not run_command: this runs in the supervisor, which has no AnsibleModule.
        listed = subprocess.run(  # pylint: disable=ansible-bad-function
            ["locale", "-a"], stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "C"
    available = listed.stdout.decode("utf-8", "replace").split() if listed.returncode == 0 else []
    return next((name for name in _PARSABLE_LOCALES if name in available), "C")


def end_at_once(record: _record.JobRecord, plan: CommandPlan) -> None:
    """End the record with the result of a job that ran no command."""
    result = dict(plan.result, stdout=plan.result.get("stdout", ""), stderr="")
    if result.get("failed"):
        record.fail_module(result, result)
    else:
        record.succeed(result)


def end_after_exit(
    record: _record.JobRecord, async_dir: str, plan: CommandPlan, status: int, ended: datetime.datetime
) -> CommandOutput:
    """End the record as the module would have from the command's exit; returns the output to stream into it."""
    started = plan.started or ended
    result = dict(plan.result)
    if os.WIFSIGNALED(status):
        # Popen's returncode for a command killed by a signal.
        rc = -os.WTERMSIG(status)
        exit_code = None
    else:
        rc = exit_code = os.WEXITSTATUS(status)
    result.update(rc=rc, start=str(started), end=str(ended), delta=str(ended - started))
    if rc != 0:
        result["msg"] = plan.nonzero_msg
        result["failed"] = True
        record.fail_module(result, result, exit_code=exit_code)
    else:
        record.succeed(result, exit_code=exit_code)
    return CommandOutput(async_dir, record.jid, strip=plan.strip)


class CommandOutput:
    """The command's stdout and stderr, in their side files, as members of the result: copied, never loaded."""

    def __init__(self, async_dir: str, jid: str, *, strip: bool) -> None:
        self.paths = [(name, _store.side_path(async_dir, jid, "." + name)) for name in ("stdout", "stderr")]
        self.strip = strip

    def member_chunks(self, *, skip: t.Collection[str] = ()) -> t.Iterator[bytes]:
        """'"stdout": "...", "stderr": "..."', the text escaped as JSON, a chunk of the file at a time."""
        first = True
        for name, path in self.paths:
            if name in skip:
                continue
            if not first:
                yield b", "
            first = False
            yield json.dumps(name).encode("ascii") + b': "'
            for chunk in text_chunks(path, strip=self.strip):
                yield json.dumps(chunk)[1:-1].encode("ascii")
            yield b'"'


def text_chunks(path: str, *, strip: bool) -> t.Iterator[str]:
    """The file's text, bytes that are not UTF-8 as surrogate escapes (as the module decodes them).

    With strip, without the trailing carriage returns and newlines (the module's rstrip("\\r\\n")).
    """
    try:
        handle = open(path, "rb")  # pylint: disable=consider-using-with
    except FileNotFoundError:
        return
    with handle:
        end = handle.seek(0, os.SEEK_END)
        if strip:
            end = _end_without_newlines(handle, end)
        # Imported here, at the job's end: the launch of a command job never loads it.
        # pylint: disable-next=import-outside-toplevel
        from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _output

        yield from _output.decoded_span(handle, 0, end)


def _end_without_newlines(handle: t.BinaryIO, end: int) -> int:
    """The offset after the last byte that is not CR or LF (both are single bytes in UTF-8)."""
    while end > 0:
        start = max(0, end - 4096)
        handle.seek(start)
        data = handle.read(end - start)
        stripped = data.rstrip(b"\r\n")
        if stripped:
            return start + len(stripped)
        end = start
    return 0
