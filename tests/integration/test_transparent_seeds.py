"""Issue 13 acceptance: the playbooks of the seed documents, verbatim, with transparent mode off and on.

Each playbook in playbooks/seeds/ is copied from one of the two documents the project grew from
(/work/shared/seeds: an article on Ansible async, and Ansible's own async docs). Only the two
playbooks of Ansible's docs got back the ``tasks:`` line that the document lost. The scripts they
run (/opt/scripts/..., /opt/app/...) do not exist here, so those jobs fail with rc 2, the same
way in both runs; nothing outside the test's dirs is written (the copy tasks fail on the
controller: their sources do not exist).

Both runs go at once, each with its own async dir, and their results, as a JSON stdout callback
records them, are compared task by task. With the mode on, every async task of a module that
transparent mode intercepts is a longrun job; ``ansible.builtin.command:`` written as FQCN is
the documented exception (core binds it to its own action plugin), and stays a stock job that
our async_status reads.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

from playbook_run import TARGET_HOST, Target, tail

SEEDS_DIR = Path(__file__).resolve().parent / "playbooks" / "seeds"
CALLBACKS_DIR = Path(__file__).resolve().parent / "status_callbacks"
# Values that differ by design or by nature between two runs; see docs/transparent-mode.md.
NOT_COMPARED = frozenset({
    "job",  # longrun's own account of the job
    "ansible_job_id",  # a new id each run
    "results_file",  # holds the id
    "start", "end", "delta",  # timings
    "attempts",  # until-loops: our jobs end (and fail) before the first retry; stock's may need one more
    "invocation",  # stock's poller result carries async_status's own invocation
    "ansible_facts",  # gathered at two moments: clocks, free memory
})
BOOLEANS = frozenset({"started", "finished", "failed", "changed"})
# Tasks whose module transparent mode does not intercept: core's own async job, read by our async_status.
STOCK_JOB_TASKS = frozenset({
    "Simulate long running op (15 sec), wait for up to 45 sec, poll every 5 sec",
    "Simulate long running op, allow to run for 45 sec, fire and forget",
})


def write_inventory(path: Path, target: Target, target_python: str, *, localhost: bool) -> Path:
    """The seeds' groups (databases, app_servers) hold the test target; localhost, when the seed names it."""
    hosts = {TARGET_HOST: target.hostvars}
    inventory: dict[str, t.Any] = {"all": {"children": {"databases": {"hosts": hosts}, "app_servers": {"hosts": hosts}}}}
    if localhost:
        # Named, so that core's implicit localhost (and its interpreter discovery) stays out of it.
        inventory["all"]["hosts"] = {
            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": target_python}
        }
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def run_seed(
    playbook: Path, *, inventory: Path, env: dict[str, str], cwd: Path, bin_path: Path
) -> dict[str, t.Any]:
    command = [str(bin_path), "-i", str(inventory), str(playbook)]
    process = subprocess.run(
        command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240, check=False
    )
    try:
        document = json.loads(process.stdout)
    except ValueError:
        raise AssertionError(
            f"{' '.join(command)}: rc {process.returncode}\n{tail(process.stdout)}\n{tail(process.stderr)}"
        ) from None
    document["rc"] = process.returncode
    document["stderr"] = process.stderr
    return document


