# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job record: what one job's status file says, as one typed structure.

On disk a record is a JSON document that stock ``ansible.builtin.async_status``
can read too: while the job runs it carries stock's ``started``/``finished``
keys, and once the job has ended the module result sits at the top level with
no ``started`` key. Everything longrun adds lives under ``_longrun``.

A job's end is set in one place: the transitions of JobRecord (``succeed``,
``fail_module``, ``crash``, ``time_out``, ``kill``, ``lose_controller``, ``time_out_waiting``, ``kill_waiting``,
``lose_controller_waiting``, ``lose``, ``fail_to_save``) and its constructors for inferred records
(``not_found``, ``unreadable``). They word the end with sentences.py.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

SCHEMA_VERSION = 1
META_KEY = "_longrun"

RUNNING = "running"
# Launched, its supervisor waits for the job's locks (issue 15): the job has not started yet.
WAITING = "waiting"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
KILLED = "killed"
LOST = "lost"
NOT_FOUND = "not_found"
UNREADABLE = "unreadable"

STATES = (RUNNING, WAITING, SUCCEEDED, FAILED, TIMED_OUT, KILLED, LOST, NOT_FOUND, UNREADABLE)
FAILURE_STATES = frozenset((FAILED, TIMED_OUT, KILLED, LOST, NOT_FOUND, UNREADABLE))
# A supervisor owns the job: it has not ended yet.
ACTIVE_STATES = frozenset((RUNNING, WAITING))
ENDED_STATES = frozenset(STATES) - ACTIVE_STATES

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
# The job's locks were not free within its lock_timeout: it never started.
REASON_LOCK_TIMEOUT = "lock_timeout"
# on_controller_loss: kill, and no controller renewed the job's lease in time.
REASON_CONTROLLER_LOST = "controller_lost"

# What a no_log job's messages (its progress msg) read as.
HIDDEN_BY_NO_LOG = "hidden by no_log"

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


# Job names (run's name option): a file name in the async dir's names dir, never a path, never a jid.
_NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.@+=-]{0,99}\Z")
# Digits and dots, with or without a leading j, read as a (mistyped) job id, never as a name.
_JID_LIKE_RE = re.compile(r"\Aj?[0-9.]+\Z")


def _is_name(name: t.Any) -> bool:
    return isinstance(name, str) and bool(_NAME_RE.match(name)) and not _JID_LIKE_RE.match(name)


class InvalidName(InvalidJid):
    """A job name that could leave the async dir or be taken for a jid."""


def validate_name(name: t.Any) -> str:
    """Return name unchanged when it can name a job, else raise InvalidName."""
    if not _is_name(name):
        raise InvalidName(
            f"job name {name!r} is not valid: use 1 to 100 letters, digits and _ . @ + = -, starting with a "
            "letter, digit or _, and not shaped like a job id (such as 'backup-db')"
        )
    return name


