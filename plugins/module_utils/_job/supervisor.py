# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Launching a module as a supervised background job.

Three processes take part, each with its own function:
- the launcher (the job_wrapper module) forks, waits for a one-line report
  from the supervisor and returns the job id to Ansible;
- an intermediate child starts a new session and forks again, so that the
  supervisor is detached from the connection and cannot regain a terminal;
- the supervisor writes the record, starts the module in a session of its own,
  sleeps until the module exits or the deadline comes, and records the end.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import resource
import select
import shlex
import signal
import sys
import time

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._timing import LAUNCH_REPORT_TIMEOUT

# Type checkers only: the target agent imports this module on every launch (see _agent.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _module_output

READY = b"ready\n"
# Caps of captured output kept when a module crashes.
TAIL_BYTES = 4096
_LONGEST_SLEEP = 86400.0
# How a new-style module's Python starts: it reads the module (AnsiballZ, parameters included) from
# stdin, then puts /dev/null there, as stock's wrapper gives its module. No process the module
# starts inherits the payload, which it could otherwise seek back to and read, no_log values and all.
# __file__ and argv[0] are those of a script read from stdin, which the module expects.
_NEW_STYLE_BOOT = """import os, sys
def _longrun_load():
    del globals()["_longrun_load"]
    code = sys.stdin.buffer.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return compile(code, "<stdin>", "exec")
__file__ = "<stdin>"
sys.argv[0] = ""
exec(_longrun_load())
"""
# Cap of the module's stderr put in the result of a module that returned JSON, as stock's wrapper does.
STDERR_BYTES = 1 << 20
# Core's warning for text after a module's JSON result (module_utils/json_utils.py).
JUNK_WARNING = "Module invocation had junk after the JSON data: "
# Signals that ask the supervisor to end the job: recorded as killed.
KILL_REQUEST_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# Result keys the supervisor decodes; everything else is copied into the record unread.
_NORMALIZED_KEYS = ("warnings", "deprecations")
_SUMMARY_KEYS = ("failed", "msg", "rc") + _NORMALIZED_KEYS


class FoundResult:
    """The module's JSON result in its output, the few values the supervisor reads, and what follows it."""

    def __init__(
        self,
        output: _module_output.ModuleResult,
        summary: t.Dict[str, t.Any],
        problem: t.Optional[str],
        junk: t.Optional[str],
    ) -> None:
        self.output = output
        self.summary = summary
        self.problem = problem
        self.junk = junk


class LaunchError(Exception):
    """The job could not be started; the message says why."""


class LaunchSpec:
    """Everything the supervisor needs to run one module.

    A plain class, not a dataclass: that import alone would cost each launch about 9 ms.
    """

    def __init__(
        self,
        *,
        jid: str,
        async_dir: str,
        timeout: int,
        grace: int,
        interpreter: str,
        payload: bytes,
        style: str = "new",
        args_data: t.Optional[bytes] = None,
    ) -> None:
        self.jid = jid
        self.async_dir = async_dir
        self.timeout = timeout
        self.grace = grace
        self.interpreter = interpreter
        self.payload = payload
        self.style = style
        self.args_data = args_data


