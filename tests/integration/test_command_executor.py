"""The command executor gives ansible.builtin.command's result, key for key.

Each case of the table runs once as a plain task of stock ``ansible.builtin.command`` or
``ansible.builtin.shell`` and once through ``longrun.jobs.run`` with ``poll > 0``; the results must be
equal at every depth except the timings (start, end, delta) and the job's own keys. Cases that the
executor runs must say so in ``job.executor``; cases it leaves to the module must not.
"""

from __future__ import annotations

import json
import os
import time
import typing as t
from pathlib import Path

import ansible
import pytest
import yaml
from playbook_run import TARGET_HOST, RunPlaybook

# Keys that differ by design: timings, and what a job adds.
NOT_COMPARED = frozenset({"start", "end", "delta", "job", "ansible_job_id", "results_file", "started", "finished"})
CORE = tuple(int(part) for part in ansible.__version__.split(".")[:2])
BIG_OUTPUT_BYTES = 50_000_000
# The supervisor's peak RSS in KiB: generous, the output is 50 MB.
BIG_OUTPUT_MAX_RSS_KIB = 64 * 1024


class Case(t.NamedTuple):
    name: str
    module: str
    args: dict
    # True: the executor runs it; False: the module does (fallback).
    executor: bool = True
    task: dict = {}  # noqa: RUF012 - a NamedTuple default, never mutated


def cases(work: Path) -> list[Case]:
    exists = work / "exists"
    missing = work / "missing"
    table = [
        Case("raw", "command", {"_raw_params": "echo hello   world"}),
        Case("argv", "command", {"argv": ["printf", "%s|", "a b", "c", ""]}),
        Case("shell_pipe", "shell", {"_raw_params": "echo one two | tr a-z A-Z"}),
        Case(
            "shell_bash", "shell",
            {"_raw_params": "[[ 1 == 1 ]] && echo bash ${BASH_VERSION:+is bash}", "executable": "/bin/bash"},
        ),
        Case("chdir", "command", {"_raw_params": "pwd", "chdir": str(work)}),
        Case("chdir_missing", "command", {"_raw_params": "pwd", "chdir": str(missing)}),
        Case("chdir_tilde", "shell", {"_raw_params": "pwd", "chdir": "~"}),
        Case("creates_existing", "command", {"_raw_params": "echo not run", "creates": str(exists)}),
        Case("creates_missing", "command", {"_raw_params": "echo ran", "creates": str(work / "missing*")}),
        Case("removes_existing", "command", {"_raw_params": "echo ran", "removes": str(work / "exist*")}),
        Case("removes_missing", "command", {"_raw_params": "echo not run", "removes": str(missing)}),
        Case("creates_relative_to_chdir", "command",
             {"_raw_params": "echo x", "chdir": str(work), "creates": "exists"}),
        Case("stdin", "command", {"_raw_params": "cat", "stdin": "line one\nline two"}),
        Case("stdin_count", "command", {"_raw_params": "wc -c", "stdin": "abc"}),
        Case("stdin_no_newline", "command", {"_raw_params": "wc -c", "stdin": "abc", "stdin_add_newline": False}),
        Case("keep_empty_ends", "shell",
             {"_raw_params": "printf 'a\\n\\n\\n'; printf 'e\\n\\n' >&2", "strip_empty_ends": False}),
        Case("expand", "command", {"_raw_params": "echo $HOME ~ '$HOME' ~/x"}),
        Case("no_expand", "command", {"argv": ["echo", "$HOME", "~"], "expand_argument_vars": False}),
        Case("expand_argv", "command", {"argv": ["echo", "$HOME", "~/y"], "expand_argument_vars": True}),
        Case("nonzero", "shell", {"_raw_params": "echo out; echo err >&2; exit 3"}),
        Case("stderr", "command", {"_raw_params": f"ls {missing}"}),
        Case("signal", "shell", {"_raw_params": "echo before; kill -TERM $$"}),
        Case("unicode", "shell", {"_raw_params": "echo 'héllo wörld ☃ 😀'; echo 'ünï' >&2"}),
        Case("crlf", "shell", {"_raw_params": "printf 'a\\r\\nb\\r\\n\\r\\n'"}),
        Case("one_megabyte", "shell", {"_raw_params": "yes 0123456789abcdef | head -c 1000000"}),
        Case("shell_argv", "shell", {"argv": ["echo", "it's", "$HOME"]}),
        Case("bools_as_text", "command", {"_raw_params": "wc -c", "stdin": "ab", "stdin_add_newline": "no"}),
        Case("no_log", "shell", {"_raw_params": "echo secret"}, task={"no_log": True}),
        Case("environment", "shell", {"_raw_params": "echo $LONGRUN_TEST_VAR"},
             task={"environment": {"LONGRUN_TEST_VAR": "from the task"}}),
        # Left to the module.
        Case("executable_without_shell", "command", {"_raw_params": "echo hi", "executable": "/bin/bash"},
             executor=False),
        Case("check_mode", "command", {"_raw_params": "echo hi", "creates": str(missing)}, executor=False,
             task={"check_mode": True}),
        # The target finds no such program: the module runs and says so in its own words.
        Case("missing_program", "command", {"_raw_params": "longrun-no-such-program arg"}, executor=False),
        Case("missing_shell", "shell", {"_raw_params": "echo hi", "executable": str(missing)}, executor=False),
        Case("escape_hatch", "command", {"_raw_params": "echo hatch"}, executor=False,
             task={"vars": {"longrun_command_executor": False}}),
    ]
    if CORE >= (2, 19):
        table.append(Case("cmd", "command", {"cmd": "echo via cmd"}))
    return table


