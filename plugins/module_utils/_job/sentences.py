# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every sentence that tells how a job ended (or why it cannot be told), in one place.

Users, playbooks and tests read these texts: change one only on purpose. The
JobRecord transitions (record.py) are their callers; no other code words an end.
"""

from __future__ import annotations

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t


def escalation(first_signal: str, last_signal: str, grace: float) -> str:
    """The tail of a kill or timeout sentence when the first signal was not enough."""
    return "" if last_signal == first_signal else f", then SIGKILL after {grace} s grace"


def timed_out(jid: str, timeout: t.Optional[int], first_signal: str, last_signal: str, grace: float) -> str:
    return (
        f"job {jid} timed out after {timeout} s (async limit) "
        f"and was terminated with {first_signal}{escalation(first_signal, last_signal, grace)}"
    )


def timed_out_by_stock(jid: str) -> str:
    return f"job {jid} timed out (async limit) and was killed by stock async_wrapper"


def killed_on_request(jid: str, first_signal: str, last_signal: str, grace: float, *, orphan: bool = False) -> str:
    sentence = f"job {jid} was killed on request with {first_signal}{escalation(first_signal, last_signal, grace)}"
    if orphan:
        sentence += "; its supervisor had died, so the job's own process group was signalled"
    return sentence


def lock_timed_out(jid: str, busy: str, seconds: t.Optional[int]) -> str:
    return (
        f"job {jid} never started: {busy} was not free within {seconds} s (lock_timeout); "
        "raise lock_timeout, or find the holder with longrun.jobs.async_status mode=list"
    )


def controller_lost_while_waiting(jid: str, seconds: t.Optional[int], busy: str) -> str:
    return (
        f"job {jid} was ended because no controller waited on it for {seconds} s (on_controller_loss: kill) "
        f"while it waited for {busy}; it never started"
    )


def killed_while_waiting(jid: str, busy: str) -> str:
    return f"job {jid} was killed on request while it waited for {busy}; it never started"


def controller_lost(jid: str, seconds: t.Optional[int], first_signal: str, last_signal: str, grace: float) -> str:
    return (
        f"job {jid} was killed because no controller waited on it for {seconds} s (on_controller_loss: kill; "
        f"the run that launched it was interrupted or lost its connection), "
        f"with {first_signal}{escalation(first_signal, last_signal, grace)}"
    )


def crashed(jid: str, how: str) -> str:
    return f"job {jid} crashed: {how}"


def crash_cause(*, signal: t.Optional[str], exit_code: t.Optional[int], problem: str) -> str:
    """How a module that gave no usable JSON result ended, from its exit and what was wrong with its output."""
    if signal:
        return f"the module process was killed by {signal}"
    if problem.startswith("Extra data"):
        return f"the module printed more JSON after its result ({problem}), as when a broad except swallows exit_json"
    if exit_code:
        return f"the module exited with code {exit_code} without returning JSON ({problem})"
    return f"the module did not return JSON ({problem})"


def stock_crash_cause(module_msg: str) -> str:
    return module_msg or "the module did not return JSON"


def with_stderr_tail(message: str, last_error: str) -> str:
    """A crash message with the last line of the module's stderr, which usually names the error."""
    return f"{message}; its stderr ends with: {last_error}" if last_error else message


def start_problem(*, style: str, language: str, interpreter: str, reason: str) -> str:
    """Why the module's program cannot be started: the launch's refusal, and the crash when exec refuses later."""
    if style == "binary":
        return f"cannot run the binary module: {reason}; build it for the target's platform"
    return (
        f"cannot start the module with interpreter {interpreter!r}: {reason}; "
        f"set ansible_{language}_interpreter to a working {'Python' if language == 'python' else language}"
    )


def failure_sentence(jid: str, result: t.Mapping[str, t.Any]) -> str:
    """One sentence for a module that returned failed: true."""
    module_msg = str(result.get("msg") or "the module reported failure").strip().rstrip(".")
    rc = result.get("rc")
    if rc is not None and f"rc={rc}" not in module_msg:
        module_msg = f"{module_msg} (rc={rc})"
    return f"job {jid} failed: {module_msg}"


def lost(jid: str, detail: str) -> str:
    return f"job {jid} was lost: {detail}"


def host_rebooted() -> str:
    return "the host rebooted after it started (boot id changed)"


def supervisor_gone(supervisor_pid: t.Optional[int]) -> str:
    return f"its supervisor (pid {supervisor_pid}) died without recording an end"


def file_system_hint(async_dir: str, problem: str) -> str:
    """Why a supervisor likely could not record the end: its file system, full or read-only."""
    return f"; it likely could not, because the file system of {async_dir} {problem}"


def not_found(jid: str, async_dir: str) -> str:
    # Starts with core's wording, which playbooks written for stock async may look for.
    return (
        f"could not find job {jid} in {async_dir}: it never started there, was cleaned up, "
        "or ran as another user (use the same become settings as the launch)"
    )


def unreadable(jid: str, problem: object) -> str:
    return f"job {jid} is unreadable: {problem}"


def result_not_saved(jid: str, problem: object) -> str:
    return f"job {jid} succeeded, but its result could not be saved: {problem}"


def also_not_saved(message: t.Optional[str], problem: object) -> str:
    """An end that was not a success keeps its sentence and says that its result is lost too."""
    return f"{message}; its result could not be saved: {problem}"


def recovered_end(jid: str, supervisor_pid: t.Optional[int]) -> str:
    return (
        f"the supervisor of job {jid} (pid {supervisor_pid}) died after the module ended; "
        "the result was recovered from the module's output, and its exit code is unknown"
    )


def record_kept(jid: str, *, waiting: bool = False) -> str:
    """cleanup of one job (the stock form) that still runs, or still waits for its locks."""
    doing = "waiting for its locks" if waiting else "running"
    return (
        f"job {jid} is still {doing}, so its record was kept: wait for it to end, "
        "or use force: true to kill it first"
    )


def stock_job_not_killable(jid: str) -> str:
    return (
        f"job {jid} was started by stock async and records no process id, so it cannot be killed "
        "safely: launch jobs with longrun.jobs.run to be able to kill them"
    )
