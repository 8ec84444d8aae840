# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the controller and the agent on the target say to each other: typed requests and replies.

A message on the wire is one JSON object. A request is ``{VERSION_KEY: version, "op": op,
"params": {...}}``; a reply is the reply's fields plus ``VERSION_KEY``. Each side refuses a
message of another version: the agent that runs is always the one the controller shipped, so a
difference means a mixed installation, never something to guess around.

Imported on every launch: no typing or dataclasses at the top (see _agent/main.py), plain
classes with __slots__ instead.
"""

from __future__ import annotations

import re

from ansible_collections.longrun.jobs.plugins.module_utils._job.record import (
    InvalidJid,
    validate_jid,
    validate_job_ref,
    validate_name,
)
from ansible_collections.longrun.jobs.plugins.module_utils._timing import DEFAULT_GRACE

# Type checkers only: this module is imported on every launch.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

PROTOCOL_VERSION = 4
VERSION_KEY = "_longrun_protocol"
# The controllers of protocol version 1 sent requests without a version.
_UNVERSIONED = 1
STATUS_MODES = ("status", "kill", "list", "cleanup", "output")
RETURN_WHEN = ("all", "any")
# "command": no module, the supervisor runs the command itself (module_utils/_job/command_exec.py).
MODULE_STYLES = ("new", "old", "non_native_want_json", "binary", "command")
# What a launch does when a job of its name exists (run's on_existing).
ON_EXISTING = ("attach", "fail", "restart", "skip")


class ProtocolError(ValueError):
    """A message that does not follow the protocol; the message says what is wrong."""


class VersionMismatch(ProtocolError):
    """A message of another protocol version."""


def request_version_error(version: t.Any) -> str:
    """What the agent says about a request of another version."""
    return (
        f"the longrun agent speaks protocol version {PROTOCOL_VERSION} but the request is version {version!r}: "
        "the controller and the agent it shipped disagree; reinstall the longrun.jobs collection on the "
        "controller, and do not reuse a kept agent program with another version of it"
    )


def reply_version_error(version: t.Any) -> str:
    """What the controller says about a reply of another version."""
    return (
        f"the longrun agent on the target replied in protocol version {version!r}, but this controller speaks "
        f"version {PROTOCOL_VERSION}: the agent that ran is not the one this collection shipped; reinstall the "
        "longrun.jobs collection on the controller, and do not reuse a kept agent program with another version of it"
    )


# Bytes that are not UTF-8 are read as surrogate escapes, which are lone surrogates in text.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def holds_undecodable_text(value: t.Any) -> bool:
    """Whether any text in value (keys included) came from bytes that are not UTF-8."""
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(holds_undecodable_text(key) or holds_undecodable_text(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_undecodable_text(item) for item in value)
    if isinstance(value, JobEntry):
        return holds_undecodable_text(value.to_wire())
    return False


# Field checkers: (value, where) -> the value, or ProtocolError. A missing field is None.


def _kind(value: t.Any) -> str:
    return "null" if value is None else type(value).__name__


def _refuse(where: str, expected: str, value: t.Any) -> ProtocolError:
    return ProtocolError(f"{where} must be {expected}, got {_kind(value)}")


def _int(value: t.Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(where, "an integer", value)
    return value


def _count(value: t.Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(where, "0 or a positive integer", value)
    return value


def _number(value: t.Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(where, "a number", value)
    return float(value)


def _bool(value: t.Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _refuse(where, "true or false", value)
    return value


def _str(value: t.Any, where: str) -> str:
    if not isinstance(value, str):
        raise _refuse(where, "a string", value)
    return value


def _dict(value: t.Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _refuse(where, "an object", value)
    return value


def _anything(value: t.Any, where: str) -> t.Any:
    return value


def _jid(value: t.Any, where: str) -> str:
    # Job ids become file names on the target: only well-formed ids pass.
    try:
        return validate_jid(value)
    except InvalidJid as exc:
        raise ProtocolError(f"{where}: {exc}") from None


def _name(value: t.Any, where: str) -> str:
    # Job names become file names on the target, as jids do.
    try:
        return validate_name(value)
    except InvalidJid as exc:
        raise ProtocolError(f"{where}: {exc}") from None


def _job_ref(value: t.Any, where: str) -> str:
    # A jid, or the name of a job (the target resolves it).
    try:
        return validate_job_ref(value)
    except InvalidJid as exc:
        raise ProtocolError(f"{where}: {exc}") from None


def _optional(checker: t.Any) -> t.Any:
    def check(value: t.Any, where: str) -> t.Any:
        return None if value is None else checker(value, where)

    return check


def _list_of(checker: t.Any) -> t.Any:
    def check(value: t.Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise _refuse(where, "a list", value)
        return [checker(item, f"{where}[{index}]") for index, item in enumerate(value)]

    return check


def _choice(*choices: str) -> t.Any:
    def check(value: t.Any, where: str) -> str:
        if value not in choices:
            raise ProtocolError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


OUTPUT_STREAMS = ("stdout", "stderr")


def _offsets(value: t.Any, where: str) -> dict:
    """Byte offsets of output streams per job: {jid: {"stdout": n, "stderr": n}}."""
    result = {}
    for jid, streams in _dict(value, where).items():
        _jid(jid, f"{where}'s key")
        streams = _dict(streams, f"{where}[{jid}]")
        unknown = sorted(set(streams) - set(OUTPUT_STREAMS))
        if unknown:
            raise ProtocolError(f"{where}[{jid}] names no stream {', '.join(unknown)}: use stdout or stderr")
        result[jid] = {name: _count(offset, f"{where}[{jid}][{name}]") for name, offset in streams.items()}
    return result


def _open_message(message: t.Any, op: t.Optional[str] = None) -> t.Tuple[str, dict]:
    """The op and params of a request, once its version and shape are checked."""
    if not isinstance(message, dict):
        raise ProtocolError(f"a request must be a JSON object, got {_kind(message)}")
    version = message.get(VERSION_KEY, _UNVERSIONED)
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(request_version_error(version))
    operation = message.get("op")
    if op is not None and operation != op:
        raise ProtocolError(f"expected a {op} request, got {operation!r}")
    params = message.get("params")
    if not isinstance(params, dict):
        raise _refuse("the request's params", "an object", params)
    return str(operation), params


class _Message:
    """A typed message: _FIELDS names each field with its checker; the wire form is a dict of the fields."""

    __slots__ = ()
    _FIELDS: t.Tuple[t.Tuple[str, t.Any], ...] = ()

    def __init__(self, **values: t.Any) -> None:
        for name, checker in self._FIELDS:
            value = values.pop(name, None)
            setattr(self, name, _empty(checker) if value is None else value)
        if values:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(values))}")

    def fields(self) -> dict:
        return {name: _wire(getattr(self, name)) for name, _checker in self._FIELDS}

    @classmethod
    def from_fields(cls, data: t.Any, where: t.Optional[str] = None) -> t.Any:
        """Check every field of data; raises ProtocolError naming the first bad one."""
        where = where or f"the {cls.__name__}"
        if not isinstance(data, dict):
            raise _refuse(where, "an object", data)
        return cls(**{name: checker(data.get(name), f"{where}'s {name}") for name, checker in cls._FIELDS})

    def replace(self, **changes: t.Any) -> t.Any:
        """A copy with some fields changed."""
        values = {name: getattr(self, name) for name, _checker in self._FIELDS}
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.fields() == other.fields()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.fields().items())})"


def _empty(checker: t.Any) -> t.Any:
    """A field's value when not given: False, [] or {} for the checkers that accept a missing value, else None."""
    try:
        return checker(None, "")
    except ProtocolError:
        return None


