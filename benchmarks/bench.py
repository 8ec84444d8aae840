# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stock async against longrun.jobs, side by side, over ``local`` and a loopback sshd.

Run it with the venv's python after ``make collection`` (``make bench`` does both). It prints a
table of medians and writes it, with a description of the machine, to docs/performance.md.

Environment:
    BENCH_REPEATS      runs per workload and transport (default 3); medians are reported
    BENCH_B5_SECONDS   length of the B5 sleep job (default 60; 10 for a quick run)
    BENCH_TRANSPORTS   comma-separated subset of ``local,ssh`` (default both)
    BENCH_WORKLOADS    comma-separated subset of ``b1,b2,b3,b4,b5,b6,b7,b8`` (default all); for quick
                       checks, with BENCH_OUTPUT elsewhere, since the report then holds only those
    BENCH_OUTPUT       where to write the report (default docs/performance.md)
    BENCH_B6_HOSTS     comma-separated host counts of B6 to run (default all: 10,50,200 local; 10,50 ssh)

Remote operations are counted from ``ansible-playbook -vvv`` output, not from the collection's
code: the ``EXEC``/``PUT``/``FETCH`` lines of the local connection, and the ``SSH: EXEC`` lines
(ssh, sftp and scp processes) of the ssh connection, between the banner of the measured task and
the next banner.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import datetime
import json
import os
import platform
import pwd
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
import typing as t
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load_test_module(name: str) -> types.ModuleType:
    """A pytest-free module of tests/integration, shared with the test harness instead of copied."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tests" / "integration" / f"{name}.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"tests/integration/{name}.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SSHD = _load_test_module("sshd_server")
HELPERS = _load_test_module("helpers")
PLAYBOOK_DIR = REPO_ROOT / "benchmarks" / "playbooks"
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "performance.md"
TARGET_PYTHON = "/usr/bin/python3"
SSHD_BINARY = Path("/usr/sbin/sshd")
PLAYBOOK_TIMEOUT = 600.0
STOP_GRACE = 5.0
MEASURED_PREFIX = "TASK [Measured: "
BANNER_RE = re.compile(r"^(TASK|RUNNING HANDLER) \[|^PLAY RECAP")
LOCAL_OP_RE = re.compile(r"^<[^>]+> (EXEC|PUT|FETCH) ")
SSH_OP_RE = re.compile(r"^<[^>]+> SSH: EXEC ")
B4_RECORDS = 10_000
B4_STATUS_JIDS = 1_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Goal:
    text: str
    check: t.Callable[[float], bool] | None = None
    # A goal on both medians (stock, ours), such as a difference within a share of stock's figure.
    check_pair: t.Callable[[float, float], bool] | None = None


@dataclasses.dataclass
class Row:
    """One line of the results table: a metric of one workload over one transport."""

    transport: str
    workload: str
    metric: str
    stock: list[float] = dataclasses.field(default_factory=list)
    ours: list[float] = dataclasses.field(default_factory=list)
    goal: Goal | None = None
    # Goals on our own figure (absolute limits) rather than on the ratio.
    goal_on_ours: bool = False

    @property
    def stock_median(self) -> float | None:
        return statistics.median(self.stock) if self.stock else None

    @property
    def ours_median(self) -> float | None:
        return statistics.median(self.ours) if self.ours else None

    @property
    def ratio(self) -> float | None:
        stock, ours = self.stock_median, self.ours_median
        if stock is None or ours is None or stock == 0:
            return None
        return ours / stock

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return ""
        if self.goal.check_pair is not None:
            stock, ours = self.stock_median, self.ours_median
            if stock is None or ours is None:
                return "n/a"
            return "pass" if self.goal.check_pair(stock, ours) else "FAIL"
        value = self.ours_median if self.goal_on_ours else self.ratio
        if value is None or self.goal.check is None:
            return "n/a"
        return "pass" if self.goal.check(value) else "FAIL"


# ---------------------------------------------------------------- loopback sshd


@dataclasses.dataclass
class SshServer:
    process: subprocess.Popen[bytes]
    port: int
    key_path: Path
    control_path_dir: Path


def start_sshd(workdir: Path) -> SshServer:
    """Start a private sshd on 127.0.0.1 with generated keys; the system sshd is never touched."""
    if not SSHD_BINARY.exists():
        raise SystemExit(f"{SSHD_BINARY} is missing; run `make sshd-package` first")
    SSHD.generate_key(workdir / "host_ed25519")
    SSHD.generate_key(workdir / "client_ed25519")
    shutil.copyfile(workdir / "client_ed25519.pub", workdir / "authorized_keys")
    control_path_dir = workdir / "cp"
    control_path_dir.mkdir(mode=0o700)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = SSHD.free_port()
    config = SSHD.write_sshd_config(workdir, port)
    with (workdir / "sshd.log").open("wb") as log:
        process = subprocess.Popen(
            [str(SSHD_BINARY), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    error = SSHD.wait_for_ssh_banner(process, port, 15)
    if error is not None:
        SSHD.stop_process(process)
        raise SystemExit(f"{error}: {(workdir / 'sshd.log').read_text()}")
    return SshServer(process, port, workdir / "client_ed25519", control_path_dir)


def stop_sshd(server: SshServer) -> None:
    """Close the ControlPersist masters first, then sshd and the connection children it left."""
    for control_socket in server.control_path_dir.iterdir():
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={control_socket}", "longrun-bench"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    HELPERS.terminate_pids(HELPERS.pids_with_cmdline(str(server.control_path_dir)), grace=STOP_GRACE)
    children = HELPERS.descendant_pids(server.process.pid)
    SSHD.stop_process(server.process)
    HELPERS.terminate_pids(children, grace=STOP_GRACE)


# ---------------------------------------------------------------- /proc


def read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float | None:
    fields = read_stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def parent_pid(pid: int) -> int:
    fields = read_stat(pid)
    return int(fields[1]) if fields else 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


# ---------------------------------------------------------------- running playbooks


@dataclasses.dataclass
class Transport:
    name: str
    inventory: Path
    env: dict[str, str]


@dataclasses.dataclass
class PlaybookResult:
    figures: dict[str, t.Any]
    output: str
    # utime + stime of ansible-playbook and every process it reaped: its workers and, over local, the modules.
    cpu_seconds: float = 0.0

    def remote_ops(self, transport: str, *, task_prefix: str = MEASURED_PREFIX) -> int:
        """Remote operations printed by the connection plugin during the measured task(s) (or those of task_prefix)."""
        pattern = SSH_OP_RE if transport == "ssh" else LOCAL_OP_RE
        count, inside = 0, False
        for line in self.output.splitlines():
            if BANNER_RE.match(line):
                inside = line.startswith(task_prefix)
            elif inside and pattern.match(line):
                count += 1
        return count


def make_transport(name: str, workdir: Path, server: SshServer | None) -> Transport:
    hostvars: dict[str, t.Any] = {"ansible_python_interpreter": TARGET_PYTHON}
    env: dict[str, str] = {}
    if name == "local":
        hostvars["ansible_connection"] = "local"
    else:
        assert server is not None
        hostvars.update(
            ansible_connection="ssh",
            ansible_host="127.0.0.1",
            ansible_port=server.port,
            ansible_user=pwd.getpwuid(os.geteuid()).pw_name,
            ansible_ssh_private_key_file=str(server.key_path),
            ansible_ssh_common_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
        )
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(server.control_path_dir)
    inventory = workdir / f"inventory-{name}.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"target": hostvars}}}))
    return Transport(name, inventory, env)


class Runner:
    """Runs benchmark playbooks, each with a fresh async directory under one temp dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.calls = 0
        # Transports that have had a warm-up run, for workloads that time short tasks.
        self.warmed_up: set[str] = set()
        self.ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
        self.collections_path = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(REPO_ROOT / ".build" / "collections")

    def transparent_dir(self) -> Path:
        """The installed collection's dir of transparent mode, the one the guide puts on the action plugin path."""
        for root in self.collections_path.split(os.pathsep):
            path = Path(root) / "ansible_collections" / "longrun" / "jobs" / "transparent" / "action_plugins"
            if path.is_dir():
                return path
        raise SystemExit(f"no longrun.jobs with transparent/action_plugins under {self.collections_path}; run `make collection`")

    def action_load_times(self, *, transparent: bool, count: int) -> list[float]:
        """Milliseconds that new workers take to load the actions transparent mode overrides (action_load_time.py)."""
        env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_ACTION_PLUGINS"}
        if transparent:
            env["ANSIBLE_ACTION_PLUGINS"] = str(self.transparent_dir())
        env["ANSIBLE_COLLECTIONS_PATH"] = self.collections_path
        completed = subprocess.run(
            [sys.executable, str(REPO_ROOT / "benchmarks" / "action_load_time.py"), str(count)],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PLAYBOOK_TIMEOUT,
            check=True,
        )
        return [float(value) for value in json.loads(completed.stdout)]

    def new_async_dir(self) -> Path:
        self.calls += 1
        path = self.workdir / f"async-{self.calls}"
        path.mkdir(mode=0o700)
        return path

    def run(
        self,
        transport: Transport,
        playbook: str,
        *,
        async_dir: Path | None = None,
        extra_vars: dict[str, t.Any] | None = None,
        pipelining: bool = False,
        verbose: bool = True,
        transparent: bool = False,
        env: dict[str, str] | None = None,
    ) -> PlaybookResult:
        async_dir = async_dir or self.new_async_dir()
        out_file = self.workdir / f"out-{self.calls}-{playbook}.json"
        vars_file = self.workdir / f"vars-{self.calls}.json"
        vars_file.write_text(json.dumps({**(extra_vars or {}), "out_file": str(out_file), "async_dir": str(async_dir)}))
        command = [str(self.ansible_playbook), "-i", str(transport.inventory), str(PLAYBOOK_DIR / playbook)]
        command += ["-e", f"@{vars_file}"] + (["-vvv"] if verbose else [])
        # Transparent mode is on only where a workload asks for it: an inherited setting would make stock not stock.
        env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_ACTION_PLUGINS"}
        if transparent:
            env["ANSIBLE_ACTION_PLUGINS"] = str(self.transparent_dir())
        env = {
            **env,
            "ANSIBLE_COLLECTIONS_PATH": self.collections_path,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_ASYNC_DIR": str(async_dir),
            "ANSIBLE_PIPELINING": "1" if pipelining else "0",
            **transport.env,
            **(env or {}),
        }
        cpu_before = children_cpu_seconds()
        # A scratch cwd keeps a stray ansible.cfg from changing the run.
        completed = subprocess.run(
            command,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PLAYBOOK_TIMEOUT,
            check=False,
        )
        output = completed.stdout.decode(errors="replace")
        if completed.returncode != 0:
            raise RuntimeError(
                f"{playbook} over {transport.name} failed (rc {completed.returncode}):\n"
                f"{output[-4000:]}\n{completed.stderr.decode(errors='replace')[-2000:]}"
            )
        cpu_seconds = children_cpu_seconds() - cpu_before
        figures = json.loads(out_file.read_text())
        return PlaybookResult(
            figures | {key: float(value) for key, value in figures.items() if is_number(value)}, output, cpu_seconds
        )


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def is_number(value: t.Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------- workloads


def ratio_at_most(limit: float) -> t.Callable[[float], bool]:
    return lambda value: value <= limit


B1_JOB_SECONDS = 3


def bench_b1(runner: Runner, transport: Transport, rows: dict[str, Row]) -> None:
    stock = runner.run(transport, "b1_stock.yml")
    ours = runner.run(transport, "b1_ours.yml")
    add(rows, transport, "B1 3 s job, async 60 poll 15", "task time (s)", stock.figures["task_time"], ours.figures["task_time"],
        goal=Goal("ours/stock ≤ 0.40 (2.5× faster)", ratio_at_most(0.4)))
    add(rows, transport, "B1 3 s job, async 60 poll 15", "remote ops", stock.remote_ops(transport.name), ours.remote_ops(transport.name))
    # The physical limit: what the task costs beyond the job's own 3 s.
    add(rows, transport, "B1 3 s job, async 60 poll 15", "overhead: task time − 3 s (s)",
        stock.figures["task_time"] - B1_JOB_SECONDS, ours.figures["task_time"] - B1_JOB_SECONDS,
        goal=Goal("ours < 0.30 s", lambda value: value < 0.3) if transport.name == "local" else None, goal_on_ours=True)


def bench_b2(runner: Runner, transport: Transport, rows: dict[str, Row]) -> None:
    stock = runner.run(transport, "b2_stock.yml")
    # The same jobs, launched the same way: only the wait differs.
    ours = runner.run(transport, "b2_ours.yml", extra_vars={"b2_launcher": "stock"})
    # Launched with longrun.jobs.run: the whole pattern, for information.
    ours_run = runner.run(transport, "b2_ours.yml", extra_vars={"b2_launcher": "run"})
    for result in (stock, ours, ours_run):
        if int(result.figures["finished"]) != 10:
            raise RuntimeError(f"B2: only {result.figures['finished']} of 10 jobs finished")
    workload = "B2 wait for 10 jobs (1-5 s)"
    add(rows, transport, workload, "remote ops", stock.remote_ops(transport.name), ours.remote_ops(transport.name),
        goal=Goal("ours/stock ≤ 0.10 (10× fewer)", ratio_at_most(0.1)))
    add(rows, transport, workload, "task time (s)", stock.figures["task_time"], ours.figures["task_time"],
        goal=Goal("ours/stock ≤ 1.00 (no worse)", ratio_at_most(1.0)))
    add(rows, transport, workload, "launch + wait time (s), launched by run", stock.figures["total_time"],
        ours_run.figures["total_time"])


def bench_b3(runner: Runner, transport: Transport, rows: dict[str, Row]) -> None:
    for pipelining in (True, False):
        stock = runner.run(transport, "b3_stock.yml", pipelining=pipelining)
        ours = runner.run(transport, "b3_ours.yml", pipelining=pipelining)
        workload = f"B3 launch 10 jobs, poll 0, pipelining {'on' if pipelining else 'off'}"
        stock_ops = stock.remote_ops(transport.name) / 10
        ours_ops = ours.remote_ops(transport.name) / 10
        if pipelining:
            add(rows, transport, workload, "remote ops per launch", stock_ops, ours_ops,
                goal=Goal("ours ≤ 1 per launch", lambda value: value <= 1.0), goal_on_ours=True)
        else:
            add(rows, transport, workload, "remote ops per launch", stock_ops, ours_ops,
                goal=Goal("ours/stock ≤ 0.50", ratio_at_most(0.5)))
        add(rows, transport, workload, "time per launch (s)", stock.figures["task_time"] / 10, ours.figures["task_time"] / 10,
            goal=Goal("ours/stock ≤ 0.60", ratio_at_most(0.6)))


B7_TASKS = 30
B7_WORKERS = 100
# "No measurable slowdown": the mode's cost per task must stay within the run-to-run noise of
# these runs, taken as 3 % of the time per task or 10 ms, whichever is larger.
B7_NOISE_SHARE = 0.03
B7_NOISE_FLOOR_MS = 10.0


def within_noise(off_ms: float, on_ms: float) -> bool:
    return on_ms - off_ms <= max(B7_NOISE_SHARE * off_ms, B7_NOISE_FLOOR_MS)


def bench_b7(runner: Runner, transport: Transport, rows: dict[str, Row]) -> None:
    if transport.name not in runner.warmed_up:
        # The first run of a transport pays for cold caches (bytecode, page cache, ssh master): not the mode's cost.
        runner.run(transport, "b7_sync.yml", transparent=True, verbose=False)
        runner.warmed_up.add(transport.name)
    # Off, on, on, off: a drift of the machine's speed during the four runs weighs on both modes alike.
    wall_ms: dict[bool, list[float]] = {False: [], True: []}
    cpu_ms: dict[bool, list[float]] = {False: [], True: []}
    for transparent in (False, True, True, False):
        result = runner.run(transport, "b7_sync.yml", transparent=transparent, verbose=False)
        wall_ms[transparent].append(1000 * result.figures["task_time"] / B7_TASKS)
        cpu_ms[transparent].append(1000 * result.cpu_seconds / B7_TASKS)
    print(f"    B7 per task (ms), off/on: wall {wall_ms[False]} / {wall_ms[True]}, cpu {cpu_ms[False]} / {cpu_ms[True]}",
          flush=True)
    workload = f"B7 {B7_TASKS} tasks without async (command, ping, shell), transparent mode off/on"
    # The goal is on the difference within each repeat (its runs are interleaved), against the time when off.
    goal = Goal(f"on − off ≤ max({B7_NOISE_SHARE:.0%} of off, {B7_NOISE_FLOOR_MS:g} ms)",
                check_pair=lambda off, difference: within_noise(off, off + difference))
    for metric, figures in (("time", wall_ms), ("CPU time", cpu_ms)):
        off, on = statistics.mean(figures[False]), statistics.mean(figures[True])
        add(rows, transport, workload, f"{metric} per task (ms)", off, on)
        add(rows, transport, workload, f"{metric} per task (ms): off, and on − off", off, on - off, goal=goal)
    # The mode's cost itself, without the noise of whole tasks: the load of the overridden actions in a new worker.
    load_off = statistics.median(runner.action_load_times(transparent=False, count=B7_WORKERS))
    load_on = statistics.median(runner.action_load_times(transparent=True, count=B7_WORKERS))
    add(rows, transport, workload, "load of normal + command in a new worker (ms)", load_off, load_on,
        goal=Goal(f"on − off ≤ {B7_NOISE_FLOOR_MS:g} ms", check_pair=lambda off, on: on - off <= B7_NOISE_FLOOR_MS))
    stock = runner.run(transport, "b7_async.yml")
    ours = runner.run(transport, "b7_async.yml", transparent=True)
    if stock.figures["origin"] != "none" or ours.figures["origin"] != "longrun":
        raise RuntimeError(f"B7: the job ran as {stock.figures['origin']} off and {ours.figures['origin']} on")
    workload = "B7 3 s job, async 60 poll 15, plain command task, transparent mode off/on"
    add(rows, transport, workload, "task time (s)", stock.figures["task_time"], ours.figures["task_time"],
        goal=Goal("on/off ≤ 0.40 (2.5× faster)", ratio_at_most(0.4)))
    add(rows, transport, workload, "remote ops", stock.remote_ops(transport.name), ours.remote_ops(transport.name))


B6_SIZES = {"local": (10, 50, 200), "ssh": (10, 50)}
B6_FORKS = (5, 50)
B6_JOB_SECONDS = 3
B6_WAIT_PREFIX = "TASK [Measured: wait"


def b6_inventory(runner: Runner, transport: Transport, hosts: int) -> Path:
    """The transport's one target, as ``hosts`` inventory aliases of the same machine."""
    base = json.loads(transport.inventory.read_text())["all"]["hosts"]["target"]
    aliases = {}
    for number in range(1, hosts + 1):
        alias = f"b6-{number:03d}"
        hostvars = dict(base)
        if transport.name == "ssh":
            # A ControlPersist master per alias, as for real hosts: one shared master would
            # multiplex every fork's sessions over one connection.
            hostvars["ansible_control_path"] = f"%(directory)s/{alias}"
        aliases[alias] = hostvars
    path = runner.workdir / f"inventory-b6-{transport.name}-{hosts}.json"
    path.write_text(json.dumps({"all": {"hosts": aliases}}))
    return path


def b6_sizes(transport: Transport) -> tuple[int, ...]:
    """The host counts of B6 on this transport; BENCH_B6_HOSTS (such as ``10,50``) keeps only those listed."""
    chosen = os.environ.get("BENCH_B6_HOSTS")
    sizes = B6_SIZES.get(transport.name, ())
    if chosen:
        wanted = {int(value) for value in chosen.split(",") if value.strip()}
        sizes = tuple(size for size in sizes if size in wanted)
    return sizes


def bench_b6(runner: Runner, transport: Transport, rows: dict[str, Row]) -> None:
    for hosts in b6_sizes(transport):
        scaled = dataclasses.replace(transport, inventory=b6_inventory(runner, transport, hosts))
        for forks in B6_FORKS:
            extra = {"b6_job_seconds": B6_JOB_SECONDS}
            env = {"ANSIBLE_FORKS": str(forks)}
            stock = runner.run(scaled, "b6_stock.yml", extra_vars=extra, env=env)
            ours = runner.run(scaled, "b6_ours.yml", extra_vars=extra, env=env)
            for name, result in (("stock", stock), ("longrun", ours)):
                if int(result.figures["finished"]) != hosts:
                    raise RuntimeError(f"B6: {name} finished {result.figures['finished']} of {hosts} jobs")
            workload = f"B6 1 job on each of {hosts:>3} hosts, forks {forks}"
            goal = Goal("ours/stock ≤ 0.50 (2× faster)", ratio_at_most(0.5)) if hosts >= 200 else Goal(
                "ours/stock ≤ 1.00 (no worse)", ratio_at_most(1.0))
            add(rows, transport, workload, "launch + wait time (s)", stock.figures["task_time"],
                ours.figures["task_time"], goal=goal)
            add(rows, transport, workload, "remote ops per host", stock.remote_ops(transport.name) / hosts,
                ours.remote_ops(transport.name) / hosts)
            add(rows, transport, workload, "wait: remote ops per host",
                stock.remote_ops(transport.name, task_prefix=B6_WAIT_PREFIX) / hosts,
                ours.remote_ops(transport.name, task_prefix=B6_WAIT_PREFIX) / hosts,
                goal=Goal("ours ≤ 1 per host", lambda value: value <= 1.0), goal_on_ours=True)


B8_JOBS = 10


def bench_b8(runner: Runner, transport: Transport, rows: dict[str, Row]) -> None:
    module = runner.run(transport, "b8.yml", extra_vars={"b8_executor": False})
    executor = runner.run(transport, "b8.yml", extra_vars={"b8_executor": True})
    if int(module.figures["on_executor"]) != 0 or int(executor.figures["on_executor"]) != B8_JOBS:
        raise RuntimeError(
            f"B8: {module.figures['on_executor']} module jobs and {executor.figures['on_executor']} of {B8_JOBS} "
            "executor jobs ran on the command executor"
        )
    workload = f"B8 {B8_JOBS} `true` command jobs, async 60 poll 1: module path / command executor"
    add(rows, transport, workload, "task time per job (s)", module.figures["task_time"], executor.figures["task_time"],
        goal=Goal("executor/module ≤ 1.00 (no worse)", ratio_at_most(1.0)))
    add(rows, transport, workload, "launch to end on the target per job (s)", module.figures["job_time"],
        executor.figures["job_time"], goal=Goal("executor/module ≤ 0.50", ratio_at_most(0.5)))


def write_stock_records(async_dir: Path, count: int) -> None:
    """Small finished records in stock's format, written 0600 and dated two days back."""
    old = time.time() - 2 * 86400
    for number in range(count):
        jid = f"j{number}.1"
        path = async_dir / jid
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"finished": 1, "changed": False, "rc": 0, "ansible_job_id": jid}, handle)
        os.utime(path, (old, old))


