# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Storage of job records: the only code that touches the async directory.

Every path it builds is the async dir joined with a validated jid, so nothing
outside the async dir is ever read, written or removed.
"""

from __future__ import annotations

import errno
import json
import os
import stat

from ansible_collections.longrun.jobs.plugins.module_utils._job.record import (
    JobRecord,
    is_jid,
    record_from_document,
    validate_jid,
)

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

DIR_MODE = 0o700
FILE_MODE = 0o600
# Side files of a job: captured output, for non-Python modules the payload,
# the kill request that mode=kill leaves for the supervisor, the job's progress reports,
# and the lease that the controllers' waits renew (on_controller_loss: kill).
SIDE_SUFFIXES = (".stdout", ".stderr", ".module", ".args", ".kill", ".progress", ".lease")
# The job's private work dir, whose tmp/ is its TMPDIR; removed when the job ends.
WORK_SUFFIX = ".work"
_TEMP_PREFIX = ".tmp-"


class StoreError(Exception):
    """The async dir or a record cannot be used; the message says why and what to do."""


class RecordUnreadable(StoreError):
    """A record exists but is not a valid record."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"the status file {path} cannot be read: {problem}")
        self.path = path
        self.problem = problem


def resolve_async_dir(raw: str) -> str:
    """Expand ~ as the user running on the target, and make the path absolute."""
    if not raw or not isinstance(raw, str):
        raise StoreError("the async dir is empty: set ansible_async_dir or ANSIBLE_ASYNC_DIR to a directory path")
    return os.path.abspath(os.path.expanduser(raw))


def ensure_async_dir(path: str) -> str:
    """Create the async dir 0700 (whatever the umask) and check that it is usable and private.

    The mode of a directory that already existed is never changed: it may be a shared
    directory such as /tmp, reached through a symlink. One that other users can write
    to is refused, since they could replace the job's files there.
    """
    try:
        created = _make_dir(path)
        info = os.stat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise StoreError(f"the async dir {path} is not a directory: point ansible_async_dir at a directory")
        if created and stat.S_IMODE(info.st_mode) != DIR_MODE:
            _set_private_mode(path)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise StoreError(
                f"the async dir {path} is on a read-only file system: "
                "set ansible_async_dir to a directory on a writable one"
            ) from exc
        raise StoreError(
            f"the async dir {path} cannot be created or used ({exc.strerror or exc}): "
            "make it writable by the job's user or set ansible_async_dir to another directory"
        ) from exc
    if not created and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreError(
            f"the async dir {path} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o}), "
            "who could tamper with the jobs' files: make it private (chmod 700) or set ansible_async_dir "
            "to a directory of the job's user"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        if file_system_problem(path) == READ_ONLY:
            raise StoreError(
                f"the async dir {path} is on a read-only file system: "
                "set ansible_async_dir to a directory on a writable one"
            )
        raise StoreError(
            f"the async dir {path} is not writable by uid {os.geteuid()}: "
            "fix its ownership or set ansible_async_dir to another directory"
        )
    return path


def _make_dir(path: str) -> bool:
    """Create the dir (and missing parents); False when something already exists at path."""
    try:
        os.makedirs(path, mode=DIR_MODE)
    except FileExistsError:
        return False
    return True


def _set_private_mode(path: str) -> None:
    """Set the mode of the dir just created, never through a symlink swapped in since."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)


def ensure_private_subdir(async_dir: str, name: str, *, what: str, keeps: str) -> str:
    """The subdir name of the async dir, created 0700; one that exists must be a private directory of this user.

    Only a dir created here has its mode set. what names the dir in errors, keeps what longrun keeps there.
    """
    path = os.path.join(async_dir, name)
    try:
        try:
            os.mkdir(path, DIR_MODE)
            created = True
        except FileExistsError:
            created = False
        info = os.lstat(path)
    except OSError as exc:
        raise StoreError(
            f"cannot create the {what} {path} ({exc.strerror or exc}): "
            "make the async dir writable by the job's user or set ansible_async_dir to another directory"
        ) from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise StoreError(f"{path} is not a directory of uid {os.geteuid()}: remove it, longrun keeps {keeps} there")
    if created and stat.S_IMODE(info.st_mode) != DIR_MODE:
        _set_private_mode(path)
    elif not created and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreError(
            f"the {what} {path} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o}): "
            "make it private (chmod 700) or remove it"
        )
    return path


READ_ONLY = "is read-only (make it writable)"
FULL = "is full (free space there)"


def file_system_problem(async_dir: str) -> t.Optional[str]:
    """Why the async dir's file system takes no writes (READ_ONLY, FULL), or None."""
    try:
        info = os.statvfs(async_dir)
    except OSError:
        return None
    if info.f_flag & os.ST_RDONLY:
        return READ_ONLY
    free_blocks = info.f_bfree if os.geteuid() == 0 else info.f_bavail
    # Some file systems (btrfs) report no inode counts at all.
    if free_blocks == 0 or (info.f_files > 0 and info.f_favail == 0):
        return FULL
    return None


def record_path(async_dir: str, jid: str) -> str:
    return os.path.join(async_dir, validate_jid(jid))


def side_path(async_dir: str, jid: str, suffix: str) -> str:
    if suffix not in SIDE_SUFFIXES:
        raise ValueError(f"unknown side file suffix {suffix!r}")
    return os.path.join(async_dir, "." + validate_jid(jid) + suffix)


def write_document(async_dir: str, jid: str, document: dict) -> str:
    """Atomically replace a job's status file: temp file, fsync, rename.

    A failed write removes its temp file and leaves any earlier record intact.
    """
    path = record_path(async_dir, jid)
    replace_file(path, [json.dumps(document, sort_keys=True).encode("utf-8")], what="status file", temp_name=jid)
    return path


def write_document_chunks(async_dir: str, jid: str, chunks: t.Iterable[bytes]) -> str:
    """Atomically replace a job's status file with a document given piece by piece.

    The supervisor streams large module results this way, so that its memory
    does not grow with them. The pieces must form one JSON object.
    """
    path = record_path(async_dir, jid)
    replace_file(path, chunks, what="status file", temp_name=jid)
    return path


def replace_file(path: str, chunks: t.Iterable[bytes], *, what: str, temp_name: str) -> None:
    """Atomically replace the file at path (a file of the async dir, named by a validated jid or name).

    The temp file, .tmp-<temp_name>-..., is made next to it; a failed write removes it and leaves
    the earlier file intact. what names the file in the error.
    """
    temp_path = None
    try:
        fd, temp_path = create_private_file(os.path.dirname(path), f"{_TEMP_PREFIX}{temp_name}-")
        try:
            os.fchmod(fd, FILE_MODE)
            for data in chunks:
                write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_path, path)
    except OSError as exc:
        if temp_path is not None:
            _unlink_quietly(temp_path)
        problem = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only"}.get(
            exc.errno or 0, exc.strerror or str(exc)
        )
        raise StoreError(
            f"cannot write the {what} {path}: {problem}; free space or set ansible_async_dir elsewhere"
        ) from exc
    except BaseException:
        if temp_path is not None:
            _unlink_quietly(temp_path)
        raise