def _wire(value: t.Any) -> t.Any:
    if isinstance(value, _Message):
        return value.to_wire()
    if isinstance(value, (list, tuple)):
        return [_wire(item) for item in value]
    return value


class _Request(_Message):
    __slots__ = ()
    op = ""

    def to_wire(self) -> dict:
        return {VERSION_KEY: PROTOCOL_VERSION, "op": self.op, "params": self.fields()}

    @classmethod
    def from_wire(cls, message: t.Any) -> t.Any:
        _op, params = _open_message(message, cls.op)
        return cls.from_fields(params, f"the {cls.op} request")


class _Reply(_Message):
    __slots__ = ()

    def to_wire(self) -> dict:
        return dict(self.fields(), **{VERSION_KEY: PROTOCOL_VERSION})

    @classmethod
    def from_wire(cls, message: t.Any) -> t.Any:
        if isinstance(message, dict) and message.get(VERSION_KEY, PROTOCOL_VERSION) != PROTOCOL_VERSION:
            raise VersionMismatch(reply_version_error(message.get(VERSION_KEY)))
        return cls.from_fields(message, f"the {cls.__name__}")


class JobEntry(_Reply):
    """One job as the target reports it, in every reply: status, kill, list, cleanup and rounds."""

    __slots__ = ("ansible_job_id", "results_file", "finished", "failed", "job", "result", "age", "output")
    _FIELDS = (
        # A jid; the name itself for a job name that stands for no job (state not_found).
        ("ansible_job_id", _job_ref),
        ("results_file", _optional(_str)),
        ("finished", _bool),
        ("failed", _bool),
        # The public dict of the job's record (JobRecord.public()).
        ("job", _dict),
        # The module result, once the job has finished (None in mode=list).
        ("result", _anything),
        # mode=list only: seconds since the record was last written.
        ("age", _optional(_number)),
        # Requests with output: {"stdout": read, "stderr": read} (see _job/output_reader.py), or the no_log note.
        ("output", _optional(_dict)),
    )

    if TYPE_CHECKING:  # pragma: no cover
        ansible_job_id: str
        results_file: t.Optional[str]
        finished: bool
        failed: bool
        job: dict
        result: t.Any
        age: t.Optional[float]
        output: t.Optional[dict]

    def to_wire(self) -> dict:
        # An entry travels inside a reply, which carries the version.
        return self.fields()

    @property
    def state(self) -> t.Optional[str]:
        return self.job.get("state")