def comparable(result: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    kept = {}
    for key, value in result.items():
        if key in NOT_COMPARED or key.startswith("_ansible"):
            continue
        if isinstance(value, list):
            value = [comparable(item) if isinstance(item, dict) else item for item in value]
        elif isinstance(value, dict):
            value = comparable(value)
        elif key in BOOLEANS:
            value = bool(value)
        kept[key] = value
    return kept


def assert_same(ours: t.Any, stock: t.Any, where: str) -> None:
    """ours == stock, or an error that names the first differing key path and both values."""
    if isinstance(ours, dict) and isinstance(stock, dict):
        assert sorted(ours) == sorted(stock), f"{where}: keys differ: longrun {sorted(ours)}, stock {sorted(stock)}"
        for key in ours:
            assert_same(ours[key], stock[key], f"{where}.{key}")
    elif isinstance(ours, list) and isinstance(stock, list):
        assert len(ours) == len(stock), f"{where}: {len(ours)} items with longrun, {len(stock)} with stock"
        for index, (mine, theirs) in enumerate(zip(ours, stock)):
            assert_same(mine, theirs, f"{where}[{index}]")
    else:
        assert ours == stock, f"{where}: longrun {ours!r}, stock {stock!r}"


def async_task_names(playbook: Path) -> set[str]:
    return {task["name"] for play in yaml.safe_load(playbook.read_text()) for task in play["tasks"] if "async" in task}


def job_results(entry: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The results of one task entry: its loop items, or the result."""
    result = entry["result"]
    return result["results"] if isinstance(result.get("results"), list) else [result]


def seed_cases() -> list[t.Any]:
    """Each seed once: over ssh, the way they are meant to run, or local for the one that targets localhost.

    Stock's own poll and until-loop delays set the time of each case (up to 30 s), so each runs once.
    """
    cases = []
    for path in sorted(SEEDS_DIR.glob("*.yml")):
        transport = "local" if names_localhost(path) else "ssh"
        cases.append(pytest.param(path.name, transport, id=f"{transport}-{path.stem}"))
    return cases


def names_localhost(playbook: Path) -> bool:
    return any(play["hosts"] == "localhost" for play in yaml.safe_load(playbook.read_text()))


def in_task_order(results: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The callback's results ordered by task, then host: hosts of one task report in any order."""
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(results):
        first_seen.setdefault(entry["task"], index)
    return sorted(results, key=lambda entry: (first_seen[entry["task"]], entry["host"]))


@pytest.mark.parametrize(("seed", "target"), seed_cases(), indirect=["target"])
def test_seed_playbook_gives_stock_results_with_longrun_jobs(
    seed: str,
    target: Target,
    target_python: str,
    tmp_path: Path,
    ansible_playbook_bin: Path,
    collections_path: str,
    transparent_dir: Path,
) -> None:
    inventory = write_inventory(
        tmp_path / "hosts.yml", target, target_python, localhost=names_localhost(SEEDS_DIR / seed)
    )
    runs = {}
    envs = {}
    for mode in ("stock", "transparent"):
        work = tmp_path / mode
        (work / "async").mkdir(parents=True, mode=0o700)
        envs[mode] = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": collections_path,
            "ANSIBLE_ASYNC_DIR": str(work / "async"),
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS_DIR),
            "ANSIBLE_STDOUT_CALLBACK": "json_stdout",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            **target.env,
        }
        if mode == "transparent":
            envs[mode]["ANSIBLE_ACTION_PLUGINS"] = str(transparent_dir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            mode: pool.submit(
                run_seed, SEEDS_DIR / seed, inventory=inventory, env=envs[mode], cwd=tmp_path / mode,
                bin_path=ansible_playbook_bin,
            )
            for mode in envs
        }
        runs = {mode: future.result() for mode, future in futures.items()}
    stock, ours = runs["stock"], runs["transparent"]
    for document in (stock, ours):
        document["results"] = in_task_order(document["results"])
    assert ours["rc"] == stock["rc"], f"stock rc {stock['rc']}, transparent rc {ours['rc']}\n{tail(ours['stderr'])}"
    # Neither [WARNING] nor [DEPRECATION WARNING]: a warning-free run.
    assert "WARNING]" not in ours["stderr"], tail(ours["stderr"])
    assert ours["stats"] == stock["stats"]
    assert [(e["task"], e["host"], e["status"]) for e in ours["results"]] == [
        (e["task"], e["host"], e["status"]) for e in stock["results"]
    ]
    launched = 0
    async_tasks = async_task_names(SEEDS_DIR / seed)
    for stock_entry, our_entry in zip(stock["results"], ours["results"]):
        where = f"{seed}: {our_entry['task']} on {our_entry['host']}"
        assert_same(comparable(our_entry["result"]), comparable(stock_entry["result"]), where)
        if our_entry["task"] not in async_tasks:
            continue
        for result in job_results(our_entry):
            launched += 1
            origin = "stock" if our_entry["task"] in STOCK_JOB_TASKS else "longrun"
            if origin == "longrun":
                assert result["job"]["origin"] == "longrun", where
            else:
                assert "job" not in result or result["job"]["origin"] == "stock", where
    assert launched, f"{seed}: no async launch was recorded"
