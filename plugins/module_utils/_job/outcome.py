# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A job's end: what the module's exit and output mean, and the end record written from them.

The supervisor imports this module once its job has ended; a status request only
when it finds that a supervisor died after its module had ended (``recover_end``).
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import sys

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Type checkers only: the supervisor imports this module at every job's end.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _output

# Caps of captured output kept when a module crashes.
TAIL_BYTES = 4096
# Cap of the module's stderr put in the result of a module that returned JSON, as stock's wrapper does.
STDERR_BYTES = 1 << 20
# Core's warning for text after a module's JSON result (module_utils/json_utils.py).
JUNK_WARNING = "Module invocation had junk after the JSON data: "
# Result keys the supervisor decodes; everything else is copied into the record unread.
_NORMALIZED_KEYS = ("warnings", "deprecations")
_SUMMARY_KEYS = ("failed", "msg", "rc") + _NORMALIZED_KEYS


class FoundResult:
    """The module's JSON result in its output, the few values the supervisor reads, and what follows it."""

    __slots__ = ("output", "summary", "problem", "junk")

    def __init__(
        self,
        output: _output.ModuleResult,
        summary: t.Dict[str, t.Any],
        problem: t.Optional[str],
        junk: t.Optional[str],
    ) -> None:
        self.output = output
        self.summary = summary
        self.problem = problem
        self.junk = junk


def interpret_exit(
    record: _record.JobRecord, async_dir: str, command: t.List[str], status: t.Optional[int]
) -> t.Optional[_output.ModuleResult]:
    """End the record as the module's exit says; returns its JSON result, which is not loaded, when it gave one.

    The output is judged as ansible-core judges it: one JSON result, with anything
    after it dropped with core's warning, except more JSON, which fails the job.
    status is the module's wait status, or None when nobody reaped it (its supervisor
    died): without a result the record is then left as it is.
    """
    jid = record.jid
    signal_name: t.Optional[str] = None
    exit_code: t.Optional[int] = None
    if status is not None and os.WIFSIGNALED(status):
        signal_name = _proc.signal_name(os.WTERMSIG(status))
    elif status is not None:
        exit_code = os.WEXITSTATUS(status)
    found = None if signal_name else _find_result(async_dir, jid)
    if found is not None and found.problem is None:
        summary = found.summary
        result = {key: summary[key] for key in _NORMALIZED_KEYS if key in summary}
        if found.junk is not None:
            result["warnings"] = _as_list(result.get("warnings", [])) + [JUNK_WARNING + found.junk]
        result = normalize_result(result)
        stderr = _read_tail(async_dir, jid, ".stderr", STDERR_BYTES)
        if stderr:
            # As stock's wrapper does, the module process's stderr replaces the module's own.
            result["stderr"] = stderr.decode("utf-8", "replace")
        if summary.get("failed"):
            record.fail_module(summary, result, exit_code=exit_code)
        else:
            record.succeed(result, exit_code=exit_code)
        return found.output
    if status is not None:
        _record_crash(record, async_dir, command, found.problem if found is not None else None, signal_name, exit_code)
    return None


def _record_crash(
    record: _record.JobRecord,
    async_dir: str,
    command: t.List[str],
    problem: t.Optional[str],
    signal_name: t.Optional[str],
    exit_code: t.Optional[int],
) -> None:
    """No usable JSON result: the keys stock's wrapper gives (msg, cmd, data, stderr), and core's module_stdout/module_stderr."""
    stdout = tail_text(_read_tail(async_dir, record.jid, ".stdout"))
    stderr = tail_text(_read_tail(async_dir, record.jid, ".stderr"))
    if problem is None:
        # Imported here, in the supervisor at the job's end: the launcher never needs it.
        # pylint: disable-next=import-outside-toplevel,redefined-outer-name
        from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _output

        problem = "No start of json char found"
        if _output.has_line_starting_with_brace(_store.side_path(async_dir, record.jid, ".stdout")):
            problem = "no line of the output starts a valid JSON object"
    record.crash(
        _sentences.crash_cause(signal=signal_name, exit_code=exit_code, problem=problem),
        signal=signal_name,
        exit_code=exit_code,
        captured={
            "cmd": shlex.join(command),
            # Stock's name for the module's stdout.
            "data": stdout,
            "stderr": stderr,
            "module_stdout": stdout,
            "module_stderr": stderr,
        },
        last_error=_last_line(stderr),
    )


