# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Job names (run's name option): a name stands for the jid of the job last launched under it.

The mapping is the file ``<async_dir>/.names/<name>``, JSON ``{"jid": ...}``, written atomically.
A launch claims the name: it holds a lock on ``.names/.<name>.claim`` while it reads the mapping,
inspects the job, decides what on_existing asks for, launches and writes the mapping, so that two
launches racing for a name start one job. A mapping whose job has no record any more is stale and
harmless: the next launch of the name starts a new job, and mode=cleanup removes it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Type checkers only: the target agent imports this module on named launches (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

NAMES_DIR = ".names"
_CLAIM_SUFFIX = ".claim"

ATTACH = "attach"
SKIP = "skip"
FAIL = "fail"
RESTART = "restart"


class NameTaken(Exception):
    """on_existing: fail (or a restart that could not end the job) found a job of the name."""


def names_dir(async_dir: str) -> str:
    return os.path.join(async_dir, NAMES_DIR)


def mapping_path(async_dir: str, name: str) -> str:
    return os.path.join(names_dir(async_dir), _record.validate_name(name))


def claim_path(async_dir: str, name: str) -> str:
    return os.path.join(names_dir(async_dir), "." + _record.validate_name(name) + _CLAIM_SUFFIX)


def ensure_names_dir(async_dir: str) -> str:
    """Create the names dir 0700; one that exists must be a private directory (it is never chmod-ed)."""
    return _store.ensure_private_subdir(async_dir, NAMES_DIR, what="job names dir", keeps="the job names")


@contextlib.contextmanager
def claim(async_dir: str, name: str, *, blocking: bool = True) -> t.Iterator[bool]:
    """Hold the name's claim; yields False when blocking is off and another process holds it.

    A POSIX record lock, not flock: the launcher forks the job's supervisor while it holds the
    claim, and an flock would live on in the supervisor's copy of the descriptor for the job's life.
    A record lock belongs to the process, so it ends with the launcher (or its death).
    """
    ensure_names_dir(async_dir)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(claim_path(async_dir, name), flags, _store.FILE_MODE)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if blocking or exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            yield False
            return
        yield True
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def read_mapping(async_dir: str, name: str) -> t.Optional[str]:
    """The jid the name maps to, or None (no mapping, or one that is not ours to trust)."""
    return _read_mapping(async_dir, name)[0]


def _read_mapping(async_dir: str, name: str) -> t.Tuple[t.Optional[str], bool]:
    """(jid or None, whether that job's result was collected)."""
    document = _store.read_small_document(mapping_path(async_dir, name))
    if document is None:
        return None, False
    jid = document.get("jid")
    if not isinstance(jid, str) or not _record.is_jid(jid):
        return None, False
    return jid, document.get("collected") is True


def write_mapping(async_dir: str, name: str, jid: str, *, collected: bool = False) -> None:
    """Point the name at jid (collected: a wait delivered the job's end): temp file, fsync, rename."""
    path = mapping_path(async_dir, name)
    document: dict = {"jid": _record.validate_jid(jid)}
    if collected:
        document["collected"] = True
    _store.replace_file(path, [json.dumps(document).encode("utf-8")], what="job name file", temp_name=name)


def resolve(async_dir: str, ref: str) -> t.Optional[str]:
    """The jid that a job reference (a jid, or a job name) stands for; None for a name that maps to nothing."""
    if _record.is_jid(ref):
        return ref
    jid = read_mapping(async_dir, ref)
    if jid is None or _store.record_mtime(async_dir, jid) is None:
        return None
    return jid


def unknown_name(async_dir: str, name: str) -> _record.JobRecord:
    """The not_found record that answers for a name with no job; its jid is the name."""
    return _record.JobRecord(
        jid=name, state=_record.NOT_FOUND, reason=_record.REASON_NO_RECORD, name=name,
        msg=(
            f"could not find a job named {name!r} in {async_dir}: no job of that name was launched there, or its "
            "result was collected already (a wait that sees a job's end removes it); check the name and async_dir"
        ),
    )


def launch_named(
    async_dir: str, name: str, on_existing: str, start: t.Callable[[], t.Tuple[str, dict]], *, grace: int,
) -> t.Tuple[t.Optional[str], str, dict]:
    """Launch the named job unless a job of the name is known; returns (existing, jid, public job dict).

    start() launches the job and returns its jid and first public record. existing is None for a new
    job, else on_existing (attach or skip) with the found job. Raises NameTaken for fail, and for a
    restart whose old job could not be ended.
    """
    with claim(async_dir, name):
        jid, collected = _read_mapping(async_dir, name)
        if jid is not None and collected:
            # Its end was delivered: the name is free, and the record kept for other waiters goes now.
            _store.remove_job_files(async_dir, jid)
        elif jid is not None:
            # Imported here: only a launch that finds a mapping inspects a job.
            # pylint: disable-next=import-outside-toplevel
            from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status

            record = _status.inspect_job(async_dir, jid)
            if record.state not in (_record.NOT_FOUND, _record.UNREADABLE):
                if on_existing in (ATTACH, SKIP):
                    return on_existing, jid, record.public()
                if on_existing == FAIL:
                    raise NameTaken(taken_sentence(name, record))
                replace_job(async_dir, name, record, grace=grace)
        new_jid, job = start()
        write_mapping(async_dir, name, new_jid)
        return None, new_jid, job


def taken_sentence(name: str, record: _record.JobRecord) -> str:
    if record.finished:
        what = f"job {record.jid} ended ({record.state}) and its result was not collected yet"
        fix = f"collect it with longrun.jobs.async_status jid={name}"
    else:
        what = f"job {record.jid} is {record.state}"
        fix = f"wait for it with longrun.jobs.async_status jid={name} and wait"
    return (
        f"a job named {name!r} exists ({what}) and on_existing is fail: {fix}, or set on_existing to attach "
        "(wait for it), restart (replace it) or skip"
    )


def replace_job(async_dir: str, name: str, record: _record.JobRecord, *, grace: int) -> None:
    """on_existing: restart: end the job of the name through its supervisor, then remove its files."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.module_utils._job import kill as _kill

    if not record.finished or _kill.orphan_alive(record):
        job_grace = record.grace if record.grace is not None else grace
        outcome = _kill.kill_jobs(
            async_dir, [record.jid], signal_name="TERM", grace=job_grace, wait=job_grace + _kill.KILL_SETTLE,
        )
        record = outcome.records[0]
        problem = outcome.refused.get(record.jid)
        if problem is None and not record.finished:
            problem = f"it was signalled but had not ended after {job_grace + _kill.KILL_SETTLE} s"
        if problem is not None:
            raise NameTaken(
                f"cannot restart the job named {name!r}: job {record.jid} is still {record.state} ({problem}); "
                f"end it with longrun.jobs.async_status jid={name} mode=kill, then run again"
            )
    _store.remove_job_files(async_dir, record.jid)


def collect(async_dir: str, jid: str) -> None:
    """Remove the files of an ended job whose end a wait delivered.

    A named job keeps its record, and its name is marked collected: the next launch of the
    name starts a new job and removes that record. Until then, every controller waiting on
    the job (a re-run attached to it, or two racing runs) still finds its end.
    """
    try:
        record = _store.read_record(async_dir, jid)
    except _store.StoreError:
        record = None
    name = record.name if record is not None else None
    if name is not None and record is not None and record.finished and _valid_name(name):
        with claim(async_dir, name):
            if read_mapping(async_dir, name) == jid:
                write_mapping(async_dir, name, jid, collected=True)
                _store.remove_side_files(async_dir, jid, *_store.SIDE_SUFFIXES)
                _store.remove_work_dir(async_dir, jid)
                return
    _store.remove_job_files(async_dir, jid)


def _valid_name(name: str) -> bool:
    try:
        _record.validate_name(name)
    except _record.InvalidJid:
        return False
    return True


def prune(async_dir: str) -> t.List[str]:
    """Remove the mappings that point to no job record (mode=cleanup); returns their names.

    Each is removed under its claim, skipped while a launch holds it. The claim files stay:
    removing a lock file that another process may be waiting on would let two launches hold it.
    """
    try:
        entries = os.listdir(names_dir(async_dir))
    except OSError:
        return []
    pruned = []
    for name in sorted(entries):
        if name.startswith("."):
            continue
        try:
            _record.validate_name(name)
        except _record.InvalidJid:
            continue
        with claim(async_dir, name, blocking=False) as held:
            if not held:
                continue
            jid = read_mapping(async_dir, name)
            if jid is not None and _store.record_mtime(async_dir, jid) is not None:
                continue
            if _unlink_quietly(mapping_path(async_dir, name)):
                pruned.append(name)
    return pruned


def _unlink_quietly(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True