def launch(spec: LaunchSpec) -> dict:
    """Start the supervised job; returns the job's first record (called in the launcher)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _detach_and_supervise(spec, write_fd)
    os.close(write_fd)
    try:
        report = _read_report(read_fd)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    if not report.startswith(READY):
        message = report.decode("utf-8", "replace").strip()
        raise LaunchError(message or "the supervisor exited before starting the job")
    # The supervisor sends the job's first record with its report: no need to read it back.
    return json.loads(report[len(READY):].decode("utf-8"))


def _read_report(read_fd: int) -> bytes:
    chunks: t.List[bytes] = []
    deadline = time.monotonic() + LAUNCH_REPORT_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"the supervisor did not report within {LAUNCH_REPORT_TIMEOUT:.0f} s".encode("utf-8")
        readable = select.select([read_fd], [], [], remaining)[0]
        if not readable:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _detach_and_supervise(spec: LaunchSpec, report_fd: int) -> t.NoReturn:
    """Runs in the first child: new session, second fork, supervisor. Never returns."""
    supervisor: t.Optional[Supervisor] = None
    # Before anything else: from here on, no signal may end the supervisor unnoticed.
    block_signals()
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        _redirect_standard_streams()
        supervisor = Supervisor(spec, report_fd)
        exit_code = supervisor.run()
    except BaseException as exc:  # pylint: disable=broad-except
        # Once the launcher is released its descriptor number may be reused: report only before.
        if supervisor is None or supervisor.report_fd is not None:
            _report(report_fd, str(exc).encode("utf-8", "replace"))
        exit_code = 1
    os._exit(exit_code)


def block_signals() -> None:
    """Block every signal that can be blocked.

    The supervisor acts only on those it waits for (SIGCHLD and the kill requests); any
    other (SIGHUP, SIGQUIT, SIGUSR2, SIGALRM...) stays pending and unanswered, instead of
    ending the supervisor and leaving its job without a limit or a recorded end.
    SIGKILL and SIGSTOP cannot be blocked. The job starts with an empty mask.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def _redirect_standard_streams() -> None:
    """Let go of the connection: the SSH session ends when these close."""
    null_fd = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null_fd, fd)
    if null_fd > 2:
        os.close(null_fd)


def _report(report_fd: int, message: bytes) -> None:
    try:
        os.write(report_fd, message)
        os.close(report_fd)
    except OSError:
        pass


def _payload_file(payload: bytes, directory: str) -> int:
    """The payload in a nameless file (gone once closed), positioned at its start for the module to read."""
    try:
        fd = _open_nameless_file(directory)
    except OSError as exc:
        raise _store.StoreError(
            f"cannot create the module payload file in {directory}: {exc.strerror or exc}; "
            "free space or set ansible_async_dir elsewhere"
        ) from exc
    try:
        _store.write_all(fd, payload)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError as exc:
        os.close(fd)
        problem = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise _store.StoreError(
            f"cannot write the module payload in {directory}: {problem}; free space or set ansible_async_dir elsewhere"
        ) from exc
    return fd


def _open_nameless_file(directory: str) -> int:
    tmpfile_flag = getattr(os, "O_TMPFILE", 0)
    if tmpfile_flag:
        try:
            return os.open(directory, tmpfile_flag | os.O_RDWR, _store.FILE_MODE)
        except OSError as exc:
            # File systems without O_TMPFILE support say so in several ways; a named file does the same.
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    fd, path = _store.create_private_file(directory, ".payload-")
    os.unlink(path)
    return fd