def playbook(table: list[Case], out: Path) -> list[dict]:
    tasks: list[dict] = []
    for index, case in enumerate(table):
        module = f"ansible.builtin.{case.module}"
        tasks.append({
            "name": f"Stock {case.name}", module: case.args, "register": f"stock_{index}", "ignore_errors": True,
            **case.task,
        })
        tasks.append({
            "name": f"Longrun {case.name}", "longrun.jobs.run": {module: case.args}, "async": 60, "poll": 1,
            "register": f"ours_{index}", "ignore_errors": True, **case.task,
        })
    results = ", ".join(f"'{case.name}': {{'stock': stock_{i}, 'ours': ours_{i}}}" for i, case in enumerate(table))
    tasks.append({
        "name": "Save the results",
        "ansible.builtin.copy": {"dest": str(out / "results.json"), "content": f"{{{{ {{{results}}} | to_json }}}}",
                                 "mode": "0600"},
    })
    return [{"name": "Stock and executor", "hosts": TARGET_HOST, "gather_facts": False, "tasks": tasks}]


def differences(stock: t.Any, ours: t.Any, path: str = "") -> list[str]:
    if isinstance(stock, dict) and isinstance(ours, dict):
        found = []
        for key in sorted(set(stock) | set(ours)):
            if not path and key in NOT_COMPARED:
                continue
            if key not in ours or key not in stock:
                found.append(f"{path}{key}: only in {'stock' if key in stock else 'longrun'}")
                continue
            found += differences(stock[key], ours[key], f"{path}{key}.")
        return found
    if isinstance(stock, list) and isinstance(ours, list) and len(stock) == len(ours):
        return [item for index, pair in enumerate(zip(stock, ours)) for item in differences(*pair, f"{path}{index}.")]
    return [] if stock == ours else [f"{path.rstrip('.')}: stock {stock!r:.300}, longrun {ours!r:.300}"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    (path / "exists").write_text("")
    return path


def test_executor_result_equals_the_module(
    run_playbook: RunPlaybook, work: Path, out_dir: Path, tmp_path: Path
) -> None:
    table = cases(work)
    book = tmp_path / "table.yml"
    book.write_text(yaml.safe_dump(playbook(table, out_dir), sort_keys=False, allow_unicode=True))
    run = run_playbook(book)
    run.assert_ok()
    results = run.load("results.json")
    problems = []
    for case in table:
        stock, ours = results[case.name]["stock"], results[case.name]["ours"]
        problems += [f"{case.name}: {difference}" for difference in differences(stock, ours)]
        executor = ours.get("job", {}).get("executor")
        if executor != ("command" if case.executor else None):
            problems.append(f"{case.name}: job.executor is {executor!r}, job: {ours.get('job')}")
    assert not problems, "\n".join(problems)
    # The table means something: the cases did what they say.
    assert results["chdir_missing"]["ours"]["failed"] and results["signal"]["ours"]["rc"] == -15
    assert results["stdin_no_newline"]["ours"]["stdout"].strip() == "3"
    assert results["creates_existing"]["ours"]["stdout"].startswith("skipped")
    # 1,000,000 is not a multiple of the line length: no trailing newline to strip.
    assert len(results["one_megabyte"]["ours"]["stdout"]) == 1_000_000


def wait_for_record(path: Path, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            document = json.loads(path.read_bytes())
            if document.get("finished"):
                return document
        time.sleep(0.5)
    raise AssertionError(f"{path} did not end within {seconds} s")


def test_big_output_streams_with_bounded_memory(
    run_playbook: RunPlaybook, async_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    line = "0123456789" * 9 + "abcdefghi\n"
    book = tmp_path / "big.yml"
    book.write_text(yaml.safe_dump([{
        "name": "Big output", "hosts": TARGET_HOST, "gather_facts": False, "tasks": [
            {"name": "Launch",
             "longrun.jobs.run": {"ansible.builtin.shell": f"yes '{line[:-1]}' | head -c {BIG_OUTPUT_BYTES}"},
             "async": 300, "poll": 0, "register": "launched"},
            {"name": "Save", "ansible.builtin.copy": {"dest": str(out_dir / "launched.json"),
                                                      "content": "{{ launched | to_json }}", "mode": "0600"}},
        ],
    }], sort_keys=False))
    run_playbook(book).assert_ok()
    launched = json.loads((out_dir / "launched.json").read_text())
    assert launched["job"]["executor"] == "command"
    record_path = async_dir / launched["ansible_job_id"]
    document = wait_for_record(record_path, 240)
    assert document["rc"] == 0, {key: value for key, value in document.items() if key not in ("stdout", "stderr")}
    assert len(document["stdout"]) == BIG_OUTPUT_BYTES - 1
    assert document["stdout"][:len(line)] == line and document["stdout"].endswith(line[:-1])
    max_rss = document["_longrun"]["supervisor_max_rss"]
    assert 0 < max_rss < BIG_OUTPUT_MAX_RSS_KIB, f"the supervisor peaked at {max_rss} KiB"
    # The command's output files stay after the end, private.
    stdout_file = async_dir / f".{launched['ansible_job_id']}.stdout"
    assert stdout_file.stat().st_size == BIG_OUTPUT_BYTES
    assert oct(stdout_file.stat().st_mode & 0o777) == "0o600"
    assert os.path.exists(async_dir / f".{launched['ansible_job_id']}.stderr")


def test_become_runs_the_command_as_the_become_user(
    run_playbook: RunPlaybook, become_user: str, out_dir: Path, tmp_path: Path
) -> None:
    table = [
        Case("become_id", "command", {"_raw_params": "id -un"}),
        Case("become_home", "shell", {"_raw_params": "echo $HOME; pwd", "chdir": "~"}),
    ]
    plays = playbook(table, out_dir)
    # The become user cannot enter the test's private dirs: its own async dir, and a Python it can run.
    plays[0].update(become=True, become_method="ansible.builtin.su", become_user=become_user,
                    vars={"ansible_python_interpreter": shared_python(), "ansible_async_dir": "~/.ansible_async"})
    plays[0]["tasks"][-1]["become"] = False
    # The module warns once when it creates the become user's remote tmp dir: not what is compared here.
    plays[0]["tasks"].insert(0, {"name": "Warm up", "ansible.builtin.command": "true", "changed_when": False})
    book = tmp_path / "become.yml"
    book.write_text(yaml.safe_dump(plays, sort_keys=False))
    run = run_playbook(book)
    run.assert_ok()
    results = run.load("results.json")
    for case in table:
        stock, ours = results[case.name]["stock"], results[case.name]["ours"]
        assert not differences(stock, ours), differences(stock, ours)
        assert ours["job"]["executor"] == "command"
    assert results["become_id"]["ours"]["stdout"] == become_user


def shared_python() -> str:
    """A Python every user can run (pyenv's live under /root)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no system-wide python3 for the become user")
