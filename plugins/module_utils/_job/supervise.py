# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The supervisor: owns one job from its running record to its recorded end.

It writes the running record, starts the module in a session of its own,
releases the launcher, sleeps until the module exits, the deadline comes, a
kill is requested or (on_controller_loss: kill) the job's lease expires, ends
the process tree when it must, and records the end.
A job with locks (locks.py) is first recorded waiting, released, and started
once its supervisor holds them all; they go with the supervisor's exit.
"""

from __future__ import annotations

import datetime
import os
import signal
import time

from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import lease as _lease
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import progress as _progress
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import spawn as _spawn
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._job import locks as _locks

# Signals that ask the supervisor to end the job: recorded as killed.
KILL_REQUEST_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
_LONGEST_SLEEP = 86400.0


class Supervisor:
    """Owns one job from start to its recorded end."""

    def __init__(self, spec: _handshake.LaunchSpec, report_fd: t.Optional[int]) -> None:
        self.spec = spec
        self.report_fd = report_fd
        self.job_pid: t.Optional[int] = None
        self.command: t.List[str] = []
        self.job_status: t.Optional[int] = None
        # Style "command": what the command executor runs, and when the supervisor saw the command end.
        self.command_plan: t.Optional[t.Any] = None
        self.command_ended: t.Optional[datetime.datetime] = None
        self.deadline = time.monotonic() + spec.timeout
        # The job's locks (lock option), held from the moment they are all taken until the supervisor exits.
        self.locks: t.Optional[_locks.LockSet] = None
        # Why a job that waited for its locks never started: "lock_timeout", "killed" or "controller_lost".
        self.ending = ""
        # on_controller_loss: kill: when the job's lease expires (epoch seconds), as last read; None: no lease.
        self.lease_expires: t.Optional[float] = None
        self.waited_signals = {signal.SIGCHLD, *KILL_REQUEST_SIGNALS}
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
            no_log=spec.no_log or None,
            executor="command" if spec.style == "command" else None,
            name=spec.name,
            on_controller_loss="kill" if spec.lease is not None else None,
        )

    def run(self) -> int:
        _handshake.block_signals()
        busy = None
        try:
            if self.spec.locks:
                busy = self._open_locks()
            _store.write_record(self.spec.async_dir, self.record)
            if self.spec.lease is not None:
                self.lease_expires = _lease.start_lease(self.spec.async_dir, self.spec.jid, self.spec.lease)
            job = _spawn.prepare_job(self.spec)
            if self.locks is not None:
                job.environment.update(self.locks.environment)
            self.command = job.shown_command
            self.command_plan = job.command_plan
        except BaseException:
            _store.remove_job_files(self.spec.async_dir, self.spec.jid)
            raise
        # Everything that can refuse the launch has run: the launcher need not wait for the rest.
        self._release_launcher()
        if self.command_plan is not None and self.command_plan.ends_at_once:
            job.close()
            self._record_command_end_at_once()
            return 0
        if busy is not None:
            busy = self._wait_for_locks(busy)
            if busy is not None:
                job.close()
                self._record_not_started(busy)
                return 0
            self._start_clock()
        _proc.become_child_subreaper()
        try:
            if self.command_plan is not None:
                # The module's start: just before its run_command.
                self.command_plan.started = datetime.datetime.now()
            self.job_pid = job.start()
        except OSError as exc:
            self._record_start_failure(exc)
            return 0
        finally:
            job.close()
        self.record.job_pid = self.job_pid
        self.record.job_start_time = _proc.process_start_time(self.job_pid)
        try:
            _store.write_record(self.spec.async_dir, self.record)
        except _store.StoreError:
            # The disk filled (the job may fill it) or turned read-only: the record that says
            # running stays, and the watch goes on, so that the end is still recorded.
            pass
        ending = self._wait_for_end()
        self._record_end(ending)
        return 0

    def _open_locks(self) -> t.Optional[_locks.Busy]:
        """Open the job's locks (refusing the launch when one cannot be used) and take those that are free."""
        # Imported here: jobs without locks never load it.
        # pylint: disable-next=import-outside-toplevel,redefined-outer-name
        from ansible_collections.longrun.jobs.plugins.module_utils._job import locks as _locks

        self.locks = _locks.LockSet(self.spec.async_dir, self.spec.locks, self.spec.jid)
        self.record.locks = list(self.locks.names)
        busy = self.locks.take()
        if busy is not None:
            self.record.wait_for_locks(busy.as_dict())
        return busy

    def _wait_for_locks(self, busy: _locks.Busy) -> t.Optional[_locks.Busy]:
        """Try the locks until all are held (None), lock_timeout passes or a kill request comes (the busy lock).

        self.ending says which: "lock_timeout", "killed" or (no controller renewed the lease) "controller_lost".
        """
        # pylint: disable-next=import-outside-toplevel,redefined-outer-name
        from ansible_collections.longrun.jobs.plugins.module_utils._job import locks as _locks

        lock_set = self.locks
        if lock_set is None:
            return None
        seconds = self.spec.lock_timeout if self.spec.lock_timeout is not None else self.spec.timeout
        give_up_at = time.monotonic() + seconds
        while True:
            remaining = give_up_at - time.monotonic()
            if remaining <= 0:
                self.ending = "lock_timeout"
                return busy
            # Non-blocking tries between sleeps that a kill request ends at once.
            if self._sleep_for_signal(min(_locks.POLL_INTERVAL, remaining)) in KILL_REQUEST_SIGNALS:
                self.ending = "killed"
                return busy
            lease_left = self.lease_remaining()
            if lease_left is not None and lease_left <= 0:
                self.ending = "controller_lost"
                return busy
            latest = lock_set.take()
            if latest is None:
                return None
            if latest.as_dict() != busy.as_dict():
                self.record.waiting_for = latest.as_dict()
                try:
                    _store.write_record(self.spec.async_dir, self.record)
                except _store.StoreError:
                    # Who holds the lock is news, not the job's state: the wait goes on.
                    pass
            busy = latest

    def _start_clock(self) -> None:
        """All locks are held: the job starts now, and so does its async limit."""
        now = _record.utc_now()
        self.deadline = time.monotonic() + self.spec.timeout
        self.record.start_after_locks(
            _record.format_time(now), _record.format_time(now + datetime.timedelta(seconds=self.spec.timeout))
        )

    def _record_not_started(self, busy: _locks.Busy) -> None:
        """The locks were not all taken (lock_timeout, or a kill request): the job never ran."""
        # pylint: disable-next=import-outside-toplevel
        from ansible_collections.longrun.jobs.plugins.module_utils._job import outcome as _outcome

        if self.ending == "killed":
            self.record.kill_waiting(busy.describe())
        elif self.ending == "controller_lost":
            self.record.lose_controller_waiting(self.spec.lease, busy.describe())
        else:
            seconds = self.spec.lock_timeout if self.spec.lock_timeout is not None else self.spec.timeout
            self.record.time_out_waiting(busy.describe(), seconds)
        _outcome.save_end(self.spec.async_dir, self.record, None)

    def _release_launcher(self) -> None:
        if self.report_fd is not None:
            _handshake.report_ready(self.report_fd, self.record.public())
            self.report_fd = None

    def _record_start_failure(self, problem: OSError) -> None:
        """The program passed the checks but did not start (a bad binary, no memory): record it as a crash."""
        # Imported here, at the job's end: the launch never loads it.
        from ansible_collections.longrun.jobs.plugins.module_utils._job import outcome as _outcome  # pylint: disable=import-outside-toplevel

        self.record.crash(_spawn.start_problem(self.spec, problem, self.command[0] if self.command else ""))
        _outcome.save_end(self.spec.async_dir, self.record, None, keep_output=self.command_plan is not None)

    def _record_command_end_at_once(self) -> None:
        """The command executor's job ended before running anything (creates/removes, a failed chdir)."""
        # pylint: disable=import-outside-toplevel
        from ansible_collections.longrun.jobs.plugins.module_utils._job import command_exec as _command_exec
        from ansible_collections.longrun.jobs.plugins.module_utils._job import outcome as _outcome

        # pylint: enable=import-outside-toplevel

        _command_exec.end_at_once(self.record, self.command_plan)
        _outcome.save_end(self.spec.async_dir, self.record, None, keep_output=True)

    def _note_reaped(self, reaped: t.Dict[int, int]) -> None:
        if self.job_pid is not None and self.job_pid in reaped:
            self.job_status = reaped[self.job_pid]
            if self.command_ended is None:
                self.command_ended = datetime.datetime.now()

    def _sleep_for_signal(self, seconds: float) -> t.Optional[int]:
        if seconds <= 0:
            return None
        # Capped: a limit of years is more than the C timeout can hold; the callers loop.
        info = signal.sigtimedwait(self.waited_signals, min(seconds, _LONGEST_SLEEP))
        return None if info is None else info.si_signo

    def _wait_for_end(self) -> str:
        """Sleep until the job exits ('exited'), the deadline passes ('timeout'), a kill request ('killed')
        or the lease expires ('controller_lost')."""
        while True:
            self._note_reaped(_proc.reap_children())
            if self.job_status is not None:
                return "exited"
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            lease_left = self.lease_remaining()
            if lease_left is not None:
                if lease_left <= 0:
                    return "controller_lost"
                remaining = min(remaining, lease_left)
            signo = self._sleep_for_signal(remaining)
            if signo in KILL_REQUEST_SIGNALS:
                return "killed"

    def lease_remaining(self) -> t.Optional[float]:
        """Seconds until the job's lease expires (0 or less: expired, no controller renewed it); None: no lease.

        Cheap while the lease runs: its file is read again only once the lease last read has expired.
        """
        if self.lease_expires is None:
            return None
        left = self.lease_expires - time.time()
        if left > 0:
            return left
        self.lease_expires = _lease.lease_expiry(self.spec.async_dir, self.spec.jid, known=self.lease_expires)
        return self.lease_expires - time.time()

    def _terminate(self, first_signal: int, grace: int) -> str:
        # The supervisor is the subreaper of the job's tree: its descendants are the tree, escapees included.
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
        # Imported here, at the job's end: the launch never loads it.
        from ansible_collections.longrun.jobs.plugins.module_utils._job import outcome as _outcome  # pylint: disable=import-outside-toplevel

        output = None
        if ending == "exited" and self.command_plan is not None:
            # pylint: disable-next=import-outside-toplevel
            from ansible_collections.longrun.jobs.plugins.module_utils._job import command_exec as _command_exec

            output = _command_exec.end_after_exit(
                self.record, self.spec.async_dir, self.command_plan, self.job_status or 0,
                self.command_ended or datetime.datetime.now(),
            )
        elif ending == "exited":
            status = self.job_status if self.job_status is not None else 0
            output = _outcome.interpret_exit(self.record, self.spec.async_dir, self.command, status)
        else:
            first_signal, grace = self._kill_settings(ending)
            last_signal = self._terminate(first_signal, grace)
            if ending == "timeout":
                self.record.time_out(_proc.signal_name(first_signal), last_signal, grace)
            elif ending == "controller_lost":
                self.record.lose_controller(self.spec.lease, _proc.signal_name(first_signal), last_signal, grace)
            else:
                self.record.kill(_proc.signal_name(first_signal), last_signal, grace)
        # The end removes the progress file: the record keeps its last report.
        self.record.progress = _progress.read_progress(self.spec.async_dir, self.spec.jid, ended=True)
        # The command executor's output files are the command's own: they stay (async_status reads them).
        _outcome.save_end(self.spec.async_dir, self.record, output, keep_output=self.command_plan is not None)
