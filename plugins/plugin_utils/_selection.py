# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which jobs a call is about: jid lists from registered results, and ages like '12h'."""

from __future__ import annotations

import math
import re
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job.record import InvalidJid, validate_job_ref

_DURATION_RE = re.compile(r"\A(?:(\d+(?:\.\d+)?)w)?(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?"
                          r"(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?\Z")
_UNIT_SECONDS = (7 * 86400, 86400, 3600, 60, 1)
# Registered loop results nest at most this deep (a loop over include results); deeper is a mistake.
_MAX_NESTING = 8


def type_name(value: t.Any) -> str:
    """A type as users know it; Ansible hands plugins tagged subclasses such as _AnsibleTaggedInt."""
    for kind, name in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "number"),
                       (dict, "dictionary"), (list, "list"), (tuple, "list")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


class SelectionError(ValueError):
    """Bad jobs/older_than input; the message names the problem and the fix."""


def parse_duration(value: t.Any, *, option: str = "older_than") -> float:
    """Seconds from a number or a duration such as '90', '45s', '30m', '12h', '1d', '1w' or '1d12h'."""
    if isinstance(value, bool):
        raise SelectionError(f"{option} must be a number of seconds or a duration such as 12h or 1d, not a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        match = _DURATION_RE.match(text) if text else None
        if not match or not any(match.groups()):
            raise SelectionError(
                f"{option} {value!r} is not a duration: use seconds (3600) or a number with a unit, "
                "such as 30m, 12h, 1d or 1w"
            )
        seconds = sum(float(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS) if part)
    else:
        raise SelectionError(
            f"{option} must be a number of seconds or a duration such as 12h or 1d, not {type_name(value)}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise SelectionError(f"{option} must be 0 or more seconds, got {value!r}")
    return seconds


def flatten_jobs(jobs: t.Any) -> t.Tuple[t.List[str], int]:
    """Jids from a registered (loop) result or a list of jid strings (or job names) and registered results.

    Returns (jids in input order without duplicates, number of items without a job id),
    the latter being skipped loop items or launches that failed.
    """
    if isinstance(jobs, dict):
        # One registered result, or a whole registered loop.
        jobs = [jobs]
    if not isinstance(jobs, (list, tuple)):
        raise SelectionError(
            f"jobs must be a list of job ids or registered results, not {type_name(jobs)}: "
            "write jobs: \"{{ launched }}\" or jobs: [\"{{ launched.ansible_job_id }}\"]"
        )
    jids: t.List[str] = []
    seen: t.Set[str] = set()
    skipped = 0

    def visit(item: t.Any, where: str, depth: int) -> None:
        nonlocal skipped
        if depth > _MAX_NESTING:
            raise SelectionError(f"jobs{where} is nested too deeply: pass registered results or job ids")
        if isinstance(item, str):
            try:
                jid = validate_job_ref(item)
            except InvalidJid as exc:
                raise SelectionError(f"jobs{where}: {exc}") from None
            if jid not in seen:
                seen.add(jid)
                jids.append(jid)
        elif isinstance(item, dict):
            if item.get("ansible_job_id") is not None:
                visit(item["ansible_job_id"], f"{where}.ansible_job_id", depth + 1)
            elif isinstance(item.get("results"), list):
                for index, entry in enumerate(item["results"]):
                    visit(entry, f"{where}.results[{index}]", depth + 1)
            else:
                skipped += 1
        elif isinstance(item, (list, tuple)):
            for index, entry in enumerate(item):
                visit(entry, f"{where}[{index}]", depth + 1)
        else:
            raise SelectionError(
                f"jobs{where} is not a job id string, a registered async result or a registered loop result "
                f"(got {type_name(item)})"
            )

    for position, entry in enumerate(jobs):
        visit(entry, f"[{position}]", 0)
    return jids, skipped
