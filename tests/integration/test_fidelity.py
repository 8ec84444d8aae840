"""Results that tell the truth: the same module through stock async and through longrun gives the same keys.

Each case runs one test module (playbooks/library/fidelity_module.py) with stock ``async:`` and
``ansible.builtin.async_status`` in an until-loop, and with ``longrun.jobs.run`` and ``poll > 0``,
on the ansible-core the tests run with, and compares the top-level keys and their values. The
differences by design are those of the key table in docs/migrating-from-stock-async.md.
"""

from __future__ import annotations

import typing as t

import pytest
from playbook_run import RunPlaybook

CASES = ("module_failed", "raises", "no_json", "stderr", "trailing_text", "trailing_json", "missing_job")
# Keys whose values differ by design: longrun's own, and what the stock until-loop adds.
NOT_COMPARED = frozenset({"job", "ansible_job_id", "results_file", "attempts", "invocation"})
# Present in both results, with values that name different programs (stock's wrapper, our interpreter).
PRESENCE_ONLY = frozenset({"cmd"})
# What longrun adds when the module returned no usable JSON: core's keys for that case in a task without async.
CRASH_EXTRAS = frozenset({"module_stdout", "module_stderr", "rc"})
BOOLEANS = frozenset({"started", "finished", "failed", "changed"})
JUNK_WARNING = "Module invocation had junk after the JSON data: trailing text from "


def exception_text(stock_msg: str) -> str:
    """The message of the exception that ends stock's traceback ('ValueError: No start of json char found')."""
    last_line = stock_msg.strip().splitlines()[-1]
    return last_line.split(": ", 1)[1] if ": " in last_line else last_line


def compared_keys(result: t.Mapping[str, t.Any]) -> set[str]:
    return {key for key in result if key not in NOT_COMPARED and not key.startswith("_ansible")}


@pytest.mark.parametrize("case", CASES)
def test_stock_and_longrun_give_the_same_result(run_playbook: RunPlaybook, case: str) -> None:
    run = run_playbook("fidelity_compare.yml", extra_vars={"case": case})
    run.assert_ok()
    data = run.load("fidelity.json")
    stock, ours = data["stock"], data["longrun"]
    crashed = ours["job"].get("reason") == "module_crashed"
    extras = CRASH_EXTRAS if crashed else frozenset()
    assert compared_keys(ours) - extras == compared_keys(stock), f"stock: {stock}\nlongrun: {ours}"
    for key in sorted(compared_keys(stock) - PRESENCE_ONLY):
        if key in BOOLEANS:
            assert bool(ours[key]) is bool(stock[key]), key
        elif key == "msg" and case == "missing_job":
            # Core's wording, then where longrun looked and why a job may be missing.
            assert ours["msg"].startswith(stock["msg"]), f"stock: {stock['msg']}\nlongrun: {ours['msg']}"
        elif key == "msg" and stock["msg"].startswith("Traceback"):
            # Stock puts its wrapper's traceback there; longrun gives the exception's text in a sentence.
            assert exception_text(stock["msg"]) in ours["msg"], f"stock: {stock['msg']}\nlongrun: {ours['msg']}"
        elif key in ("stderr", "stderr_lines") and stock["stderr"].startswith("Traceback"):
            # The frames name stock's AnsiballZ file, or <stdin> for longrun, which pipes the module in.
            assert ours["stderr_lines"][-1] == stock["stderr_lines"][-1]
        elif key == "warnings":
            # The module names the run in its trailing text.
            assert [w.replace("from longrun", "from stock") for w in ours[key]] == stock[key]
        else:
            assert ours[key] == stock[key], f"{key}: stock {stock[key]!r}, longrun {ours[key]!r}"
    if case == "missing_job":
        assert "could not find job" in ours["msg"]
        assert ours["job"]["state"] == "not_found"
        return
    assert ours["job"]["state"] == ("succeeded" if not stock["failed"] else "failed")
    if case == "trailing_json":
        assert ours["job"]["reason"] == "module_crashed"
    if case == "module_failed":
        # Our sentence stays in job.msg; msg is the module's own, as in stock.
        assert ours["job"]["msg"].startswith(f"job {ours['ansible_job_id']} failed: the module's own message")
    if case == "trailing_text":
        # Ansible wraps long warnings: compare with the line breaks undone.
        shown = " ".join((run.stdout + run.stderr).split())
        for tag in ("stock", "longrun"):
            assert JUNK_WARNING + tag in shown, run.report()
