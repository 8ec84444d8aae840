"""Acceptance of the connection-fault issue: sshd stopped mid-wait, a changed boot id, 200 jobs at once."""

from __future__ import annotations

import concurrent.futures
import datetime
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import yaml

from helpers import descendant_pids, pids_alive, pids_with_cmdline, terminate_pids, wait_until
from playbook_run import PlaybookRun, RunPlaybook, Target, tail
from sshd_server import free_port, generate_key, stop_process, wait_for_ssh_banner, write_sshd_config

SSHD_BINARY = Path("/usr/sbin/sshd")
OUTAGE = 10.0
JOB_LIMIT = 60
# The longest pause between reconnect attempts (MAX_RECONNECT_PAUSE), plus a slow ssh login under load.
RESUME_BOUND = 5 + 10
# What the agent's command line holds on the target (the bootstrap of plugin_utils/_target_agent.py).
AGENT_MARK = "import sys,zlib,base64"


def timestamp(text: str) -> float:
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class StoppableSshd:
    """An sshd of its own on 127.0.0.1 that a test can kill, connections and all, and start again on its port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.key_path = workdir / "client_ed25519"
        self.control_path_dir = workdir / "cp"
        self.log_path = workdir / "sshd.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        generate_key(workdir / "host_ed25519")
        generate_key(self.key_path)
        shutil.copyfile(workdir / "client_ed25519.pub", workdir / "authorized_keys")
        self.control_path_dir.mkdir(mode=0o700)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def start(self, *, port: int | None = None) -> None:
        """Start on the given port, or on a free one (retried, as another process may take it first)."""
        failure = ""
        for _attempt in range(3):
            self.port = port or free_port()
            config = write_sshd_config(self.workdir, self.port)
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [str(SSHD_BINARY), "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            error = wait_for_ssh_banner(self.process, self.port, 15.0)
            if error is None:
                return
            stop_process(self.process)
            self.process = None
            failure = f"{error}\n--- sshd log ---\n{tail(self.log_path.read_text(errors='replace'))}"
            if port is not None:
                break
        raise AssertionError(f"could not start {SSHD_BINARY}: {failure}")

    def kill_with_connections(self) -> list[int]:
        """SIGKILL the listener and every per-connection sshd, as a crash or `systemctl kill` would.

        The users' processes under them (shells, the long-polling agent) are left alone.
        """
        assert self.process is not None
        sshd_pids = [self.process.pid] + [pid for pid in descendant_pids(self.process.pid) if process_name(pid) == "sshd"]
        for pid in sshd_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self.process = None
        wait_until(lambda: not pids_alive(sshd_pids), 10, message="sshd and its connections are gone")
        return sshd_pids

    def controller_masters(self) -> list[int]:
        """The ssh ControlPersist masters of this server (their title names the private control dir)."""
        return pids_with_cmdline(str(self.control_path_dir))

    def stop(self) -> None:
        if self.process is not None:
            children = descendant_pids(self.process.pid)
            stop_process(self.process)
            terminate_pids(children, grace=5)
            self.process = None
        terminate_pids(self.controller_masters(), grace=5)


@pytest.fixture
def stoppable_sshd(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[StoppableSshd]:
    if not SSHD_BINARY.exists():
        pytest.fail(f"{SSHD_BINARY} is missing; run `make test`, which installs openssh-server", pytrace=False)
    server = StoppableSshd(tmp_path_factory.mktemp("stoppable-sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TestSshdStoppedDuringAWait:
    """A dedicated sshd is killed while a wait is in flight and started again on its port after 10 s."""

    @pytest.fixture
    def target(self, stoppable_sshd: StoppableSshd, tmp_path: Path, target_python: str) -> Target:
        # Overrides the session-wide target: these tests need a server they may kill.
        hostvars = {
            "ansible_python_interpreter": target_python,
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": stoppable_sshd.port,
            "ansible_user": pwd.getpwuid(os.geteuid()).pw_name,
            "ansible_ssh_private_key_file": str(stoppable_sshd.key_path),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
        }
        inventory = tmp_path / "stoppable-hosts.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"target": hostvars}}}, sort_keys=False))
        return Target(
            transport="ssh",
            inventory=inventory,
            hostvars=hostvars,
            env={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(stoppable_sshd.control_path_dir)},
        )

    @pytest.mark.parametrize("playbook", ["conn_sshd_wait.yml", "conn_sshd_poll.yml"], ids=["async_status", "run_poll"])
    def test_the_wait_resumes_and_returns_the_true_result(
        self,
        playbook: str,
        run_playbook: RunPlaybook,
        stoppable_sshd: StoppableSshd,
        async_dir: Path,
        tmp_path: Path,
    ) -> None:
        release_file = tmp_path / "release"
        extra_vars = {"release_file": str(release_file), "job_limit": JOB_LIMIT}
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(run_playbook, playbook, extra_vars=extra_vars, timeout=JOB_LIMIT + 60)
            try:
                stray_agents, timeline = self._stop_sshd_while_the_job_ends(stoppable_sshd, async_dir, release_file)
            finally:
                # Whatever happened, let the job end, so that the playbook cannot hang on it.
                release_file.touch()
                if stoppable_sshd.process is None:
                    stoppable_sshd.start(port=stoppable_sshd.port)
            run: PlaybookRun = future.result()
        returned_at = time.monotonic()
        run.assert_ok()
        result = run.load("result.json")

        # The job's true result, although it ended while the host was unreachable.
        job = result["job"]
        if playbook == "conn_sshd_wait.yml":
            assert job["state"] == "succeeded", result
            assert result["rc"] == 0
            assert result["failed"] is False
        else:
            assert job["state"] == "failed", result
            assert job["reason"] == "module_failed"
            assert result["rc"] == 7
            assert result["stderr"] == "on stderr"
            assert result["failed"] is True
            # Removed only by the window whose reply arrived, after the outage.
            assert list(async_dir.iterdir()) == []
        assert result["finished"] is True
        assert result["stdout"] == "ended while sshd was down"
        assert job["duration"] < JOB_LIMIT
        output = run.stdout + run.stderr
        assert "connection lost, retrying (1)" in output
        assert "connection restored after" in output
        # Within the async limit of the launch, and promptly once sshd answered again.
        assert returned_at - timeline["launched"] < JOB_LIMIT
        assert returned_at - timeline["restarted"] < RESUME_BOUND
        # The agent that was waiting when sshd died could not deliver its reply, and has exited.
        assert pids_alive(stray_agents) == []

    @staticmethod
    def _stop_sshd_while_the_job_ends(
        server: StoppableSshd, async_dir: Path, release_file: Path
    ) -> tuple[list[int], dict[str, float]]:
        # Temp and side files start with a dot and may show up before the record itself.
        records = wait_until(
            lambda: [path for path in async_dir.iterdir() if not path.name.startswith(".")],
            60,
            message="the job's record appears",
        )
        launched = time.monotonic()
        (record_path,) = records
        # The launch's own agent has returned by now; what runs under sshd is the long-poll.
        time.sleep(2)
        sshd_pid = t.cast("subprocess.Popen[bytes]", server.process).pid
        agents = wait_until(
            lambda: sorted(set(pids_with_cmdline(AGENT_MARK)) & set(descendant_pids(sshd_pid))),
            30,
            message="a long-polling agent runs under sshd",
        )
        assert server.controller_masters(), "ansible should hold a ControlPersist master"

        stopped = time.monotonic()
        server.kill_with_connections()
        # The master's connection really dropped: it exits instead of serving stale sessions.
        wait_until(lambda: not server.controller_masters(), 10, message="the ControlPersist master exits")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()

        # The job keeps running under its own supervisor, detached from the dead connection.
        running = read_record(record_path)
        assert running is not None and running["_longrun"]["state"] == "running"
        assert pids_alive([running["_longrun"]["pid"]])
        release_file.touch()
        ended = wait_until(
            lambda: (read_record(record_path) or {}).get("finished") and read_record(record_path),
            15,
            message="the job ends while sshd is down",
        )
        assert ended["_longrun"]["state"] in ("succeeded", "failed")
        assert time.monotonic() - stopped < OUTAGE, "the job should end while sshd is still down"

        time.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))
        server.start(port=server.port)
        return agents, {"launched": launched, "stopped": stopped, "restarted": time.monotonic()}


def test_a_changed_boot_id_makes_jobs_lost_at_once(
    run_playbook: RunPlaybook, async_dir: Path, tmp_path: Path, marker: int
) -> None:
    boot_id_file = tmp_path / "boot_id"
    boot_id_a, boot_id_b = "11111111-aaaa-4aaa-8aaa-111111111111", "22222222-bbbb-4bbb-8bbb-222222222222"
    boot_id_file.write_text(boot_id_a + "\n")
    run = run_playbook(
        "conn_boot_id.yml",
        extra_vars={"boot_id_file": str(boot_id_file), "boot_id_b": boot_id_b, "marker": marker},
    )
    run.assert_ok()
    data = run.load("boot_id.json")
    launched = [result["ansible_job_id"] for result in data["jobs"]["results"]]
    # The supervisors recorded boot id A, from the play's environment only.
    for jid in launched:
        assert json.loads((async_dir / jid).read_text())["_longrun"]["boot_id"] == boot_id_a
    for name, result in (("waited", data["waited"]), ("status", data["status"])):
        assert result["failed"] is True, name
        assert result["finished"] is True, name
        assert result["job"]["state"] == "lost", name
        assert result["job"]["reason"] == "host_rebooted", name
        assert "the host rebooted" in result["msg"], name
    # The wait of 100 s returns at once: a job of another boot will never report an end.
    assert data["wait_seconds"] < 10
    # The supervisors themselves still run (the "reboot" is simulated) until the marker fixture ends them.
    assert len(pids_with_cmdline(f"sleep {marker}")) == 2


MANY = 200


def test_two_hundred_jobs_at_once_are_reported_exactly_by_one_wait(
    run_playbook: RunPlaybook, async_dir: Path, out_dir: Path, tmp_path: Path
) -> None:
    lock_file = tmp_path / "lock"
    many_jobs = [
        {"name": f"job-{index}", "conn_lock_job": {"lock": str(lock_file), "index": index, "rc": expected_rc(index)}}
        for index in range(MANY)
    ]
    with lock_file.open("w") as lock, concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # Held until every job has started: none can end before all of them run.
        fcntl.flock(lock, fcntl.LOCK_EX)
        future = pool.submit(run_playbook, "conn_many.yml", extra_vars={"many_jobs": many_jobs}, timeout=240)
        try:
            wait_until(lambda: (out_dir / "launched.json").exists() or future.done(), 180,
                       message="the playbook launched the jobs")
            records = [read_record(path) for path in async_dir.iterdir() if not path.name.startswith(".")]
            running_before_release = sum(1 for record in records if record and not record.get("finished"))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        run: PlaybookRun = future.result()
    run.assert_ok()
    data = run.load("many.json")
    assert running_before_release == MANY

    launched = data["launched"]
    assert launched["summary"]["running"] == MANY
    assert launched["msg"].startswith(f"launched {MANY} jobs; wait for them with longrun.jobs.async_status")
    waited = data["waited"]
    assert waited["summary"]["total"] == MANY
    assert (waited["summary"]["succeeded"], waited["summary"]["failed"], waited["summary"]["running"]) == (180, 20, 0)
    assert waited["finished"] is True
    assert waited["failed"] is True
    assert waited["msg"].startswith(f"{MANY} jobs: 180 succeeded, 20 failed (")
    jobs = waited["jobs"]
    # In launch order, each entry with its own job's result.
    assert [job["ansible_job_id"] for job in jobs] == [entry["ansible_job_id"] for entry in launched["results"]]
    for index, job in enumerate(jobs):
        assert (job["rc"], job["result"]["stdout"]) == (expected_rc(index), f"job-{index}"), job
        assert job["state"] == ("failed" if expected_rc(index) else "succeeded"), job
    assert {job["ansible_job_id"] for job in waited["failed_jobs"]} == {
        job["ansible_job_id"] for index, job in enumerate(jobs) if expected_rc(index)
    }
    # All 200 ran at the same time: the last one started before the first one ended.
    assert max(timestamp(job["started_at"]) for job in jobs) < min(timestamp(job["ended_at"]) for job in jobs)


def expected_rc(index: int) -> int:
    return 3 if index % 10 == 9 else 0