def validate_job_ref(ref: t.Any) -> str:
    """A jid, or a job name (resolved on the target); raises InvalidJid naming both forms."""
    if isinstance(ref, str) and _JID_RE.match(ref):
        return ref
    if _is_name(ref):
        return ref
    if not isinstance(ref, str) or not ref:
        validate_jid(ref)
    raise InvalidJid(
        f"jid {ref!r} is not a job id (such as 'j123456789.4242') nor a job name (1 to 100 letters, digits and "
        "_ . @ + = -, starting with a letter, digit or _): use the ansible_job_id of a registered async result "
        "or the name given to longrun.jobs.run"
    )


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
    "job_pid", "job_start_time", "reason", "msg", "signal", "exit_code", "supervisor_max_rss", "no_log", "progress",
    "executor", "name", "locks", "waiting_for", "on_controller_loss",
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
        no_log: t.Optional[bool] = None,
        progress: t.Optional[dict] = None,
        executor: t.Optional[str] = None,
        name: t.Optional[str] = None,
        locks: t.Optional[list] = None,
        waiting_for: t.Optional[dict] = None,
        on_controller_loss: t.Optional[str] = None,
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
        # The job was launched under no_log: what it prints and reports is not shown to anyone.
        self.no_log = no_log
        # The job's latest report on the progress channel (progress.py): read live while it runs,
        # kept in the record once it has ended.
        self.progress = progress
        # "command" when the supervisor ran a command or shell task itself instead of the module.
        self.executor = executor
        # The job's name (run's name option), unique in its async dir while the job is known.
        self.name = name
        # The locks the supervisor takes before the job starts and holds until it ends.
        self.locks = locks
        # State waiting: {"lock": the lock waited for, "holder": the jid holding it, or None}.
        self.waiting_for = waiting_for
        # "kill" when the job ends once no controller renews its lease (see lease.py); None: keep.
        self.on_controller_loss = on_controller_loss
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

    @classmethod
    def not_found(cls, jid: str, async_dir: str) -> JobRecord:
        """The job that has no record in async_dir."""
        return cls(jid=jid, state=NOT_FOUND, reason=REASON_NO_RECORD, msg=_sentences.not_found(jid, async_dir))

    @classmethod
    def unreadable(cls, jid: str, problem: object) -> JobRecord:
        """The job whose record cannot be read or understood."""
        return cls(jid=jid, state=UNREADABLE, reason=REASON_BAD_RECORD, msg=_sentences.unreadable(jid, problem))

    # Transitions: the only code that ends a job or infers its end. Each sets the state, the
    # reason, the sentence, the result and the facts of the end together.

    def succeed(self, result: dict, *, exit_code: t.Optional[int] = None) -> None:
        """The module returned a result without failed: true."""
        self._end(SUCCEEDED, None, None, result, exit_code=exit_code)

    def fail_module(self, summary: t.Mapping[str, t.Any], result: dict, *, exit_code: t.Optional[int] = None) -> None:
        """The module returned failed: true; summary holds its msg and rc, result what the record keeps."""
        self._end(FAILED, REASON_MODULE_FAILED, _sentences.failure_sentence(self.jid, summary), result, exit_code=exit_code)

    def crash(
        self,
        how: str,
        *,
        signal: t.Optional[str] = None,
        exit_code: t.Optional[int] = None,
        captured: t.Optional[dict] = None,
        last_error: str = "",
        result: t.Optional[dict] = None,
    ) -> None:
        """The module gave no usable result (or could not start); how says why.

        Without result, the result is built as stock's wrapper builds it: failed, msg (with the
        last line of stderr), the captured output (cmd, data, stderr, module_stdout, module_stderr)
        and rc. A stock record passes its own result.
        """
        msg = _sentences.crashed(self.jid, how)
        if result is None:
            result = {"failed": True, "msg": _sentences.with_stderr_tail(msg, last_error)}
            result.update(captured or {})
            result["rc"] = exit_code if exit_code is not None else -1
        self._end(FAILED, REASON_MODULE_CRASHED, msg, result, signal=signal, exit_code=exit_code)

    def time_out(self, first_signal: str, last_signal: str, grace: float) -> None:
        """The async limit passed: the supervisor terminated the job."""
        msg = _sentences.timed_out(self.jid, self.timeout, first_signal, last_signal, grace)
        self._end(TIMED_OUT, REASON_ASYNC_LIMIT, msg, {"failed": True, "msg": msg, "changed": True}, signal=first_signal)

    def time_out_by_stock(self, result: dict) -> None:
        """Stock's async_wrapper recorded that it killed the job at its limit."""
        self._end(TIMED_OUT, REASON_ASYNC_LIMIT, _sentences.timed_out_by_stock(self.jid), result)

    def kill(self, first_signal: str, last_signal: str, grace: float, *, orphan: bool = False) -> None:
        """A kill request ended the job: through its supervisor, or directly (orphan) when the supervisor was gone."""
        msg = _sentences.killed_on_request(self.jid, first_signal, last_signal, grace, orphan=orphan)
        self._end(KILLED, REASON_KILL_REQUESTED, msg, {"failed": True, "msg": msg, "changed": True}, signal=first_signal)

    def wait_for_locks(self, waiting_for: dict) -> None:
        """The supervisor waits for the job's locks: the job has not started, and its clock has not either."""
        self.state, self.deadline, self.waiting_for = WAITING, None, waiting_for

    def start_after_locks(self, started_at: t.Optional[str], deadline: t.Optional[str]) -> None:
        """The supervisor holds the job's locks: the job starts now, and its async limit with it."""
        self.state, self.waiting_for, self.started_at, self.deadline = RUNNING, None, started_at, deadline

    def time_out_waiting(self, busy: str, seconds: t.Optional[int]) -> None:
        """The job's locks were not free within its lock_timeout: it never started."""
        msg = _sentences.lock_timed_out(self.jid, busy, seconds)
        self._end(FAILED, REASON_LOCK_TIMEOUT, msg, {"failed": True, "msg": msg, "changed": False})

    def kill_waiting(self, busy: str) -> None:
        """A kill request came while the supervisor waited for the job's locks: nothing ran."""
        msg = _sentences.killed_while_waiting(self.jid, busy)
        self._end(KILLED, REASON_KILL_REQUESTED, msg, {"failed": True, "msg": msg, "changed": False})

    def lose_controller(self, seconds: t.Optional[int], first_signal: str, last_signal: str, grace: float) -> None:
        """on_controller_loss: kill, and no controller renewed the job's lease for seconds: the supervisor ended it."""
        msg = _sentences.controller_lost(self.jid, seconds, first_signal, last_signal, grace)
        self._end(
            KILLED, REASON_CONTROLLER_LOST, msg, {"failed": True, "msg": msg, "changed": True}, signal=first_signal
        )

    def lose_controller_waiting(self, seconds: t.Optional[int], busy: str) -> None:
        """on_controller_loss: kill, and no controller renewed the lease while the job waited for busy: nothing ran."""
        msg = _sentences.controller_lost_while_waiting(self.jid, seconds, busy)
        self._end(KILLED, REASON_CONTROLLER_LOST, msg, {"failed": True, "msg": msg, "changed": False})

    def lose(self, reason: str, *, file_system_problem: t.Optional[str] = None, async_dir: str = "") -> None:
        """The record says running, but the host rebooted or the supervisor died without recording an end.

        file_system_problem is what is wrong with the file system of async_dir, which
        likely kept the supervisor from recording the end. When the job ended is unknown.
        """
        if reason == REASON_HOST_REBOOTED:
            detail = _sentences.host_rebooted()
        else:
            detail = _sentences.supervisor_gone(self.pid)
            if file_system_problem:
                detail += _sentences.file_system_hint(async_dir, file_system_problem)
        msg = _sentences.lost(self.jid, detail)
        self._end(LOST, reason, msg, {"failed": True, "msg": msg}, end_known=False)

    def fail_to_save(self, problem: object) -> None:
        """The end could not be written with its result: a success becomes a failure, any other end says so."""
        if self.state == SUCCEEDED:
            self.state, self.reason = FAILED, REASON_RESULT_NOT_SAVED
            self.msg = _sentences.result_not_saved(self.jid, problem)
        else:
            self.msg = _sentences.also_not_saved(self.msg, problem)
        self.result = {"failed": True, "msg": self.msg}
        if self.exit_code is not None:
            self.result["rc"] = self.exit_code

    def note_recovered_end(self) -> None:
        """The end was read from the module's output after its supervisor died: say so, and that the exit code is unknown."""
        note = _sentences.recovered_end(self.jid, self.pid)
        self.exit_code = None
        self.msg = f"{self.msg}; {note}" if self.msg else note
        self.result = dict(self.result or {})
        self.result["warnings"] = list(self.result.get("warnings") or []) + [note]

    def _end(
        self,
        state: str,
        reason: t.Optional[str],
        msg: t.Optional[str],
        result: t.Optional[dict],
        *,
        signal: t.Optional[str] = None,
        exit_code: t.Optional[int] = None,
        end_known: bool = True,
    ) -> None:
        self.state, self.reason, self.msg, self.result = state, reason, msg, result
        self.signal, self.exit_code = signal, exit_code
        # Stock's records do not say when the job ended, and reading one is not its end.
        known = end_known and self.origin == "longrun"
        self.ended_at = format_time(utc_now()) if known else None

    @property
    def finished(self) -> bool:
        return self.state not in ACTIVE_STATES

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
        if self.state in ACTIVE_STATES:
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
        if self.state not in (RUNNING, WAITING, SUCCEEDED):
            data["reason"] = self.reason
            data["msg"] = self.msg
        if self.signal:
            data["signal"] = self.signal
        if self.exit_code is not None:
            data["exit_code"] = self.exit_code
        if self.no_log:
            data["no_log"] = True
        if isinstance(self.progress, dict):
            data["progress"] = dict(self.progress)
            if self.no_log and self.progress.get("msg") is not None:
                data["progress"]["msg"] = HIDDEN_BY_NO_LOG
        if self.executor:
            data["executor"] = self.executor
        if self.name:
            data["name"] = self.name
        if self.locks:
            data["locks"] = list(self.locks)
        if self.state == WAITING and isinstance(self.waiting_for, dict):
            data["waiting_for"] = dict(self.waiting_for)
        if self.on_controller_loss:
            data["on_controller_loss"] = self.on_controller_loss
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
_TEXT_FIELDS = (
    "state", "boot_id", "started_at", "ended_at", "deadline", "reason", "msg", "signal", "executor", "name",
    "on_controller_loss",
)
_BOOL_FIELDS = ("no_log",)
_DICT_FIELDS = ("progress", "waiting_for")
_LIST_FIELDS = ("locks",)
_META_TYPES: t.Dict[str, t.Tuple[type, ...]] = dict(
    [(name, (int,)) for name in _INT_FIELDS] + [(name, (str,)) for name in _TEXT_FIELDS]
    + [(name, (bool,)) for name in _BOOL_FIELDS] + [(name, (dict,)) for name in _DICT_FIELDS]
    + [(name, (list,)) for name in _LIST_FIELDS]
)