def write_record(async_dir: str, record: JobRecord, *, keep_age: bool = False) -> str:
    """Write the record; keep_age keeps the file's mtime, the age that list and cleanup filter on."""
    path = record_path(async_dir, record.jid)
    previous = None
    if keep_age:
        try:
            previous = os.stat(path)
        except OSError:
            pass
    write_document(async_dir, record.jid, record.to_document(path))
    if previous is not None:
        try:
            os.utime(path, ns=(previous.st_atime_ns, previous.st_mtime_ns))
        except OSError:
            pass
    return path


def read_record(async_dir: str, jid: str) -> JobRecord | None:
    """The job's record, or None when no status file exists. Raises RecordUnreadable."""
    path = record_path(async_dir, jid)
    try:
        raw = _read_own_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordUnreadable(path, _read_problem(exc)) from exc
    if not raw.strip():
        raise RecordUnreadable(path, "it is empty")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordUnreadable(path, f"it is not valid JSON ({exc})") from exc
    try:
        return record_from_document(jid, document)
    except (TypeError, ValueError) as exc:
        raise RecordUnreadable(path, str(exc)) from exc


def _read_own_file(path: str, limit: int = -1) -> bytes:
    """Read a file in the async dir without following a symlink planted there."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit)


def _read_problem(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link, which is never followed; remove it"
    return exc.strerror or str(exc)


def record_signature(async_dir: str, jid: str) -> t.Optional[t.Tuple[int, int, int]]:
    """A cheap fingerprint that changes whenever the record is replaced."""
    try:
        info = os.lstat(record_path(async_dir, jid))
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def remove_job_files(async_dir: str, jid: str) -> bool:
    """Remove a job's status file and side files. True when the status file existed."""
    existed = _unlink_quietly(record_path(async_dir, jid))
    for suffix in SIDE_SUFFIXES:
        _unlink_quietly(side_path(async_dir, jid, suffix))
    remove_work_dir(async_dir, jid)
    return existed


