"""Transparent mode against stock: the same playbook, with the mode off and on, gives the same results (issue 13).

playbooks/transparent/compare.yml registers one result per case (``r_<case>``) and dumps them all;
it runs once with the mode off (core's own action plugins) and once with the mode on
(ANSIBLE_ACTION_PLUGINS naming the collection's transparent/action_plugins). The results are
compared key by key, to any depth, except for DIFFERENCES_BY_DESIGN. The two runs go side by side and cost most of this file's time, so the tests of
one transport share them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import re
import secrets
import typing as t
from pathlib import Path

import pytest

from playbook_run import PlaybookRun, RunPlaybook, Target

ONLY_OURS = "only ours"
VALUE = "value"
# Keys of a result, at any depth, that differ between the runs by design; every other key must match.
DIFFERENCES_BY_DESIGN: dict[str, str] = {
    # The longrun job: state, reason, one-sentence msg, times and pids.
    "job": ONLY_OURS,
    # A new job id in every run, and the status file named after it.
    "ansible_job_id": VALUE,
    "results_file": VALUE,
    # When the module ran.
    "start": VALUE,
    "end": VALUE,
    "delta": VALUE,
    # An until-loop's count depends on how soon its job ended, in stock as in ours.
    "attempts": VALUE,
}
# The cases of compare.yml, by the way they run.
POLLED = (
    "r_shell_ignore_errors",
    "r_shell_fqcn_no_log",
    "r_command_failed_when_delegated",
    "r_ping_fqcn_defaults",
    "r_become",
    "r_check_mode",
)
LAUNCHED = ("r_launch_command_defaults", "r_launch_ping_short", "r_launch_failing")
WAITED = ("r_wait_command", "r_wait_ping", "r_wait_failing")
# Cut by its task timeout while its job goes on (in transparent mode).
TIMED_OUT = "r_timeout"
LOOPED = "r_loop"
WITHOUT_ASYNC = ("r_handler", "r_sync_ping", "r_sync_command_defaults", "r_copy")
CASES = (*POLLED, *LAUNCHED, *WAITED, TIMED_OUT, LOOPED, *WITHOUT_ASYNC)
# A killed job's supervisor is found lost on the first status request that sees its pid gone.
LOST_MAX_ATTEMPTS = 3
STOCK_ACTION_PLUGINS = "~/.ansible/plugins/action:/usr/share/ansible/plugins/action"


@dataclasses.dataclass(frozen=True)
class ModeRuns:
    """compare.yml run with transparent mode off (stock) and on (ours), and what each dumped."""

    stock: PlaybookRun
    ours: PlaybookRun
    stock_results: dict[str, t.Any]
    ours_results: dict[str, t.Any]
    ours_async_dir: Path
    copy_dest: Path
    secret: str


# Two ansible-playbook runs take tens of seconds: the tests of one transport share them, or their failure.
_MODE_RUNS: dict[str, ModeRuns | AssertionError] = {}


def mode_env(transparent_dir: Path, *, on: bool, async_dir: Path) -> dict[str, str]:
    """The environment of a run: an async dir of its own, -v, and the action plugin path of the mode."""
    return {
        "ANSIBLE_ACTION_PLUGINS": str(transparent_dir) if on else STOCK_ACTION_PLUGINS,
        "ANSIBLE_ASYNC_DIR": str(async_dir),
        "ANSIBLE_VERBOSITY": "1",
    }


def run_both_modes(run_playbook: RunPlaybook, tmp_path: Path, transparent_dir: Path) -> ModeRuns:
    secret = f"SECRET{secrets.token_hex(8)}"
    # The copy finds its file as it would write it: the two runs only read it, and never race.
    copy_dest = tmp_path / "copied.txt"
    copy_dest.write_text("copied")
    copy_dest.chmod(0o600)
    async_dirs = {label: tmp_path / f"async-{label}" for label in ("stock", "ours")}

    def run(label: str) -> PlaybookRun:
        async_dirs[label].mkdir(mode=0o700)
        return run_playbook(
            "transparent/compare.yml",
            extra_vars={"run_label": label, "secret": secret, "copy_dest": str(copy_dest)},
            env=mode_env(transparent_dir, on=label == "ours", async_dir=async_dirs[label]),
        )

    # Stock's poller mostly sleeps: side by side, the two runs take little more than the longer one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        stock, ours = pool.map(run, ("stock", "ours"))
    print(f"compare.yml: stock {stock.duration:.1f} s, transparent {ours.duration:.1f} s")
    stock.assert_ok()
    ours.assert_ok()
    return ModeRuns(
        stock=stock,
        ours=ours,
        stock_results=stock.load("stock.json"),
        ours_results=ours.load("ours.json"),
        ours_async_dir=async_dirs["ours"],
        copy_dest=copy_dest,
        secret=secret,
    )


@pytest.fixture
def mode_runs(target: Target, run_playbook: RunPlaybook, tmp_path: Path, transparent_dir: Path) -> ModeRuns:
    if target.transport not in _MODE_RUNS:
        try:
            _MODE_RUNS[target.transport] = run_both_modes(run_playbook, tmp_path, transparent_dir)
        except AssertionError as exc:
            _MODE_RUNS[target.transport] = exc
            raise
    cached = _MODE_RUNS[target.transport]
    if isinstance(cached, AssertionError):
        pytest.fail(f"the runs of compare.yml over {target.transport} failed (see the first test): {cached}")
    return cached


def same_boolean(stock: t.Any, ours: t.Any) -> bool | None:
    """Whether two flags agree, one of them a boolean and the other one too or 1/0; None if they are not flags.

    Stock's async_status says 1/0 for started and finished up to ansible-core 2.18.
    """
    if not (isinstance(stock, bool) or isinstance(ours, bool)):
        return None
    if not all(isinstance(value, int) and value in (0, 1) for value in (stock, ours)):
        return None
    return bool(stock) is bool(ours)


def differences(stock: t.Any, ours: t.Any, path: str) -> list[tuple[str, str]]:
    """(path, what differs) for every difference that is not by design."""
    if isinstance(stock, dict) and isinstance(ours, dict):
        found = []
        for key in sorted(set(stock) | set(ours)):
            where = f"{path}.{key}"
            design = DIFFERENCES_BY_DESIGN.get(key)
            if key not in ours:
                found.append((where, f"only stock has it: {stock[key]!r}"))
            elif key not in stock:
                if design != ONLY_OURS:
                    found.append((where, f"only transparent mode has it: {ours[key]!r}"))
            elif design == ONLY_OURS:
                found.append((where, f"stock has it too: {stock[key]!r}"))
            elif design != VALUE:
                found.extend(differences(stock[key], ours[key], where))
        return found
    if isinstance(stock, list) and isinstance(ours, list) and len(stock) == len(ours):
        return [
            found for index, pair in enumerate(zip(stock, ours)) for found in differences(*pair, f"{path}[{index}]")
        ]
    same = same_boolean(stock, ours)
    if same is None:
        same = stock == ours
    return [] if same else [(path, f"stock {stock!r}, transparent {ours!r}")]


@pytest.mark.parametrize("case", CASES)
def test_results_match_stock(mode_runs: ModeRuns, case: str) -> None:
    stock, ours = mode_runs.stock_results, mode_runs.ours_results
    assert sorted(stock) == sorted(ours) == sorted(CASES), "compare.yml and CASES name different cases"
    found = differences(stock[case], ours[case], case)
    assert not found, "results differ with transparent mode on:\n" + "\n".join(f"{w}: {d}" for w, d in found)


def test_each_case_exercises_its_feature(mode_runs: ModeRuns) -> None:
    """What stock did, so that no comparison passes because a case tests nothing."""
    stock = mode_runs.stock_results
    assert [item["stdout"] for item in stock["r_loop"]["results"]] == ["first", "second"]
    assert stock["r_shell_ignore_errors"]["failed"] is True and stock["r_shell_ignore_errors"]["stderr"] == "worse"
    failed_when = stock["r_command_failed_when_delegated"]
    assert (failed_when["rc"], failed_when["failed"], failed_when["changed"]) == (3, False, True)
    assert stock["r_handler"]["stdout"] == "handler ran"
    assert stock["r_ping_fqcn_defaults"]["ping"] == "defaulted"
    assert stock["r_wait_command"]["stdout"] == stock["r_sync_command_defaults"]["stdout"] == "/"
    assert stock["r_wait_ping"]["ping"] == "pong"
    assert stock["r_wait_failing"]["failed"] is True and stock["r_wait_failing"]["rc"] == 3
    assert stock["r_become"]["stdout"] == "root"
    assert stock["r_check_mode"]["skipped"] is True
    assert stock["r_copy"]["dest"] == str(mode_runs.copy_dest) and stock["r_copy"]["changed"] is False


def async_results(results: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """Every result of an async task or of an async_status poll, loop items one by one."""
    found = {case: results[case] for case in (*POLLED, *LAUNCHED, *WAITED, TIMED_OUT)}
    found.update({f"{LOOPED}[{index}]": item for index, item in enumerate(results[LOOPED]["results"])})
    return found


def read_meta(record: Path) -> dict[str, t.Any]:
    """The longrun part of a job record."""
    return t.cast(dict, json.loads(record.read_text())["_longrun"])


def test_async_tasks_run_as_longrun_jobs(mode_runs: ModeRuns) -> None:
    results = mode_runs.ours_results
    for case, result in async_results(results).items():
        assert result.get("job", {}).get("origin") == "longrun", f"{case}: {result}"
    for case in WITHOUT_ASYNC:
        assert "job" not in results[case] and "ansible_job_id" not in results[case], f"{case}: {results[case]}"
    # Poll 0 launches keep a record of our schema; nothing else does: poll > 0 results removed theirs
    # (the job that outlived its task timeout through core's poller and cleanup, as with stock), and
    # tasks without async never made one.
    kept = {results[case]["ansible_job_id"]: case for case in LAUNCHED}
    names = {path.name for path in mode_runs.ours_async_dir.iterdir()}
    records = {name for name in names if not name.startswith(".")}
    assert sorted(records) == sorted(kept)
    # Besides, the output files that command and shell jobs keep (the command executor's), of those jobs only.
    side_files = names - records
    assert {name.rsplit(".", 1)[0][1:] for name in side_files} <= set(kept), sorted(side_files)
    assert {name.rsplit(".", 1)[1] for name in side_files} <= {"stdout", "stderr"}, sorted(side_files)
    for jid, case in kept.items():
        meta = read_meta(mode_runs.ours_async_dir / jid)
        assert meta["schema"] == 1 and meta["jid"] == jid, f"{case}: {meta}"
    for case, result in async_results(results).items():
        if result["ansible_job_id"] not in kept:
            assert not Path(result["results_file"]).exists(), f"{case}: {result['results_file']} is left"


def test_no_log_secret_stays_hidden(mode_runs: ModeRuns) -> None:
    for run in (mode_runs.stock, mode_runs.ours):
        assert mode_runs.secret not in run.stdout + run.stderr, run.report()
        assert "censored" in run.stdout
    # The registered result is the task's own in both modes: no_log hides what is shown, not what is registered.
    assert mode_runs.ours_results["r_shell_fqcn_no_log"]["stdout"] == mode_runs.secret
    for path in mode_runs.ours_async_dir.rglob("*"):
        if path.is_file():
            assert mode_runs.secret.encode() not in path.read_bytes(), path


def test_verbose_output_names_longrun(mode_runs: ModeRuns) -> None:
    results = mode_runs.ours_results
    polled_jid = results["r_loop"]["results"][0]["ansible_job_id"]
    launched_jid = results["r_launch_command_defaults"]["ansible_job_id"]
    assert f"[target] longrun: job {polled_jid} started" in mode_runs.ours.stdout, mode_runs.ours.report()
    assert re.search(rf"\[target\] longrun: \S+ runs as job {re.escape(launched_jid)}", mode_runs.ours.stdout)
    assert "] longrun:" not in mode_runs.stock.stdout, mode_runs.stock.report()


def test_until_loop_over_a_killed_job_ends_lost(
    run_playbook: RunPlaybook, tmp_path: Path, transparent_dir: Path, marker: int
) -> None:
    async_dir = tmp_path / "async-lost"
    async_dir.mkdir(mode=0o700)
    run = run_playbook(
        "transparent/lost.yml",
        extra_vars={"marker": marker},
        env=mode_env(transparent_dir, on=True, async_dir=async_dir),
    )
    run.assert_ok()
    data = run.load("lost.json")
    waited = data["waited"]
    assert waited["job"]["state"] == "lost", waited
    assert waited["job"]["reason"] == "supervisor_gone"
    assert waited["failed"] is True and waited["finished"] is True
    assert waited["attempts"] <= LOST_MAX_ATTEMPTS, waited
    assert read_meta(async_dir / waited["ansible_job_id"])["state"] == "lost"