def _longrun_record(jid: str, document: dict, meta: t.Any) -> JobRecord:
    if not isinstance(meta, dict) or meta.get("state") not in STATES:
        raise ValueError(f"the {META_KEY} section is malformed")
    if meta.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"schema {meta.get('schema')!r} is not supported (expected {SCHEMA_VERSION})")
    values = {}
    for name, kinds in _META_TYPES.items():
        value = meta.get(name)
        if value is not None and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            raise ValueError(f"the {META_KEY} field {name!r} has the wrong type ({type(value).__name__})")
        values[name] = value
    record = JobRecord(jid=jid, **values)
    if record.state not in ACTIVE_STATES:
        record.result = {k: v for k, v in document.items() if k not in ENVELOPE_KEYS}
    return record


def _stock_record(jid: str, document: dict) -> JobRecord:
    """Stock async_wrapper records: running while 'started' is present, else the result."""
    record = JobRecord(jid=jid, state=RUNNING, origin="stock")
    if "started" in document and not document.get("finished"):
        return record
    result = {k: v for k, v in document.items() if k not in ENVELOPE_KEYS}
    if not result.get("failed"):
        record.succeed(result)
    elif str(result.get("msg") or "") == "Timeout exceeded":
        record.time_out_by_stock(result)
    elif "data" in result or "outdata" in result:
        record.crash(_sentences.stock_crash_cause(str(result.get("msg") or "")), result=result)
    else:
        record.fail_module(result, result)
    return record