class LaunchRequest(_Request):
    """Start one supervised job; the target appends its pid to the jid prefix."""

    __slots__ = (
        "jid", "async_dir", "timeout", "grace", "interpreter", "payload", "style", "args_data", "no_log", "command",
        "name", "on_existing", "locks", "lock_timeout", "lease",
    )
    op = "launch"
    _FIELDS = (
        ("jid", _jid),
        ("async_dir", _str),
        # Their ranges are checked by the launch, which refuses only this job.
        ("timeout", _int),
        ("grace", _int),
        ("interpreter", _str),
        # base64 of the module to run.
        ("payload", _str),
        ("style", _choice(*MODULE_STYLES)),
        ("args_data", _optional(_str)),
        # The task is no_log: the record says so, and the job's output and progress are never shown.
        ("no_log", _bool),
        # Style "command": the executor's parameters (plugin_utils/_command_executor.py); payload is then empty.
        ("command", _optional(_dict)),
        # The job's name, unique in the async dir, and what to do when a job of that name exists.
        ("name", _optional(_name)),
        ("on_existing", _choice(*ON_EXISTING)),
        # Locks the supervisor takes before starting the job (names or presets, checked on the target),
        # waiting at most lock_timeout seconds (None: as long as the async limit).
        ("locks", _list_of(_str)),
        ("lock_timeout", _optional(_int)),
        # on_controller_loss: kill: seconds a controller's wait keeps the job's lease (None: keep the job).
        ("lease", _optional(_int)),
    )

    if TYPE_CHECKING:  # pragma: no cover
        jid: str
        async_dir: str
        timeout: int
        grace: int
        interpreter: str
        payload: str
        style: str
        args_data: t.Optional[str]
        no_log: bool
        command: t.Optional[dict]
        name: t.Optional[str]
        on_existing: str
        locks: t.List[str]
        lock_timeout: t.Optional[int]
        lease: t.Optional[int]

    def __init__(self, **values: t.Any) -> None:
        values.setdefault("style", "new")
        values.setdefault("no_log", False)
        if values.get("on_existing") is None:
            values["on_existing"] = "attach"
        super().__init__(**values)


class LaunchReply(_Reply):
    """The job a launch started, or why it could not start."""

    __slots__ = ("ansible_job_id", "results_file", "job", "failed", "msg", "existing")
    _FIELDS = (
        ("ansible_job_id", _optional(_jid)),
        ("results_file", _optional(_str)),
        ("job", _dict),
        ("failed", _bool),
        ("msg", _optional(_str)),
        # A named launch that found its job: "attach" or "skip" (on_existing), and launched nothing.
        ("existing", _optional(_choice("attach", "skip"))),
    )

    if TYPE_CHECKING:  # pragma: no cover
        ansible_job_id: t.Optional[str]
        results_file: t.Optional[str]
        job: dict
        failed: bool
        msg: t.Optional[str]
        existing: t.Optional[str]