def bench_b4(runner: Runner, transport: Transport, rows: dict[str, Row]) -> None:
    async_dir = runner.new_async_dir()
    write_stock_records(async_dir, B4_RECORDS)
    jids = [f"j{number}.1" for number in range(B4_STATUS_JIDS)]
    # Without -vvv: the result of 10,000 records would otherwise be printed in full.
    ours = runner.run(transport, "b4_ours.yml", async_dir=async_dir, extra_vars={"status_jids": jids}, verbose=False)
    expected = {"status_count": B4_STATUS_JIDS, "list_count": B4_RECORDS, "cleanup_count": B4_RECORDS}
    for key, value in expected.items():
        if int(ours.figures[key]) != value:
            raise RuntimeError(f"B4: {key} is {ours.figures[key]}, expected {value}")
    async_dir = runner.new_async_dir()
    write_stock_records(async_dir, B4_RECORDS)
    stock = runner.run(transport, "b4_stock.yml", async_dir=async_dir, verbose=False)
    if any(async_dir.iterdir()):
        raise RuntimeError("B4: find -delete left records behind")
    under_two = Goal("ours < 2 s", lambda value: value < 2.0)
    add(rows, transport, f"B4 status of {B4_STATUS_JIDS:,} jids", "task time (s)", None, ours.figures["status_time"],
        goal=under_two, goal_on_ours=True)
    add(rows, transport, f"B4 mode: list, {B4_RECORDS:,} records", "task time (s)", None, ours.figures["list_time"],
        goal=under_two, goal_on_ours=True)
    add(rows, transport, f"B4 mode: cleanup, {B4_RECORDS:,} records (stock: find -delete)", "task time (s)",
        stock.figures["cleanup_time"], ours.figures["cleanup_time"], goal=under_two, goal_on_ours=True)