def _spawn(command: t.List[str], *, stdin_fd: int, stdout_fd: int, stderr_fd: int, environment: dict) -> int:
    """Start the job in a session of its own with the default signal mask and dispositions; returns its pid.

    posix_spawn where it reports exec failures, as glibc 2.26+ and macOS do: it spares the
    supervisor a fork and the subprocess import (about 5 ms of each launch). Elsewhere subprocess.
    """
    if _posix_spawn_reports_failures():
        _stop_inheriting_descriptors()
        return os.posix_spawnp(
            command[0],
            command,
            environment,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
                (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
                (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
            ],
            setsid=True,
            setsigmask=[],
            # Python ignores SIGPIPE and SIGXFSZ; exec keeps ignored signals ignored.
            setsigdef=[signal.SIGPIPE, signal.SIGXFSZ],
        )
    import subprocess  # pylint: disable=import-outside-toplevel

    # Not run_command: that returns only once the job has ended, and the supervisor must watch it run.
    process = subprocess.Popen(  # pylint: disable=consider-using-with,ansible-bad-function
        command,
        stdin=stdin_fd,
        stdout=stdout_fd,
        stderr=stderr_fd,
        start_new_session=True,
        preexec_fn=_unblock_signals,
        env=environment,
    )
    # The supervisor reaps the job itself; Popen must not try to.
    process.returncode = 0
    return process.pid


def _posix_spawn_reports_failures() -> bool:
    if not hasattr(os, "posix_spawnp") or not hasattr(os, "POSIX_SPAWN_DUP2"):
        return False
    if sys.platform == "darwin":
        return True
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return False
    name, _sep, version = libc.partition(" ")
    try:
        return name == "glibc" and tuple(int(part) for part in version.split(".")[:2]) >= (2, 26)
    except ValueError:
        return False


def _stop_inheriting_descriptors() -> None:
    """Keep whatever descriptors the supervisor inherited out of the job (Popen's close_fds)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the descriptor listdir used, closed since


class PreparedJob:
    """The job's program and descriptors, ready to start."""

    def __init__(self, command: t.List[str]) -> None:
        self.command = command
        self.environment: t.Dict[str, str] = {}
        self.stdin_fd: t.Optional[int] = None
        self.stdout_fd: t.Optional[int] = None
        self.stderr_fd: t.Optional[int] = None

    def start(self) -> int:
        """Start the job; returns its pid."""
        if self.stdin_fd is None or self.stdout_fd is None or self.stderr_fd is None:
            raise ValueError("the job's descriptors are not ready")
        return _spawn(
            self.command,
            stdin_fd=self.stdin_fd,
            stdout_fd=self.stdout_fd,
            stderr_fd=self.stderr_fd,
            environment=self.environment,
        )

    def close(self) -> None:
        for fd in (self.stdin_fd, self.stdout_fd, self.stderr_fd):
            if fd is not None:
                os.close(fd)
        self.stdin_fd = self.stdout_fd = self.stderr_fd = None


def _check_program(program: str, spec: LaunchSpec) -> None:
    """Refuse the launch when the program to run is missing or not executable, as exec would."""
    candidates = [program] if os.sep in program else [os.path.join(path, program) for path in os.get_exec_path()]
    problem = errno.ENOENT
    # An empty interpreter names no program at all.
    for candidate in candidates if program else []:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return
        if os.path.exists(candidate):
            problem = errno.EACCES
    raise LaunchError(_start_problem(spec, OSError(problem, os.strerror(problem))))


def _start_problem(spec: LaunchSpec, problem: OSError) -> str:
    reason = problem.strerror or str(problem)
    if spec.style == "binary":
        return f"cannot run the binary module: {reason}; build it for the target's platform"
    words = shlex.split(spec.interpreter)
    language = os.path.basename(words[0]) if words else "python"
    if language.startswith("python"):
        language = "python"
    return (
        f"cannot start the module with interpreter {spec.interpreter!r}: {reason}; "
        f"set ansible_{language}_interpreter to a working {'Python' if language == 'python' else language}"
    )


def _unblock_signals() -> None:
    """Runs in the job's process before exec: it must not inherit the supervisor's mask."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


class Supervisor:
    """Owns one job from start to its recorded end."""

    def __init__(self, spec: LaunchSpec, report_fd: t.Optional[int], *, record: t.Optional[_record.JobRecord] = None) -> None:
        self.spec = spec
        self.report_fd = report_fd
        self.job_pid: t.Optional[int] = None
        self.command: t.List[str] = []
        self.job_status: t.Optional[int] = None
        self.deadline = time.monotonic() + spec.timeout
        self.waited_signals = {signal.SIGCHLD, *KILL_REQUEST_SIGNALS}
        if record is not None:
            self.record = record
            return
        now = _record.utc_now()
        self.record = _record.JobRecord(
            jid=spec.jid,
            state=_record.RUNNING,
            pid=os.getpid(),
            pid_start_time=_proc.process_start_time(os.getpid()),
            boot_id=_proc.read_boot_id(),
            started_at=_record.format_time(now),
            deadline=_record.format_time(now + datetime.timedelta(seconds=spec.timeout)),
            timeout=spec.timeout,
            grace=spec.grace,
        )

    def run(self) -> int:
        block_signals()
        try:
            _store.write_record(self.spec.async_dir, self.record)
            job = self._prepare_job()
            # What a crash reports as cmd: the interpreter, not the boot program that feeds it the payload.
            self.command = shlex.split(self.spec.interpreter) if self.spec.style == "new" else list(job.command)
        except BaseException:
            _store.remove_job_files(self.spec.async_dir, self.spec.jid)
            raise
        # Everything that can refuse the launch has run: the launcher need not wait for the rest.
        self._release_launcher()
        _proc.become_child_subreaper()
        try:
            self.job_pid = job.start()
        except OSError as exc:
            self._record_start_failure(exc)
            return 0
        finally:
            job.close()
        self.record.job_pid = self.job_pid
        self.record.job_start_time = _proc.process_start_time(self.job_pid)
        _store.write_record(self.spec.async_dir, self.record)
        ending = self._wait_for_end()
        self._record_end(ending)
        return 0

    def _release_launcher(self) -> None:
        if self.report_fd is not None:
            _report(self.report_fd, READY + json.dumps(self.record.public()).encode("utf-8"))
            self.report_fd = None

    def _prepare_job(self) -> PreparedJob:
        """Create the job's files and check its program; raises LaunchError or StoreError when it cannot start."""
        spec = self.spec
        command = shlex.split(spec.interpreter)
        if spec.style == "new":
            _check_program(command[0] if command else "", spec)
        job = PreparedJob(command)
        try:
            job.stdout_fd = _store.open_side_file(spec.async_dir, spec.jid, ".stdout")
            job.stderr_fd = _store.open_side_file(spec.async_dir, spec.jid, ".stderr")
            # A private TMPDIR, removed when the job ends: a job killed at its limit leaves nothing in the system tmp.
            temp_dir = _store.create_work_dir(spec.async_dir, spec.jid)
            job.environment = dict(os.environ, TMPDIR=temp_dir)
            if spec.style == "new":
                # From a file, not a pipe: the module's interpreter reads it whenever it is ready.
                job.stdin_fd = _payload_file(spec.payload, temp_dir)
                job.command = command + ["-c", _NEW_STYLE_BOOT]
                return job
            module_path = self._write_side(".module", spec.payload, executable=spec.style == "binary")
            job.command = [module_path] if spec.style == "binary" else command + [module_path]
            _check_program(job.command[0], spec)
            job.command.append(self._write_side(".args", spec.args_data or b""))
            job.stdin_fd = os.open(os.devnull, os.O_RDONLY)
            return job
        except BaseException:
            job.close()
            raise

    def _record_start_failure(self, problem: OSError) -> None:
        """The program passed the checks but did not start (a bad binary, no memory): record it as a crash."""
        record = self.record
        record.state, record.reason = _record.FAILED, _record.REASON_MODULE_CRASHED
        record.msg = f"job {self.spec.jid} crashed: {_start_problem(self.spec, problem)}"
        record.result = {"failed": True, "msg": record.msg, "rc": -1}
        self._save_end(None)

    def _write_side(self, suffix: str, data: bytes, *, executable: bool = False) -> str:
        fd = _store.open_side_file(self.spec.async_dir, self.spec.jid, suffix)
        try:
            os.write(fd, data)
            if executable:
                os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
        return _store.side_path(self.spec.async_dir, self.spec.jid, suffix)

    def _note_reaped(self, reaped: t.Dict[int, int]) -> None:
        if self.job_pid is not None and self.job_pid in reaped:
            self.job_status = reaped[self.job_pid]

    def _sleep_for_signal(self, seconds: float) -> t.Optional[int]:
        if seconds <= 0:
            return None
        # Capped: a limit of years is more than the C timeout can hold; the callers loop.
        info = signal.sigtimedwait(self.waited_signals, min(seconds, _LONGEST_SLEEP))
        return None if info is None else info.si_signo

    def _wait_for_end(self) -> str:
        """Sleep until the job exits ('exited'), the deadline passes ('timeout') or a kill request ('killed')."""
        while True:
            self._note_reaped(_proc.reap_children())
            if self.job_status is not None:
                return "exited"
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            signo = self._sleep_for_signal(remaining)
            if signo in KILL_REQUEST_SIGNALS:
                return "killed"

    def _terminate(self, first_signal: int, grace: int) -> str:
        return _proc.terminate_tree(
            os.getpid(),
            process_group=self.job_pid,
            grace=grace,
            first_signal=first_signal,
            wait_for_change=self._sleep_for_signal,
            on_reaped=self._note_reaped,
        )

    def _kill_settings(self, ending: str) -> t.Tuple[int, int]:
        """The first signal and grace: the job's own, or those of a mode=kill request."""
        if ending == "killed":
            request = _store.read_kill_request(self.spec.async_dir, self.spec.jid)
            if request is not None:
                signum = getattr(signal, "SIG" + request[0], None)
                if isinstance(signum, int):
                    return signum, request[1]
        return signal.SIGTERM, self.spec.grace

    def _record_end(self, ending: str) -> None:
        record = self.record
        jid = self.spec.jid
        output: t.Optional[_module_output.ModuleResult] = None
        if ending == "exited":
            output = self._interpret_exit()
        else:
            first_signal, grace = self._kill_settings(ending)
            first_name = _proc.signal_name(first_signal)
            last_signal = self._terminate(first_signal, grace)
            record.signal = first_name
            escalation = "" if last_signal == first_name else f", then SIGKILL after {grace} s grace"
            if ending == "timeout":
                record.state, record.reason = _record.TIMED_OUT, _record.REASON_ASYNC_LIMIT
                record.msg = (
                    f"job {jid} timed out after {self.spec.timeout} s (async limit) "
                    f"and was terminated with {first_name}{escalation}"
                )
            else:
                record.state, record.reason = _record.KILLED, _record.REASON_KILL_REQUESTED
                record.msg = f"job {jid} was killed on request with {first_name}{escalation}"
            record.result = {"failed": True, "msg": record.msg, "changed": True}
        self._save_end(output)

    def _save_end(self, output: t.Optional[_module_output.ModuleResult]) -> None:
        """Remove the job's files and write its end record, with the module's result when it gave one."""
        record = self.record
        jid = self.spec.jid
        record.ended_at = _record.format_time(_record.utc_now())
        # Only the module's stdout is still needed, and only when its result is copied from there:
        # whoever sees the end record sees no other files of the job.
        _store.remove_work_dir(self.spec.async_dir, jid)
        _store.remove_side_files(
            self.spec.async_dir, jid, *(suffix for suffix in _store.SIDE_SUFFIXES if output is None or suffix != ".stdout")
        )
        try:
            if output is None:
                record.supervisor_max_rss = peak_rss_kib()
                _store.write_record(self.spec.async_dir, record)
            else:
                _store.write_document_chunks(self.spec.async_dir, jid, self._document_chunks(output))
        except (_store.StoreError, ValueError) as exc:
            # The captured output may be what filled the disk: free it before the short record.
            _store.remove_side_files(self.spec.async_dir, jid, ".stdout")
            self._record_unsaved_result(exc)
        finally:
            _store.remove_side_files(self.spec.async_dir, jid, ".stdout")

    def _document_chunks(self, output: _module_output.ModuleResult) -> t.Iterator[bytes]:
        """The ended record: the module's members copied from its output, then ours."""
        yield b"{"
        copied = False
        for chunk in output.member_chunks(skip=_record.ENVELOPE_KEYS | set(self.record.result or {})):
            copied = True
            yield chunk
        # Measured here, after the copy, so that the figure covers it.
        self.record.supervisor_max_rss = peak_rss_kib()
        path = _store.record_path(self.spec.async_dir, self.spec.jid)
        envelope = json.dumps(self.record.to_document(path), sort_keys=True).encode("utf-8")
        yield (b", " if copied else b"") + envelope[1:-1] + b"}"

    def _record_unsaved_result(self, problem: Exception) -> None:
        """Replace the end that could not be written with a short one that says so."""
        record = self.record
        if record.state == _record.SUCCEEDED:
            record.state, record.reason = _record.FAILED, _record.REASON_RESULT_NOT_SAVED
            record.msg = f"job {self.spec.jid} succeeded, but its result could not be saved: {problem}"
        else:
            record.msg = f"{record.msg}; its result could not be saved: {problem}"
        record.result = {"failed": True, "msg": record.msg}
        if record.exit_code is not None:
            record.result["rc"] = record.exit_code
        record.supervisor_max_rss = peak_rss_kib()
        _store.write_record(self.spec.async_dir, record)

    def _interpret_exit(self) -> t.Optional[_module_output.ModuleResult]:
        """Set the state from the module's exit; returns its JSON result, which is not loaded, when it gave one.

        The output is judged as ansible-core judges it: one JSON result, with anything
        after it dropped with core's warning, except more JSON, which fails the job.
        """
        record = self.record
        jid = self.spec.jid
        status = self.job_status if self.job_status is not None else 0
        if os.WIFSIGNALED(status):
            record.signal = _proc.signal_name(os.WTERMSIG(status))
        else:
            record.exit_code = os.WEXITSTATUS(status)
        found = None if record.signal else self._find_result()
        if found is not None and found.problem is None:
            summary = found.summary
            result = {key: summary[key] for key in _NORMALIZED_KEYS if key in summary}
            if found.junk is not None:
                result["warnings"] = _as_list(result.get("warnings", [])) + [JUNK_WARNING + found.junk]
            record.result = normalize_result(result)
            stderr = self._read_tail(".stderr", STDERR_BYTES)
            if stderr:
                # As stock's wrapper does, the module process's stderr replaces the module's own.
                record.result["stderr"] = stderr.decode("utf-8", "replace")
            if summary.get("failed"):
                record.state, record.reason = _record.FAILED, _record.REASON_MODULE_FAILED
                record.msg = _record.failure_sentence(jid, summary)
            else:
                record.state = _record.SUCCEEDED
            return found.output
        self._record_crash(found.problem if found is not None else None)
        return None

    def _record_crash(self, problem: t.Optional[str]) -> None:
        """No usable JSON result: the keys stock's wrapper gives (msg, cmd, data, stderr), and core's module_stdout/module_stderr."""
        record = self.record
        stdout = tail_text(self._read_tail(".stdout"))
        stderr = tail_text(self._read_tail(".stderr"))
        if problem is None:
            # Imported here, in the supervisor at the job's end: the launcher never needs it.
            # pylint: disable-next=import-outside-toplevel,redefined-outer-name
            from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _module_output

            path = _store.side_path(self.spec.async_dir, self.spec.jid, ".stdout")
            problem = "No start of json char found"
            if _module_output.has_line_starting_with_brace(path):
                problem = "no line of the output starts a valid JSON object"
        if record.signal:
            how = f"the module process was killed by {record.signal}"
        elif problem.startswith("Extra data"):
            how = f"the module printed more JSON after its result ({problem}), as when a broad except swallows exit_json"
        elif record.exit_code:
            how = f"the module exited with code {record.exit_code} without returning JSON ({problem})"
        else:
            how = f"the module did not return JSON ({problem})"
        record.state, record.reason = _record.FAILED, _record.REASON_MODULE_CRASHED
        record.msg = f"job {self.spec.jid} crashed: {how}"
        msg = record.msg
        last_error = _last_line(stderr)
        if last_error:
            msg += f"; its stderr ends with: {last_error}"
        record.result = {
            "failed": True,
            "msg": msg,
            "cmd": shlex.join(self.command),
            # Stock's name for the module's stdout.
            "data": stdout,
            "stderr": stderr,
            "module_stdout": stdout,
            "module_stderr": stderr,
            "rc": record.exit_code if record.exit_code is not None else -1,
        }

    def _find_result(self) -> t.Optional[FoundResult]:
        path = _store.side_path(self.spec.async_dir, self.spec.jid, ".stdout")
        try:
            # Imported here, in the supervisor at the job's end: the launcher never needs it.
            # pylint: disable-next=import-outside-toplevel,redefined-outer-name
            from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _module_output

            output = _module_output.find_result(path)
            if output is None:
                return None
            trailer = _module_output.judge_trailer(output)
            return FoundResult(output, output.small_values(_SUMMARY_KEYS), trailer.problem, trailer.junk)
        except (OSError, ValueError):
            return None

    def _read_tail(self, suffix: str, limit: int = TAIL_BYTES) -> bytes:
        try:
            with open(_store.side_path(self.spec.async_dir, self.spec.jid, suffix), "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - limit))
                return handle.read(limit)
        except OSError:
            return b""


def recover_end(async_dir: str, jid: str) -> t.Optional[_record.JobRecord]:
    """Record the end of a job whose supervisor died after its module exited, from the module's output.

    The caller has found the supervisor and the module process gone. Returns the ended
    record, or None when the output holds no result (the job is then lost).
    """
    # Imported here: only a job whose supervisor died needs it.
    import fcntl  # pylint: disable=import-outside-toplevel

    try:
        lock_fd = os.open(_store.side_path(async_dir, jid, ".stdout"), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        # Two readers may find the job at once: the second waits, then sees the end the first wrote.
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        record = _store.read_record(async_dir, jid)
        if record is None or record.state != _record.RUNNING:
            return record
        return _record_recovered_end(async_dir, record)
    finally:
        os.close(lock_fd)


def _record_recovered_end(async_dir: str, record: _record.JobRecord) -> t.Optional[_record.JobRecord]:
    jid = record.jid
    spec = LaunchSpec(
        jid=jid, async_dir=async_dir, timeout=record.timeout or 0, grace=record.grace or 0, interpreter="", payload=b""
    )
    supervisor = Supervisor(spec, None, record=record)
    # The exit status went with the supervisor that would have reaped the module.
    supervisor.job_status = 0
    output = supervisor._interpret_exit()  # pylint: disable=protected-access
    if output is None:
        return None
    record.exit_code = None
    note = (
        f"the supervisor of job {jid} (pid {record.pid}) died after the module ended; "
        "the result was recovered from the module's output, and its exit code is unknown"
    )
    record.msg = f"{record.msg}; {note}" if record.msg else note
    record.result = dict(record.result or {})
    record.result["warnings"] = list(record.result.get("warnings") or []) + [note]
    supervisor._save_end(output)  # pylint: disable=protected-access
    # Read back: the module's result went from its output to the file without being loaded.
    return _store.read_record(async_dir, jid)


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB (macOS reports bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def normalize_result(result: dict) -> dict:
    """Turn warnings and deprecations into plain strings so any core can read them back."""
    for key in ("warnings", "deprecations"):
        if key in result:
            result[key] = [_message_text(item) for item in _as_list(result[key])]
    return result


def _as_list(value: t.Any) -> list:
    return value if isinstance(value, list) else [value]


def _message_text(item: t.Any) -> str:
    if isinstance(item, dict):
        for key in ("msg", "message"):
            if isinstance(item.get(key), str):
                return item[key]
        details = item.get("details")
        if isinstance(details, list) and details and isinstance(details[0], dict):
            return str(details[0].get("msg", item))
    return str(item)


def _last_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-limit:] if lines else ""


def tail_text(data: bytes, limit: int = TAIL_BYTES) -> str:
    if len(data) > limit:
        data = data[-limit:]
    return data.decode("utf-8", "replace")
