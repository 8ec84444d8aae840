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

import dataclasses
import datetime
import errno
import json
import os
import resource
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils import _proc, _record, _store

if t.TYPE_CHECKING:  # pragma: no cover - annotations only
    from ansible_collections.longrun.jobs.plugins.module_utils import _module_output

READY = b"ready\n"
_REPORT_TIMEOUT = 60.0
# Caps of captured output kept when a module crashes.
TAIL_BYTES = 4096
# Signals that ask the supervisor to end the job: recorded as killed.
KILL_REQUEST_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# Result keys the supervisor decodes; everything else is copied into the record unread.
_NORMALIZED_KEYS = ("warnings", "deprecations")
_SUMMARY_KEYS = ("failed", "msg", "rc") + _NORMALIZED_KEYS


class LaunchError(Exception):
    """The job could not be started; the message says why."""


@dataclasses.dataclass
class LaunchSpec:
    """Everything the supervisor needs to run one module."""

    jid: str
    async_dir: str
    timeout: int
    grace: int
    interpreter: str
    payload: bytes
    style: str = "new"
    args_data: t.Optional[bytes] = None


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
    deadline = time.monotonic() + _REPORT_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"the supervisor did not report within 60 s"
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


def _payload_file(payload: bytes, directory: str) -> t.BinaryIO:
    """The payload in a nameless file (gone once closed), positioned at its start for the module to read."""
    try:
        handle = tempfile.TemporaryFile(dir=directory)
    except OSError as exc:
        raise _store.StoreError(
            f"cannot create the module payload file in {directory}: {exc.strerror or exc}; "
            "free space or set ansible_async_dir elsewhere"
        ) from exc
    try:
        handle.write(payload)
        handle.flush()
        handle.seek(0)
    except OSError as exc:
        handle.close()
        problem = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise _store.StoreError(
            f"cannot write the module payload in {directory}: {problem}; free space or set ansible_async_dir elsewhere"
        ) from exc
    return handle