def work_dir_path(async_dir: str, jid: str) -> str:
    return os.path.join(async_dir, "." + validate_jid(jid) + WORK_SUFFIX)


def create_work_dir(async_dir: str, jid: str) -> str:
    """Create the job's private work dir; returns its tmp dir, the job's TMPDIR."""
    work_dir = work_dir_path(async_dir, jid)
    try:
        os.mkdir(work_dir, DIR_MODE)
    except FileExistsError:
        remove_work_dir(async_dir, jid)
        os.mkdir(work_dir, DIR_MODE)
    temp_dir = os.path.join(work_dir, "tmp")
    os.mkdir(temp_dir, DIR_MODE)
    return temp_dir


def remove_work_dir(async_dir: str, jid: str) -> None:
    """Remove the job's work dir and whatever the job left in it (symlinks are not followed)."""
    # Imported here: a launch never needs it, and each import costs the agent's start-up.
    import shutil  # pylint: disable=import-outside-toplevel

    shutil.rmtree(work_dir_path(async_dir, jid), ignore_errors=True)


def write_all(fd: int, data: bytes) -> None:
    """Write all of data, however many writes it takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def create_private_file(directory: str, prefix: str) -> t.Tuple[int, str]:
    """Create a new 0600 file with a random name; returns its descriptor and path.

    Like tempfile.mkstemp, whose module would cost the agent's start-up a few ms.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _attempt in range(100):
        path = os.path.join(directory, prefix + os.urandom(6).hex())
        try:
            return os.open(path, flags, FILE_MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no unused temporary file name in {directory}")


def read_small_document(path: str, limit: int = 4096) -> t.Optional[dict]:
    """The JSON object in a small file of the async dir (never through a symlink); None when missing or bad."""
    try:
        document = json.loads(_read_own_file(path, limit).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def remove_side_files(async_dir: str, jid: str, *suffixes: str) -> None:
    for suffix in suffixes:
        _unlink_quietly(side_path(async_dir, jid, suffix))


def write_kill_request(async_dir: str, jid: str, *, signal_name: str, grace: int) -> None:
    """Tell the job's supervisor how to kill (it reads this when signalled)."""
    data = json.dumps({"signal": signal_name, "grace": grace}).encode("utf-8")
    replace_file(side_path(async_dir, jid, ".kill"), [data], what="kill request", temp_name=jid)


def read_kill_request(async_dir: str, jid: str) -> t.Optional[t.Tuple[str, int]]:
    """(signal name, grace) from a kill request, or None when there is none or it is malformed."""
    request = read_small_document(side_path(async_dir, jid, ".kill"))
    if request is None:
        return None
    signal_name, grace = request.get("signal"), request.get("grace")
    if not isinstance(signal_name, str) or not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        return None
    return signal_name, grace


def write_lease(async_dir: str, jid: str, *, expires_at: float, seconds: int) -> None:
    """Set when the job's lease expires (epoch seconds) and how long a controller's wait keeps it."""
    data = json.dumps({"expires_at": expires_at, "seconds": seconds}).encode("utf-8")
    replace_file(side_path(async_dir, jid, ".lease"), [data], what="lease file", temp_name=jid)


def read_lease(async_dir: str, jid: str) -> t.Optional[t.Tuple[float, int]]:
    """(expires_at, seconds) of the job's lease, or None when it has none or it is malformed."""
    lease = read_small_document(side_path(async_dir, jid, ".lease"))
    if lease is None:
        return None
    expires_at, seconds = lease.get("expires_at"), lease.get("seconds")
    if not isinstance(expires_at, (int, float)) or isinstance(expires_at, bool):
        return None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        return None
    return float(expires_at), seconds


def record_mtime(async_dir: str, jid: str) -> t.Optional[float]:
    """When the record was last written, or None when it is gone."""
    try:
        return os.lstat(record_path(async_dir, jid)).st_mtime
    except OSError:
        return None


def list_jids(async_dir: str) -> t.List[str]:
    """Jids of all status files in the async dir (temp and side files excluded)."""
    try:
        names = os.listdir(async_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot list the async dir {async_dir}: {exc.strerror or exc}") from exc
    return sorted(name for name in names if is_jid(name))


def open_side_file(async_dir: str, jid: str, suffix: str, *, append: bool = False) -> int:
    """Create a private side file for writing (appending with append); returns a file descriptor."""
    path = side_path(async_dir, jid, suffix)
    _unlink_quietly(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC | (os.O_APPEND if append else 0)
    return os.open(path, flags, FILE_MODE)


def _unlink_quietly(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        return False
    return True