def stock_wrapper_pids(marker: str) -> list[int]:
    """Stock's async_wrapper processes above the job's ``sleep <marker>``."""
    wrappers: list[int] = []
    for pid in all_pids():
        if cmdline(pid).strip() == f"sleep {marker}":
            ancestor = parent_pid(pid)
            while ancestor > 1:
                if "async_wrapper" in cmdline(ancestor):
                    wrappers.append(ancestor)
                ancestor = parent_pid(ancestor)
    return wrappers


def bench_b5(runner: Runner, transport: Transport, rows: dict[str, Row], seconds: int) -> None:
    # A fractional duration no other process uses marks the job's sleep processes.
    marker = f"{seconds}.{random.randint(1000, 9999)}"
    launched_at = time.monotonic()
    result = runner.run(transport, "b5.yml", extra_vars={"sleep_arg": marker, "job_limit": seconds + 60}, verbose=False)
    our_pid = int(result.figures["our_pid"])
    wrappers = stock_wrapper_pids(marker)
    # Sample just before the job ends.
    time.sleep(max(0.0, launched_at + seconds - 1.5 - time.monotonic()))
    ours = cpu_seconds(our_pid)
    stock_samples = [cpu_seconds(pid) for pid in wrappers]
    stock = sum(sample for sample in stock_samples if sample is not None) if wrappers else None
    if ours is None:
        raise RuntimeError(f"B5: supervisor pid {our_pid} was gone before the job's end")
    sleepers = HELPERS.pids_with_cmdline(f"sleep {marker}")
    deadline = time.monotonic() + 30
    while sleepers and time.monotonic() < deadline and any(read_stat(pid) for pid in sleepers):
        time.sleep(0.2)
    add(rows, transport, f"B5 supervisor CPU, {seconds} s sleep job", "utime+stime (s)", stock, ours,
        goal=Goal("ours < 0.2 s", lambda value: value < 0.2), goal_on_ours=True)