class StatusRequest(_Request):
    """mode status, kill, list, cleanup or output, with the options the controller checked."""

    __slots__ = (
        "mode", "jids", "single", "wait", "return_when", "signal", "grace", "states", "older_than", "force",
        "check_mode", "remove_ended", "keep_undecodable", "async_dir", "ignored", "output", "output_since",
        "output_tail", "output_max_bytes", "output_keep_up",
    )
    op = "status"
    _FIELDS = (
        ("mode", _choice(*STATUS_MODES)),
        # None when the call selects jobs by filters (list, cleanup) rather than by id. Job names
        # may stand for jids: the target resolves them.
        ("jids", _optional(_list_of(_job_ref))),
        # The stock form: one jid, stock-compatible result.
        ("single", _bool),
        ("wait", _number),
        ("return_when", _choice(*RETURN_WHEN)),
        ("signal", _str),
        ("grace", _count),
        ("states", _optional(_list_of(_str))),
        ("older_than", _optional(_number)),
        ("force", _bool),
        ("check_mode", _bool),
        # Remove the files of the jobs found ended (run's last wait), once the reply is out.
        ("remove_ended", _bool),
        # ...except those whose result the controller will refuse (text that is not UTF-8).
        ("keep_undecodable", _bool),
        ("async_dir", _str),
        # Items of the user's jobs without a job id (skipped loop items, failed launches).
        ("ignored", _count),
        # mode=status: each job entry carries its output, read from output_since (jid -> stream -> byte
        # offset, 0 when missing) or its last output_tail lines, at most output_max_bytes per stream (0: the
        # default). output_keep_up (following a wait): skip to the latest bytes, whole lines only, no result.
        ("output", _bool),
        ("output_since", _offsets),
        ("output_tail", _optional(_count)),
        ("output_max_bytes", _count),
        ("output_keep_up", _bool),
    )

    if TYPE_CHECKING:  # pragma: no cover
        mode: str
        jids: t.Optional[t.List[str]]
        single: bool
        wait: float
        return_when: str
        signal: str
        grace: int
        states: t.Optional[t.List[str]]
        older_than: t.Optional[float]
        force: bool
        check_mode: bool
        remove_ended: bool
        keep_undecodable: bool
        async_dir: str
        ignored: int
        output: bool
        output_since: t.Dict[str, t.Dict[str, int]]
        output_tail: t.Optional[int]
        output_max_bytes: int
        output_keep_up: bool

    _DEFAULTS = (
        ("mode", "status"), ("single", False), ("wait", 0.0), ("return_when", "all"), ("signal", "TERM"),
        ("grace", DEFAULT_GRACE), ("force", False), ("check_mode", False), ("remove_ended", False),
        ("keep_undecodable", False), ("async_dir", ""), ("ignored", 0), ("output", False),
        ("output_max_bytes", 0), ("output_keep_up", False),
    )

    def __init__(self, **values: t.Any) -> None:
        for name, default in self._DEFAULTS:
            if values.get(name) is None:
                values[name] = default
        super().__init__(**values)


class StatusReply(_Reply):
    """The reply to a status request; which fields are filled depends on the mode."""

    __slots__ = ("changed", "jobs", "removed", "ignored", "killed", "refused", "spared", "not_found", "async_dir",
                 "failed", "msg")
    _FIELDS = (
        ("changed", _bool),
        ("jobs", _list_of(JobEntry.from_fields)),
        # Jobs whose files were (or, in check mode, would be) removed.
        ("removed", _list_of(_jid)),
        ("ignored", _optional(_int)),
        # kill and cleanup: jobs signalled.
        ("killed", _list_of(_jid)),
        # kill: running jobs we may not kill, with the reason.
        ("refused", _dict),
        # cleanup: running jobs kept.
        ("spared", _list_of(_jid)),
        ("not_found", _list_of(_job_ref)),
        # list and cleanup: the async dir as resolved on the target.
        ("async_dir", _optional(_str)),
        # The request could not be served.
        ("failed", _bool),
        ("msg", _optional(_str)),
    )

    if TYPE_CHECKING:  # pragma: no cover
        changed: bool
        jobs: t.List[JobEntry]
        removed: t.List[str]
        ignored: t.Optional[int]
        killed: t.List[str]
        refused: t.Dict[str, str]
        spared: t.List[str]
        not_found: t.List[str]
        async_dir: t.Optional[str]
        failed: bool
        msg: t.Optional[str]