def _unblock_signals() -> None:
    """Runs in the job's process before exec: it must not inherit the supervisor's mask."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


class Supervisor:
    """Owns one job from start to its recorded end."""

    def __init__(self, spec: LaunchSpec, report_fd: int) -> None:
        self.spec = spec
        self.report_fd: t.Optional[int] = report_fd
        self.job: t.Optional[subprocess.Popen] = None
        self.job_status: t.Optional[int] = None
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
        self.deadline = time.monotonic() + spec.timeout
        self.waited_signals = {signal.SIGCHLD, *KILL_REQUEST_SIGNALS}

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.waited_signals)
        _proc.become_child_subreaper()
        try:
            _store.write_record(self.spec.async_dir, self.record)
            self.job = self._start_job()
        except BaseException:
            _store.remove_job_files(self.spec.async_dir, self.spec.jid)
            raise
        self.record.job_pid = self.job.pid
        self.record.job_start_time = _proc.process_start_time(self.job.pid)
        _store.write_record(self.spec.async_dir, self.record)
        self._release_launcher()
        ending = self._wait_for_end()
        self._record_end(ending)
        return 0

    def _release_launcher(self) -> None:
        if self.report_fd is not None:
            _report(self.report_fd, READY + json.dumps(self.record.public()).encode("utf-8"))
            self.report_fd = None

    def _start_job(self) -> subprocess.Popen:
        spec = self.spec
        stdout_fd = _store.open_side_file(spec.async_dir, spec.jid, ".stdout")
        stderr_fd = _store.open_side_file(spec.async_dir, spec.jid, ".stderr")
        # A private TMPDIR, removed when the job ends: a job killed at its limit leaves nothing in the system tmp.
        temp_dir = _store.create_work_dir(spec.async_dir, spec.jid)
        environment = dict(os.environ, TMPDIR=temp_dir)
        command = shlex.split(spec.interpreter)
        stdin: t.Any = subprocess.DEVNULL
        try:
            if spec.style == "new":
                # From a file, not a pipe: the launcher is released without waiting for the
                # module's interpreter to start and read the payload.
                stdin = _payload_file(spec.payload, temp_dir)
            else:
                command.append(self._write_side(".module", spec.payload, executable=spec.style == "binary"))
                if spec.style == "binary":
                    command = command[-1:]
                command.append(self._write_side(".args", spec.args_data or b""))
            # Not run_command: that returns only once the job has ended, and the supervisor must watch it run.
            return subprocess.Popen(  # pylint: disable=consider-using-with,ansible-bad-function
                command,
                stdin=stdin,
                stdout=stdout_fd,
                stderr=stderr_fd,
                start_new_session=True,
                preexec_fn=_unblock_signals,
                env=environment,
            )
        except OSError as exc:
            raise LaunchError(
                f"cannot start the module with interpreter {spec.interpreter!r}: {exc.strerror or exc}; "
                "set ansible_python_interpreter to a working Python"
            ) from exc
        finally:
            os.close(stdout_fd)
            os.close(stderr_fd)
            if stdin is not subprocess.DEVNULL:
                stdin.close()

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
        if self.job is not None and self.job.pid in reaped:
            self.job_status = reaped[self.job.pid]
            self.job.returncode = 0  # tell Popen the child is gone, we reaped it ourselves

    def _sleep_for_signal(self, seconds: float) -> t.Optional[int]:
        if seconds <= 0:
            return None
        info = signal.sigtimedwait(self.waited_signals, seconds)
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
            process_group=self.job.pid if self.job is not None else None,
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
        """Set the state from the module's exit; returns its JSON result, which is not loaded, when it gave one."""
        record = self.record
        jid = self.spec.jid
        status = self.job_status if self.job_status is not None else 0
        if os.WIFSIGNALED(status):
            record.signal = _proc.signal_name(os.WTERMSIG(status))
        else:
            record.exit_code = os.WEXITSTATUS(status)
        output = None if record.signal else self._find_result()
        if output is not None:
            summary = output[1]
            record.result = normalize_result({key: summary[key] for key in _NORMALIZED_KEYS if key in summary})
            if summary.get("failed"):
                record.state, record.reason = _record.FAILED, _record.REASON_MODULE_FAILED
                record.msg = _record.failure_sentence(jid, summary)
            else:
                record.state = _record.SUCCEEDED
            return output[0]
        record.state, record.reason = _record.FAILED, _record.REASON_MODULE_CRASHED
        if record.signal:
            how = f"the module process was killed by {record.signal}"
        elif record.exit_code:
            how = f"the module exited with code {record.exit_code} without returning JSON"
        else:
            how = "the module did not return JSON"
        record.msg = f"job {jid} crashed: {how}"
        record.result = {
            "failed": True,
            "msg": record.msg,
            "module_stdout": tail_text(self._read_tail(".stdout")),
            "module_stderr": tail_text(self._read_tail(".stderr")),
            "rc": record.exit_code if record.exit_code is not None else -1,
        }
        return None

    def _find_result(self) -> t.Optional[t.Tuple[_module_output.ModuleResult, t.Dict[str, t.Any]]]:
        path = _store.side_path(self.spec.async_dir, self.spec.jid, ".stdout")
        try:
            # Imported here, in the supervisor at the job's end: the launcher never needs it.
            # pylint: disable-next=import-outside-toplevel,redefined-outer-name
            from ansible_collections.longrun.jobs.plugins.module_utils import _module_output

            output = _module_output.find_result(path)
            if output is None:
                return None
            return output, output.small_values(_SUMMARY_KEYS)
        except (OSError, ValueError):
            return None

    def _read_tail(self, suffix: str) -> bytes:
        try:
            with open(_store.side_path(self.spec.async_dir, self.spec.jid, suffix), "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - TAIL_BYTES))
                return handle.read(TAIL_BYTES)
        except OSError:
            return b""


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


def tail_text(data: bytes, limit: int = TAIL_BYTES) -> str:
    if len(data) > limit:
        data = data[-limit:]
    return data.decode("utf-8", "replace")