def add(
    rows: dict[str, Row],
    transport: Transport,
    workload: str,
    metric: str,
    stock: float | None,
    ours: float,
    *,
    goal: Goal | None = None,
    goal_on_ours: bool = False,
) -> None:
    key = f"{transport.name}|{workload}|{metric}"
    row = rows.setdefault(key, Row(transport.name, workload, metric, goal=goal, goal_on_ours=goal_on_ours))
    if stock is not None:
        row.stock.append(float(stock))
    row.ours.append(float(ours))


# ---------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) >= 1:
        return f"{int(value)}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| transport | workload | metric | stock | longrun | longrun/stock | goal | result |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}"
        lines.append(
            f"| {row.transport} | {row.workload} | {row.metric} | {fmt(row.stock_median)} | {fmt(row.ours_median)} "
            f"| {ratio} | {row.goal.text if row.goal else ''} | {row.verdict} |"
        )
    return "\n".join(lines)


def machine_description() -> list[tuple[str, str]]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    target_python = subprocess.run([TARGET_PYTHON, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr.strip()
    from ansible.release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel

    return [
        ("Date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", cpu_model),
        ("Cores", str(os.cpu_count())),
        ("RAM", f"{mem_kib / 1024 / 1024:.1f} GiB"),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("OS", platform.freedesktop_os_release().get("PRETTY_NAME", "unknown")),
        ("Controller Python", platform.python_version()),
        ("Target Python", f"{TARGET_PYTHON} ({target_python})"),
        ("ansible-core", ansible_version),
        ("OpenSSH", ssh_version),
    ]


def write_report(path: Path, rows: list[Row], *, repeats: int, b5_seconds: int, transports: list[str]) -> None:
    machine = "\n".join(f"| {key} | {value} |" for key, value in machine_description())
    path.write_text(
        f"""# Performance

Generated by `make bench` (`benchmarks/bench.py`); do not edit by hand. Each workload runs with
stock Ansible and with longrun.jobs in the same run, over the transports {', '.join(f'`{name}`' for name in transports)},
and the table gives the median of {repeats} run(s) (`BENCH_REPEATS`). B5 runs once per transport,
with a {b5_seconds} s job (`BENCH_B5_SECONDS`).

## Machine

| | |
|---|---|
{machine}

## Results

{table(rows)}

## Workloads

- **B1**: one `sleep 3` job with `async: 60` and `poll: 15`. Stock: `ansible.builtin.command`;
  longrun: `longrun.jobs.run` wrapping the same command. Task time comes from timestamps taken
  in the playbook just before and after the task. The overhead row is that time minus the job's
  3 s: what launching, waiting and returning cost, the part of the task that is not the job.
- **B2**: ten jobs (`sleep 1` to `sleep 5`, twice) launched with `poll: 0`, then waited for.
  Stock: an `ansible.builtin.async_status` loop over the ten results with
  `until`/`retries: 60`/`delay: 1`; longrun: one `longrun.jobs.async_status` with `jobs:` and
  `wait: 60`. For the two measured rows both launch the jobs with stock async
  (`longrun.jobs.async_status` reads stock's jobs), so that only the wait task differs, and only
  the wait task is measured: jobs launched faster would still be starting their modules when the
  wait begins, which would make a faster launch look like a slower wait. The third row, without
  a goal, launches with `longrun.jobs.run` and gives the time of the launch and the wait together.
- **B3**: a loop that launches ten `sleep 1` jobs with `poll: 0`, with `ANSIBLE_PIPELINING=1`
  and `=0`. Figures are per launch.
- **B4**: {B4_RECORDS:,} small finished records in stock's format (`0600`, dated two days back)
  in the async directory. longrun: one `mode: status` call over {B4_STATUS_JIDS:,} job ids, then
  `mode: list`, then `mode: cleanup` with `older_than: 1d`. Stock has no batch status and no
  list; its cleanup column is `find <async dir> -maxdepth 1 -type f -name 'j*' -mtime +0 -delete`
  run by `ansible.builtin.command`. These runs are not verbose, so that 10,000 records are not
  printed.
- **B5**: a `sleep` job launched with `poll: 0` by stock async and by `longrun.jobs.run`, side
  by side. 1.5 s before the job ends, utime + stime is read from `/proc/<pid>/stat`: for longrun
  the supervisor (`job.pid` of the result), for stock the `async_wrapper` processes above the
  job's `sleep` (the watcher and the process that runs the module). `/proc` counts CPU time in
  clock ticks of {1 / CLOCK_TICKS:g} s.
- **B6**: scale. One `sleep {B6_JOB_SECONDS}` job on each of 10, 50 and 200 hosts over `local`, and 10
  and 50 over ssh, with `forks` 5 and 50. The hosts are inventory aliases of this machine; over
  ssh each alias has a ControlPersist master of its own (`ansible_control_path`), as separate
  hosts would, and the private sshd allows 200 concurrent start-ups and sessions. Stock launches
  with `ansible.builtin.command`, `async: 120`, `poll: 0` and waits with the until-loop of
  Ansible's async guide (`ansible.builtin.async_status`, `retries: 120`, `delay: 1`); longrun
  launches with `longrun.jobs.run` and waits with one `longrun.jobs.async_status` per host
  (`jobs:` of the launch result, `wait: 120`). Time runs from a timestamp before the launch task
  to one after the wait task, across all hosts. Remote operations are per host, for both tasks
  and for the wait task alone: the wait's goal is at most one remote command per host per wait
  window (a {B6_JOB_SECONDS} s job ends within one window).
- **B7**: [transparent mode](transparent-mode.md), off (the stock column) and on (the longrun
  column, `ANSIBLE_ACTION_PLUGINS` set to the collection's `transparent/action_plugins`), on the
  same unchanged playbooks. First {B7_TASKS} tasks without async, ten each of `ansible.legacy.command: true`,
  `ansible.builtin.ping` and `ansible.builtin.shell: true`, imported as separate tasks: each
  goes through one of the overridden actions, which must hand it to core's own at no cost. They
  run off, on, on, off, without `-vvv`, after one warm-up run, and each mode's figure is the
  mean of its two runs, per task. Time comes from start and end timestamps around the
  {B7_TASKS} tasks; CPU time is utime + stime of `ansible-playbook` and every process it reaped (its
  workers and, over `local`, the modules), for the whole run, start-up included, divided by
  {B7_TASKS}: it is what the mode's extra code would cost, and it is less disturbed than time
  by other load on the machine. "No measurable slowdown" is taken as a difference within the
  run-to-run noise of such runs: at most {B7_NOISE_SHARE:.0%} of the figure per task or
  {B7_NOISE_FLOOR_MS:g} ms, whichever is larger. It is checked on the rows "off, and on − off":
  their stock column is the figure with the mode off, their longrun column the difference within
  each repeat (median over the repeats), and their ratio the relative slowdown. Then the B1 job
  written as a plain
  `ansible.legacy.command` task with `async: 60` and `poll: 15`, once with each mode; the run
  checks that the job was stock's when off and a longrun job when on. The load row is the cost of
  the mode itself, on the controller: `benchmarks/action_load_time.py` forks {B7_WORKERS} workers from
  a process set up as `ansible-playbook` is before its first task (plugin loader ready, the legacy
  action path searched), and each times its load of `ansible.legacy.normal` and
  `ansible.legacy.command`; the median is given. It is the worst case: in a play with a
  `command:` task, `ansible-playbook` loads the override's shared code before it forks, and
  workers load less.
- **B8**: the [command executor](how-it-works.md#the-command-executor): {B8_JOBS} `true` command jobs
  run one after the other by `longrun.jobs.run` with `async: 60` and `poll: 1`, as the command
  module (the stock column, `longrun_command_executor: false`) and on the executor (the longrun
  column). Task time is the playbook's time for the loop divided by {B8_JOBS}; "launch to end on
  the target" is the mean of the jobs' `job.duration`, from the supervisor's start to the end it
  recorded, which is where the module's start-up (its payload, Python and `AnsibleModule`) is paid.

## How it is measured

- The target is the same machine: `ansible_connection: local`, or ssh to a private sshd on
  127.0.0.1 with generated keys, Ansible's default `ssh_args` (ControlPersist) and a private
  ControlPath directory. `ansible_python_interpreter` is `{TARGET_PYTHON}`. Every playbook run gets a
  fresh `ANSIBLE_ASYNC_DIR` under a temp dir. Pipelining is off (`ANSIBLE_PIPELINING=0`, the
  default) except where B3 says on.
- Remote operations are counted in `ansible-playbook -vvv` output between the banner of the
  measured task and the next banner, independently of the collection's code: for `local`, the
  connection's `EXEC`, `PUT` and `FETCH` lines; for `ssh`, the `SSH: EXEC` lines, one per
  `ssh`, `sftp` or `scp` process (a file transfer prints a `PUT` line and an `sftp` EXEC line,
  and is counted once).
- The ratio is longrun/stock from the same run; below 1 means longrun is faster or does less.
  Goals marked "ours" are absolute limits on the longrun figure.

Run it with `make bench`; `BENCH_REPEATS=1 BENCH_B5_SECONDS=10 make bench` is a quick run.
`BENCH_TRANSPORTS=local` limits the transports, and `BENCH_WORKLOADS=b3` the workloads.
"""
    )


# ---------------------------------------------------------------- main


def main() -> int:
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    b5_seconds = int(os.environ.get("BENCH_B5_SECONDS", "60"))
    transports = [name.strip() for name in os.environ.get("BENCH_TRANSPORTS", "local,ssh").split(",") if name.strip()]
    selected = {name.strip().lower() for name in os.environ.get("BENCH_WORKLOADS", "b1,b2,b3,b4,b5,b6,b7,b8").split(",")}
    unknown = sorted(selected - {"b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"})
    if unknown:
        print(f"BENCH_WORKLOADS names unknown workloads {', '.join(unknown)}: use a subset of b1,b2,b3,b4,b5,b6,b7,b8")
        return 2
    workloads = [
        workload for workload in (bench_b1, bench_b2, bench_b3, bench_b4, bench_b6, bench_b7, bench_b8) if workload.__name__[6:] in selected
    ]
    output = Path(os.environ.get("BENCH_OUTPUT", str(DEFAULT_OUTPUT)))
    rows: dict[str, Row] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="longrun-bench-") as temp:
        workdir = Path(temp)
        server = start_sshd(workdir) if "ssh" in transports else None
        try:
            runner = Runner(workdir)
            for name in transports:
                transport = make_transport(name, workdir, server)
                for repeat in range(1, repeats + 1):
                    for workload in workloads:
                        print(f"==> {name} run {repeat}/{repeats}: {workload.__name__}", flush=True)
                        workload(runner, transport, rows)
                if "b5" in selected:
                    print(f"==> {name}: bench_b5 ({b5_seconds} s)", flush=True)
                    bench_b5(runner, transport, rows, b5_seconds)
        finally:
            if server is not None:
                stop_sshd(server)
    ordered = sorted(rows.values(), key=lambda row: (row.workload[:2], row.transport != "local"))
    write_report(output, ordered, repeats=repeats, b5_seconds=b5_seconds, transports=transports)
    print()
    print(table(ordered))
    failed = sum(row.verdict == "FAIL" for row in ordered)
    print(f"\n{time.monotonic() - started:.0f} s; {failed} goal(s) not met; report written to {output}")
    # Missed goals are results, not errors: the exit status says only whether the bench ran.
    return 0


if __name__ == "__main__":
    sys.exit(main())