def _queued(value: t.Any, where: str) -> t.Tuple[int, LaunchRequest]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _refuse(where, "a [key, launch request] pair", value)
    return _int(value[0], f"{where}'s key"), LaunchRequest.from_fields(value[1], f"{where}'s launch request")


class RoundRequest(_Request):
    """One scheduling round of run_parallel: launch from the queue up to the limit, wait, refill."""

    __slots__ = ("async_dir", "running", "queue", "limit", "wait", "stop_on_failure", "more_queued", "forget",
                 "keep_undecodable")
    op = "round"
    _FIELDS = (
        ("async_dir", _str),
        ("running", _list_of(_jid)),
        # (the controller's key for the job, its launch request), in launch order.
        ("queue", _list_of(_queued)),
        # 0: no limit.
        ("limit", _int),
        ("wait", _number),
        ("stop_on_failure", _bool),
        # More jobs follow in later rounds: a free slot ends this round.
        ("more_queued", _bool),
        # Ended jobs of earlier rounds whose files the last round removes.
        ("forget", _list_of(_jid)),
        ("keep_undecodable", _bool),
    )

    if TYPE_CHECKING:  # pragma: no cover
        async_dir: str
        running: t.List[str]
        queue: t.List[t.Tuple[int, LaunchRequest]]
        limit: int
        wait: float
        stop_on_failure: bool
        more_queued: bool
        forget: t.List[str]
        keep_undecodable: bool

    _DEFAULTS = (("limit", 0), ("wait", 0.0), ("stop_on_failure", False), ("more_queued", False),
                 ("keep_undecodable", False))

    def __init__(self, **values: t.Any) -> None:
        for name, default in self._DEFAULTS:
            if values.get(name) is None:
                values[name] = default
        for name in ("running", "queue", "forget"):
            values[name] = list(values.get(name) or [])
        super().__init__(**values)

    def fields(self) -> dict:
        data = super().fields()
        data["queue"] = [[key, launch.fields()] for key, launch in self.queue]
        return data


def _launched(value: t.Any, where: str) -> t.Tuple[int, LaunchReply]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _refuse(where, "a [key, launch reply] pair", value)
    return _int(value[0], f"{where}'s key"), LaunchReply.from_fields(value[1], f"{where}'s launch reply")


class RoundReply(_Reply):
    """What one round did: the jobs it launched, those that ended, those still running."""

    __slots__ = ("removed", "changed", "launched", "ended", "running", "unlaunched", "failed", "msg")
    _FIELDS = (
        # The last round removed the files of every ended job.
        ("removed", _bool),
        ("changed", _bool),
        ("launched", _list_of(_launched)),
        ("ended", _list_of(JobEntry.from_fields)),
        ("running", _list_of(JobEntry.from_fields)),
        ("unlaunched", _list_of(_int)),
        ("failed", _bool),
        ("msg", _optional(_str)),
    )

    if TYPE_CHECKING:  # pragma: no cover
        removed: bool
        changed: bool
        launched: t.List[t.Tuple[int, LaunchReply]]
        ended: t.List[JobEntry]
        running: t.List[JobEntry]
        unlaunched: t.List[int]
        failed: bool
        msg: t.Optional[str]

    def fields(self) -> dict:
        data = super().fields()
        data["launched"] = [[key, reply.fields()] for key, reply in self.launched]
        return data


REQUEST_TYPES = {kind.op: kind for kind in (LaunchRequest, StatusRequest, RoundRequest)}
REPLY_TYPES = {LaunchRequest.op: LaunchReply, StatusRequest.op: StatusReply, RoundRequest.op: RoundReply}


def request_from_wire(message: t.Any) -> t.Any:
    """The typed request of a message (the agent's side); raises ProtocolError, VersionMismatch first."""
    operation, _params = _open_message(message)
    kind = REQUEST_TYPES.get(operation)
    if kind is None:
        raise ProtocolError(f"unknown request {operation!r}")
    return kind.from_wire(message)


def decode_reply(request: t.Any, message: t.Any) -> t.Any:
    """The typed reply to request (the controller's side); raises ProtocolError, VersionMismatch first."""
    return REPLY_TYPES[request.op].from_wire(message)


def failure(msg: str) -> dict:
    """The reply to a request that could not be served."""
    return {"failed": True, "msg": msg, VERSION_KEY: PROTOCOL_VERSION}
