# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job record: what one job's status file says, as one typed structure.

On disk a record is a JSON document that stock ``ansible.builtin.async_status``
can read too: while the job runs it carries stock's ``started``/``finished``
keys, and once the job has ended the module result sits at the top level with
no ``started`` key. Everything longrun adds lives under ``_longrun``.
"""

from __future__ import annotations

import datetime
import re

# Type checkers only: the target agent imports this module on every launch (see _agent.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

SCHEMA_VERSION = 1
META_KEY = "_longrun"

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
KILLED = "killed"
LOST = "lost"
NOT_FOUND = "not_found"
UNREADABLE = "unreadable"

STATES = (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, KILLED, LOST, NOT_FOUND, UNREADABLE)
FAILURE_STATES = frozenset((FAILED, TIMED_OUT, KILLED, LOST, NOT_FOUND, UNREADABLE))
ENDED_STATES = frozenset(STATES) - {RUNNING}

# Reasons that say why a job is not a success.
REASON_MODULE_FAILED = "module_failed"
REASON_MODULE_CRASHED = "module_crashed"
REASON_ASYNC_LIMIT = "async_limit"
REASON_KILL_REQUESTED = "kill_requested"
REASON_SUPERVISOR_GONE = "supervisor_gone"
REASON_HOST_REBOOTED = "host_rebooted"
REASON_NO_RECORD = "no_record"
REASON_BAD_RECORD = "bad_record"
# The job ended but its result could not be written (typically a full disk).
REASON_RESULT_NOT_SAVED = "result_not_saved"

# Keys that the record adds around a module result; never part of the result.
ENVELOPE_KEYS = frozenset((META_KEY, "ansible_job_id", "started", "finished", "results_file"))

# Jids as produced by longrun and by stock ansible-core: "j" plus digits, an
# optional ".pid" suffix; older cores wrote plain digits.
_JID_RE = re.compile(r"\Aj?[0-9]{1,20}(?:\.[0-9]{1,12})?\Z")


class InvalidJid(ValueError):
    """A jid that neither longrun nor stock would produce."""


def validate_jid(jid: t.Any) -> str:
    """Return jid unchanged when it is a job id we or stock produce, else raise InvalidJid."""
    if not isinstance(jid, str) or not jid:
        raise InvalidJid(
            "jid must be a non-empty job id such as 'j123456789.4242' "
            "(use the ansible_job_id of a registered async result)"
        )
    if not _JID_RE.match(jid):
        raise InvalidJid(
            f"jid {jid!r} is not a job id: job ids look like 'j123456789.4242' and never "
            "contain path separators or dots other than the one before the pid; "
            "use the ansible_job_id of a registered async result"
        )
    return jid


def is_jid(name: str) -> bool:
    return bool(_JID_RE.match(name))


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: t.Any) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


# The fields of the ``_longrun`` section, in their on-disk order.
META_FIELDS = (
    "jid", "state", "pid", "pid_start_time", "boot_id", "started_at", "ended_at", "deadline", "timeout", "grace",
    "job_pid", "job_start_time", "reason", "msg", "signal", "exit_code", "supervisor_max_rss",
)


class JobRecord:
    """One job, as recorded or as inferred (lost, not_found, unreadable).

    A plain class with slots, not a dataclass: importing dataclasses (and with it
    inspect) would cost every launch on the target about 9 ms of start-up.
    """

    __slots__ = META_FIELDS + ("result", "origin")

    def __init__(
        self,
        jid: str,
        state: str,
        *,
        pid: t.Optional[int] = None,
        pid_start_time: t.Optional[int] = None,
        boot_id: t.Optional[str] = None,
        started_at: t.Optional[str] = None,
        ended_at: t.Optional[str] = None,
        deadline: t.Optional[str] = None,
        timeout: t.Optional[int] = None,
        grace: t.Optional[int] = None,
        job_pid: t.Optional[int] = None,
        job_start_time: t.Optional[int] = None,
        reason: t.Optional[str] = None,
        msg: t.Optional[str] = None,
        signal: t.Optional[str] = None,
        exit_code: t.Optional[int] = None,
        supervisor_max_rss: t.Optional[int] = None,
        result: t.Optional[dict] = None,
        origin: str = "longrun",
    ) -> None:
        self.jid = jid
        self.state = state
        self.pid = pid
        self.pid_start_time = pid_start_time
        self.boot_id = boot_id
        self.started_at = started_at
        self.ended_at = ended_at
        self.deadline = deadline
        self.timeout = timeout
        self.grace = grace
        self.job_pid = job_pid
        self.job_start_time = job_start_time
        self.reason = reason
        self.msg = msg
        self.signal = signal
        self.exit_code = exit_code
        # The supervisor's peak resident set size in KiB, measured as it wrote the end.
        self.supervisor_max_rss = supervisor_max_rss
        self.result = result
        self.origin = origin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobRecord):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable: records are compared, never hashed

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"JobRecord({fields})"

    @property
    def finished(self) -> bool:
        return self.state != RUNNING

    @property
    def failed(self) -> bool:
        return self.state in FAILURE_STATES

    def duration(self, *, now: datetime.datetime | None = None) -> float | None:
        start = parse_time(self.started_at)
        if start is None:
            return None
        end = parse_time(self.ended_at) if self.ended_at else None
        if end is None:
            if self.finished:
                return None
            end = now or utc_now()
        return round(max(0.0, (end - start).total_seconds()), 3)

    def meta(self) -> dict:
        """The ``_longrun`` part of the on-disk document."""
        data: dict = {name: getattr(self, name) for name in META_FIELDS}
        data["schema"] = SCHEMA_VERSION
        return data

    def to_document(self, results_file: str) -> dict:
        """The JSON document written to the async dir, readable by stock async_status."""
        if self.state == RUNNING:
            return {
                "started": True,
                "finished": False,
                "ansible_job_id": self.jid,
                "results_file": results_file,
                META_KEY: self.meta(),
            }
        document = dict(self.result or {})
        document.update(ansible_job_id=self.jid, finished=True)
        document[META_KEY] = self.meta()
        return document

    def public(self, *, now: datetime.datetime | None = None) -> dict:
        """The ``job`` dict that results carry."""
        data: dict = {
            "state": self.state,
            "pid": self.pid,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration(now=now),
            "origin": self.origin,
        }
        if self.timeout is not None:
            data["timeout"] = self.timeout
        if self.state not in (RUNNING, SUCCEEDED):
            data["reason"] = self.reason
            data["msg"] = self.msg
        if self.signal:
            data["signal"] = self.signal
        if self.exit_code is not None:
            data["exit_code"] = self.exit_code
        return data


def record_from_document(jid: str, document: t.Any) -> JobRecord:
    """Interpret a parsed status file, ours or stock's. Raises ValueError when it is neither."""
    if not isinstance(document, dict):
        raise ValueError("the record is not a JSON object")
    meta = document.get(META_KEY)
    if meta is not None:
        return _longrun_record(jid, document, meta)
    return _stock_record(jid, document)


