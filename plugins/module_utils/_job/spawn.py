# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Starting the job's process: its files, descriptors and program, checked before the launcher is released."""

from __future__ import annotations

import errno
import os
import shlex
import signal
import sys

from ansible_collections.longrun.jobs.plugins.module_utils._job import progress as _progress
from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._job.handshake import LaunchError

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._job import command_exec as _command_exec
    from ansible_collections.longrun.jobs.plugins.module_utils._job.handshake import LaunchSpec

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


# The job starts with these at their default action, whatever the launcher inherited: the signals that
# the async limit and mode=kill send must act on it as documented.
_DEFAULT_SIGNALS = (
    signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
    signal.SIGUSR2,
)


class PreparedJob:
    """The job's program and descriptors, ready to start."""

    def __init__(self, command: t.List[str]) -> None:
        self.command = command
        # What a crash reports as cmd: for a new-style module the interpreter, not the boot program that feeds it.
        self.shown_command: t.List[str] = list(command)
        self.environment: t.Dict[str, str] = {}
        self.stdin_fd: t.Optional[int] = None
        self.stdout_fd: t.Optional[int] = None
        self.stderr_fd: t.Optional[int] = None
        # The progress file, appended to: the job gets it as _progress.PROGRESS_FD.
        self.progress_fd: t.Optional[int] = None
        # Style "command": what the command executor runs (or the result that ends the job at once).
        self.command_plan: t.Optional[_command_exec.CommandPlan] = None

    def start(self) -> int:
        """Start the job; returns its pid."""
        if self.stdin_fd is None or self.stdout_fd is None or self.stderr_fd is None:
            raise ValueError("the job's descriptors are not ready")
        return _spawn(
            self.command,
            stdin_fd=self.stdin_fd,
            stdout_fd=self.stdout_fd,
            stderr_fd=self.stderr_fd,
            progress_fd=self.progress_fd,
            environment=self.environment,
        )

    def close(self) -> None:
        for fd in (self.stdin_fd, self.stdout_fd, self.stderr_fd, self.progress_fd):
            if fd is not None:
                os.close(fd)
        self.stdin_fd = self.stdout_fd = self.stderr_fd = self.progress_fd = None


def prepare_job(spec: LaunchSpec) -> PreparedJob:
    """Create the job's files and check its program; raises LaunchError or StoreError when it cannot start."""
    if spec.style == "command":
        return _prepare_command(spec)
    command = shlex.split(spec.interpreter)
    if spec.style == "new":
        _check_program(command[0] if command else "", spec)
    job = PreparedJob(command)
    try:
        temp_dir = _open_job_files(spec, job)
        job.environment = dict(os.environ, TMPDIR=temp_dir, **_progress.job_environment(spec.async_dir, spec.jid))
        if spec.style == "new":
            # From a file, not a pipe: the module's interpreter reads it whenever it is ready.
            job.stdin_fd = _payload_file(spec.payload, temp_dir)
            job.command = command + ["-c", _NEW_STYLE_BOOT]
            return job
        module_path = _write_side(spec, ".module", spec.payload, executable=spec.style == "binary")
        job.command = [module_path] if spec.style == "binary" else command + [module_path]
        _check_program(job.command[0], spec)
        job.command.append(_write_side(spec, ".args", spec.args_data or b""))
        job.shown_command = list(job.command)
        job.stdin_fd = os.open(os.devnull, os.O_RDONLY)
        return job
    except BaseException:
        job.close()
        raise


def _open_job_files(spec: LaunchSpec, job: PreparedJob) -> str:
    """Open the job's output and progress files into job; returns its private TMPDIR.

    The TMPDIR is removed when the job ends: a job killed at its limit leaves nothing in the system tmp.
    """
    job.stdout_fd = _store.open_side_file(spec.async_dir, spec.jid, ".stdout")
    job.stderr_fd = _store.open_side_file(spec.async_dir, spec.jid, ".stderr")
    job.progress_fd = _above_job_descriptors(
        _store.open_side_file(spec.async_dir, spec.jid, _progress.SUFFIX, append=True)
    )
    return _store.create_work_dir(spec.async_dir, spec.jid)


def _prepare_command(spec: LaunchSpec) -> PreparedJob:
    """The command executor's job: the command's own stdout and stderr are the side files."""
    # Imported here: module jobs never load it.
    # pylint: disable-next=import-outside-toplevel,redefined-outer-name
    from ansible_collections.longrun.jobs.plugins.module_utils._job import command_exec as _command_exec

    job = PreparedJob([])
    try:
        temp_dir = _open_job_files(spec, job)
        # The module's process would get this TMPDIR, and its command inherit it; the command reports progress itself.
        job.environment = _command_exec.command_environment(
            dict(os.environ, TMPDIR=temp_dir, **_progress.job_environment(spec.async_dir, spec.jid))
        )
        try:
            plan = _command_exec.plan_command(spec.command, temp_dir=temp_dir)
        except _command_exec.CommandError as exc:
            raise LaunchError(str(exc)) from None
        job.command_plan = plan
        job.command = list(plan.argv)
        job.shown_command = list(plan.argv)
        if plan.stdin:
            # From a nameless file, as the module's payload: the command reads it whenever it is ready.
            job.stdin_fd = _payload_file(plan.stdin, temp_dir)
        else:
            job.stdin_fd = os.open(os.devnull, os.O_RDONLY)
        return job
    except BaseException:
        job.close()
        raise