def _find_result(async_dir: str, jid: str) -> t.Optional[FoundResult]:
    path = _store.side_path(async_dir, jid, ".stdout")
    try:
        # Imported here, in the supervisor at the job's end: the launcher never needs it.
        # pylint: disable-next=import-outside-toplevel,redefined-outer-name
        from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _output

        output = _output.find_result(path)
        if output is None:
            return None
        trailer = _output.judge_trailer(output)
        return FoundResult(output, output.small_values(_SUMMARY_KEYS), trailer.problem, trailer.junk)
    except (OSError, ValueError):
        return None


def _read_tail(async_dir: str, jid: str, suffix: str, limit: int = TAIL_BYTES) -> bytes:
    try:
        with open(_store.side_path(async_dir, jid, suffix), "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - limit))
            return handle.read(limit)
    except OSError:
        return b""


def save_end(
    async_dir: str, record: _record.JobRecord, output: t.Optional[_output.ModuleResult], *, keep_output: bool = False
) -> None:
    """Remove the job's files and write its end record, with the module's result when it gave one.

    output may be anything with ModuleResult's member_chunks (the command executor's output).
    With keep_output, the .stdout and .stderr side files stay: they are a command job's own output.
    """
    jid = record.jid
    # Only the module's stdout is still needed, and only when its result is copied from there:
    # whoever sees the end record sees no other files of the job.
    _store.remove_work_dir(async_dir, jid)
    kept = (".stdout", ".stderr") if keep_output else (".stdout",) if output is not None else ()
    _store.remove_side_files(async_dir, jid, *(suffix for suffix in _store.SIDE_SUFFIXES if suffix not in kept))
    try:
        if output is None:
            record.supervisor_max_rss = peak_rss_kib()
            _store.write_record(async_dir, record)
        else:
            _store.write_document_chunks(async_dir, jid, _document_chunks(async_dir, record, output))
    except (_store.StoreError, ValueError) as exc:
        # The captured output may be what filled the disk: free it before the short record.
        _store.remove_side_files(async_dir, jid, ".stdout", ".stderr")
        # The short record that says so replaces the end that could not be written.
        record.fail_to_save(exc)
        record.supervisor_max_rss = peak_rss_kib()
        _store.write_record(async_dir, record)
    finally:
        if not keep_output:
            _store.remove_side_files(async_dir, jid, ".stdout")


def _document_chunks(
    async_dir: str, record: _record.JobRecord, output: _output.ModuleResult
) -> t.Iterator[bytes]:
    """The ended record: the module's members copied from its output, then ours."""
    yield b"{"
    copied = False
    for chunk in output.member_chunks(skip=_record.ENVELOPE_KEYS | set(record.result or {})):
        copied = True
        yield chunk
    # Measured here, after the copy, so that the figure covers it.
    record.supervisor_max_rss = peak_rss_kib()
    path = _store.record_path(async_dir, record.jid)
    envelope = json.dumps(record.to_document(path), sort_keys=True).encode("utf-8")
    yield (b", " if copied else b"") + envelope[1:-1] + b"}"


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
        if record.executor:
            # A command's output is not a module's: its result went with the supervisor.
            return None
        # The exit status went with the supervisor that would have reaped the module.
        output = interpret_exit(record, async_dir, [], None)
        if output is None:
            return None
        record.note_recovered_end()
        save_end(async_dir, record, output)
        # Read back: the module's result went from its output to the file without being loaded.
        return _store.read_record(async_dir, jid)
    finally:
        os.close(lock_fd)


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
        # ansible-core 2.19 and later: a WarningSummary or DeprecationSummary, its text in its event.
        event = item.get("event")
        if isinstance(event, dict) and isinstance(event.get("msg"), str):
            return event["msg"]
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