_INT_FIELDS = (
    "pid", "pid_start_time", "timeout", "grace", "job_pid", "job_start_time", "exit_code", "supervisor_max_rss",
)
_TEXT_FIELDS = ("state", "boot_id", "started_at", "ended_at", "deadline", "reason", "msg", "signal")
_META_TYPES: t.Dict[str, t.Tuple[type, ...]] = dict(
    [(name, (int,)) for name in _INT_FIELDS] + [(name, (str,)) for name in _TEXT_FIELDS]
)


def _longrun_record(jid: str, document: dict, meta: t.Any) -> JobRecord:
    if not isinstance(meta, dict) or meta.get("state") not in STATES:
        raise ValueError(f"the {META_KEY} section is malformed")
    if meta.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"schema {meta.get('schema')!r} is not supported (expected {SCHEMA_VERSION})")
    values = {}
    for name, kinds in _META_TYPES.items():
        value = meta.get(name)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ValueError(f"the {META_KEY} field {name!r} has the wrong type ({type(value).__name__})")
        values[name] = value
    record = JobRecord(jid=jid, **values)
    if record.state != RUNNING:
        record.result = {k: v for k, v in document.items() if k not in ENVELOPE_KEYS}
    return record


def _stock_record(jid: str, document: dict) -> JobRecord:
    """Stock async_wrapper records: running while 'started' is present, else the result."""
    if "started" in document and not document.get("finished"):
        return JobRecord(jid=jid, state=RUNNING, origin="stock")
    result = {k: v for k, v in document.items() if k not in ENVELOPE_KEYS}
    record = JobRecord(jid=jid, state=SUCCEEDED, result=result, origin="stock")
    if not result.get("failed"):
        return record
    module_msg = str(result.get("msg") or "")
    if module_msg == "Timeout exceeded":
        record.state, record.reason = TIMED_OUT, REASON_ASYNC_LIMIT
        record.msg = f"job {jid} timed out (async limit) and was killed by stock async_wrapper"
    elif "data" in result or "outdata" in result:
        record.state, record.reason = FAILED, REASON_MODULE_CRASHED
        record.msg = f"job {jid} crashed: {module_msg or 'the module did not return JSON'}"
    else:
        record.state, record.reason = FAILED, REASON_MODULE_FAILED
        record.msg = failure_sentence(jid, result)
    return record


def failure_sentence(jid: str, result: dict) -> str:
    """One sentence for a module that returned failed: true."""
    module_msg = str(result.get("msg") or "the module reported failure").strip().rstrip(".")
    rc = result.get("rc")
    if rc is not None and f"rc={rc}" not in module_msg:
        module_msg = f"{module_msg} (rc={rc})"
    return f"job {jid} failed: {module_msg}"