def start_problem(spec: LaunchSpec, problem: OSError, program: str = "") -> str:
    """Why the module's program (or the executor's command, program) cannot run, and what to set."""
    if spec.style == "command":
        return f"cannot execute the command {program!r}: {problem.strerror or problem}; check the command and its PATH"
    words = shlex.split(spec.interpreter) if spec.style != "binary" else []
    language = os.path.basename(words[0]) if words else "python"
    if language.startswith("python"):
        language = "python"
    return _sentences.start_problem(
        style=spec.style, language=language, interpreter=spec.interpreter, reason=problem.strerror or str(problem)
    )


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
    raise LaunchError(start_problem(spec, OSError(problem, os.strerror(problem))))


def _write_side(spec: LaunchSpec, suffix: str, data: bytes, *, executable: bool = False) -> str:
    fd = _store.open_side_file(spec.async_dir, spec.jid, suffix)
    try:
        os.write(fd, data)
        if executable:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return _store.side_path(spec.async_dir, spec.jid, suffix)


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


def _above_job_descriptors(fd: int) -> int:
    """The same open file on a descriptor above the numbers the job gets (0-2, PROGRESS_FD), not inherited.

    Copying it to its number in the job then never overwrites another descriptor the job still needs.
    """
    # Imported here: fcntl is a small builtin, only the launch needs it.
    import fcntl  # pylint: disable=import-outside-toplevel

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _progress.PROGRESS_FD + 3)
    finally:
        os.close(fd)


def _spawn(
    command: t.List[str],
    *,
    stdin_fd: int,
    stdout_fd: int,
    stderr_fd: int,
    environment: dict,
    progress_fd: t.Optional[int] = None,
) -> int:
    """Start the job in a session of its own with the default signal mask and dispositions; returns its pid.

    The job gets stdin_fd, stdout_fd and stderr_fd as 0-2 and progress_fd (above PROGRESS_FD) as
    PROGRESS_FD; no other descriptor of the supervisor. posix_spawn where it reports exec failures,
    as glibc 2.26+ and macOS do: it spares the supervisor a fork and the subprocess import (about
    5 ms of each launch). Elsewhere subprocess.
    """
    if _posix_spawn_reports_failures():
        _stop_inheriting_descriptors()
        file_actions = [
            (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
            (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
            (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
        ]
        if progress_fd is not None:
            # After 0-2: a standard descriptor numbered PROGRESS_FD has been copied by then.
            file_actions.append((os.POSIX_SPAWN_DUP2, progress_fd, _progress.PROGRESS_FD))
        # Not run_command: that returns only once the job has ended, and the supervisor must watch it run.
        return os.posix_spawnp(  # pylint: disable=ansible-bad-function
            command[0],
            command,
            environment,
            file_actions=file_actions,
            setsid=True,
            setsigmask=[],
            # Python ignores SIGPIPE and SIGXFSZ, and a launcher started under nohup or in a shell's background
            # ignores SIGHUP or SIGINT: exec keeps ignored signals ignored.
            setsigdef=_DEFAULT_SIGNALS,
        )
    import subprocess  # pylint: disable=import-outside-toplevel

    moved: t.List[int] = []
    pass_fds: t.Tuple[int, ...] = ()
    saved = None
    if progress_fd is not None:
        # Popen passes descriptors under their own number: the supervisor holds the file there while it
        # starts the job, and then gets back whatever it had there (a standard descriptor of the job too).
        saved = _saved_descriptor(_progress.PROGRESS_FD)
        stdin_fd, stdout_fd, stderr_fd = (_free_progress_number(fd, moved) for fd in (stdin_fd, stdout_fd, stderr_fd))
        os.dup2(progress_fd, _progress.PROGRESS_FD, inheritable=False)
        pass_fds = (_progress.PROGRESS_FD,)
    try:
        # Not run_command: that returns only once the job has ended, and the supervisor must watch it run.
        process = subprocess.Popen(  # pylint: disable=consider-using-with,ansible-bad-function
            command,
            stdin=stdin_fd,
            stdout=stdout_fd,
            stderr=stderr_fd,
            start_new_session=True,
            preexec_fn=_unblock_signals,
            pass_fds=pass_fds,
            env=environment,
        )
    finally:
        for fd in moved:
            os.close(fd)
        if saved is not None:
            os.dup2(saved[0], _progress.PROGRESS_FD, inheritable=saved[1])
            os.close(saved[0])
        elif pass_fds:
            os.close(_progress.PROGRESS_FD)
    # The supervisor reaps the job itself; Popen must not try to.
    process.returncode = 0
    return process.pid


def _saved_descriptor(fd: int) -> t.Optional[t.Tuple[int, bool]]:
    """A copy of what descriptor fd holds (with whether it was inheritable), or None when it is not open."""
    try:
        inheritable = os.get_inheritable(fd)
    except OSError:
        return None
    copy = os.dup(fd)
    return copy, inheritable


def _free_progress_number(fd: int, moved: t.List[int]) -> int:
    """fd, or a copy of it when it is PROGRESS_FD, which the progress file is about to take (the copy joins moved)."""
    if fd != _progress.PROGRESS_FD:
        return fd
    copy = os.dup(fd)
    moved.append(copy)
    return copy


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


def _unblock_signals() -> None:
    """Runs in the job's process before exec: it must not inherit the supervisor's mask or ignored signals."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for signum in _DEFAULT_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
