# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Launching a job: the launcher's side of the handshake with the supervisor it starts.

Three processes take part, each with its own function:
- the launcher (the target agent serving a launch) forks, waits for a one-line
  report from the supervisor and returns the job's first record;
- an intermediate child starts a new session and forks again, so that the
  supervisor is detached from the connection and cannot regain a terminal;
- the supervisor (supervise.py) prepares and starts the job, reports ``ready``
  with the job's first record, or why it cannot start, and watches the job.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time

from ansible_collections.longrun.jobs.plugins.module_utils._timing import LAUNCH_REPORT_TIMEOUT

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._job import supervise as _supervise

READY = b"ready\n"


class LaunchError(Exception):
    """The job could not be started; the message says why."""


class LaunchSpec:
    """Everything the supervisor needs to run one module.

    A plain class, not a dataclass: that import alone would cost each launch about 9 ms.
    """

    __slots__ = (
        "jid", "async_dir", "timeout", "grace", "interpreter", "payload", "style", "args_data", "no_log", "command",
        "name", "locks", "lock_timeout", "lease",
    )

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
        no_log: bool = False,
        command: t.Optional[dict] = None,
        name: t.Optional[str] = None,
        locks: t.Optional[t.List[str]] = None,
        lock_timeout: t.Optional[int] = None,
        lease: t.Optional[int] = None,
    ) -> None:
        self.jid = jid
        self.async_dir = async_dir
        self.timeout = timeout
        self.grace = grace
        self.interpreter = interpreter
        self.payload = payload
        self.style = style
        self.args_data = args_data
        self.no_log = no_log
        # Style "command": the parameters of the command executor (command_exec.py).
        self.command = command
        # The job's name (claimed by the launcher before the launch), or None.
        self.name = name
        # Locks to take before the job starts, held until it ends; waiting at most lock_timeout seconds.
        self.locks = list(locks or [])
        self.lock_timeout = lock_timeout
        # on_controller_loss: kill: the seconds a controller's wait keeps the job's lease; None: keep.
        self.lease = lease


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
    supervisor: t.Optional[_supervise.Supervisor] = None
    # Before anything else: from here on, no signal may end the supervisor unnoticed.
    block_signals()
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        _redirect_standard_streams()
        # Imported in the supervisor's process: the launcher never runs it.
        # pylint: disable-next=import-outside-toplevel,redefined-outer-name
        from ansible_collections.longrun.jobs.plugins.module_utils._job import supervise as _supervise

        supervisor = _supervise.Supervisor(spec, report_fd)
        exit_code = supervisor.run()
    except BaseException as exc:  # pylint: disable=broad-except
        # Once the launcher is released its descriptor number may be reused: report only before.
        if supervisor is None or supervisor.report_fd is not None:
            report(report_fd, str(exc).encode("utf-8", "replace"))
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


def report_ready(report_fd: int, first_record: dict) -> None:
    """Release the launcher: the job starts, and this is its first record."""
    report(report_fd, READY + json.dumps(first_record).encode("utf-8"))


def report(report_fd: int, message: bytes) -> None:
    """Send the launcher its one report and close the pipe."""
    try:
        os.write(report_fd, message)
        os.close(report_fd)
    except OSError:
        pass
