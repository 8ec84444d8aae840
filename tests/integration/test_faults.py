"""Faults injected for real on the target: killed processes, corrupt records, races, huge output, full disks.

The file-system faults need a small tmpfs, which only root can mount; those tests skip
with the reason when that is impossible. The heavy tests (50 MB of output, 1,000 reads
racing a writer, a disk filling up) run over one transport: they exercise target-side
code, which the transport does not change.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import subprocess
import typing as t
from pathlib import Path

import pytest
from helpers import pids_with_cmdline, wait_until
from playbook_run import RunPlaybook

from ansible_collections.longrun.jobs.plugins.module_utils._agent import main as _agent
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import StatusRequest

BIG_OUTPUT_BYTES = 50 * 1024 * 1024
# The old supervisor read the output whole: its peak was several times the output size.
SUPERVISOR_RSS_BOUND_KIB = 40 * 1024
PARALLEL_READS = 1000
READER_PROCESSES = 4


def one_line_without_traceback(message: str) -> None:
    assert "\n" not in message, message
    assert "Traceback" not in message and "MODULE FAILURE" not in message, message


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> t.Iterator[t.Callable[..., Path]]:
    """Mounts small tmpfs file systems under tmp_path; unmounts them afterwards."""
    mounted: list[Path] = []

    def mount(name: str, *, size: str, read_only: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs to fill or write-protect needs root")
        point = tmp_path / name
        point.mkdir()
        options = f"size={size},mode=0755" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the disk-full tests need one")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; returns it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_killed_module_process_is_module_crashed(run_playbook: RunPlaybook, marker: int) -> None:
    run = run_playbook("faults_job_killed.yml", extra_vars={"marker": marker})
    run.assert_ok()
    status = run.load("job_killed.json")["status"]
    job = status["job"]
    assert job["state"] == "failed"
    assert job["reason"] == "module_crashed"
    assert job["signal"] == "SIGKILL"
    assert status["finished"] is True
    assert status["failed"] is True
    assert status["msg"] == f"job {status['ansible_job_id']} crashed: the module process was killed by SIGKILL"


def write_corrupt_records(async_dir: Path) -> dict[str, Path]:
    """A truncated longrun record, one with bytes that are not UTF-8, an empty one and a JSON list."""
    complete = _record.JobRecord(
        jid="j100000001.1", state=_record.SUCCEEDED, pid=1, started_at="2026-01-01T00:00:00.000Z",
        ended_at="2026-01-01T00:00:01.000Z", result={"stdout": "x" * 200, "rc": 0},
    ).to_document(str(async_dir / "j100000001.1"))
    text = json.dumps(complete).encode("utf-8")
    contents = {
        "j100000001.1": text[: len(text) // 2],
        "j100000002.2": b'{"_longrun": \xff\xfe\x00 garbage',
        "j100000003.3": b"",
        "j100000004.4": b"[1, 2, 3]",
    }
    paths = {}
    for jid, content in contents.items():
        path = async_dir / jid
        path.write_bytes(content)
        path.chmod(0o600)
        paths[jid] = path
    return paths


def test_corrupt_records_are_unreadable_and_name_the_file(run_playbook: RunPlaybook, async_dir: Path) -> None:
    paths = write_corrupt_records(async_dir)
    original = {jid: path.read_bytes() for jid, path in paths.items()}
    jids = list(paths)
    run = run_playbook("faults_corrupt.yml", extra_vars={"corrupt_jids": jids})
    run.assert_ok()
    data = run.load("corrupt.json")
    for item, jid in zip(data["single"]["results"], jids):
        assert item["failed"] is True
        assert item["finished"] is True
        assert item["job"]["state"] == "unreadable"
        assert item["job"]["reason"] == "bad_record"
        assert str(paths[jid]) in item["msg"]
        one_line_without_traceback(item["msg"])
    batch = data["batch"]
    assert batch["failed"] is True
    assert [entry["state"] for entry in batch["jobs"]] == ["unreadable"] * len(jids)
    for entry, jid in zip(batch["jobs"], jids):
        assert str(paths[jid]) in entry["msg"]
        one_line_without_traceback(entry["msg"])
    one_line_without_traceback(batch["msg"])
    listed = {entry["ansible_job_id"]: entry for entry in data["listed"]["jobs"]}
    assert sorted(listed) == sorted(jids)
    for jid in jids:
        assert listed[jid]["state"] == "unreadable"
        assert str(paths[jid]) in listed[jid]["msg"]
    # What stock async_status makes of the same files, for the record: a file it cannot parse
    # (truncated, not UTF-8, empty) is a job still running, so `until: finished` loops spin
    # until their retries run out; a JSON list fails the module with a Python error.
    stock = dict(zip(jids, data["stock"]["results"]))
    for jid in ("j100000001.1", "j100000002.2", "j100000003.3"):
        assert stock[jid].get("failed") is not True, stock[jid]
        assert stock[jid]["finished"] in (False, 0), stock[jid]
    assert stock["j100000004.4"]["failed"] is True
    assert "Traceback" not in stock["j100000004.4"]["msg"]
    # Nothing was removed or rewritten.
    assert {jid: path.read_bytes() for jid, path in paths.items()} == original


def _running_and_ended(jid: str) -> tuple[_record.JobRecord, _record.JobRecord]:
    """Records of a job whose supervisor is this process: running, and ended with a large result."""
    pid = os.getpid()
    common = dict(jid=jid, pid=pid, pid_start_time=_proc.process_start_time(pid), boot_id=_proc.read_boot_id(),
                  started_at="2026-01-01T00:00:00.000Z", timeout=600, grace=5)
    running = _record.JobRecord(state=_record.RUNNING, **common)
    ended = _record.JobRecord(
        state=_record.SUCCEEDED, ended_at="2026-01-01T00:00:09.000Z",
        result={"stdout": "0123456789" * 50_000 + "end", "rc": 0, "changed": True}, **common,
    )
    return running, ended


def _rewrite_until_stopped(async_dir: str, jid: str, stop: t.Any, writes: t.Any) -> None:
    running, ended = _running_and_ended(jid)
    while not stop.is_set():
        for record in (running, ended):
            _store.write_record(async_dir, record)
            writes.value += 1


def _read_statuses(async_dir: str, jid: str, count: int) -> list[tuple[str, int]]:
    """Status requests as the agent serves them: (state, length of stdout) for each."""
    seen = []
    for _read in range(count):
        reply = _agent.serve(StatusRequest(jids=[jid], single=True, async_dir=async_dir).to_wire())
        job = reply["jobs"][0]
        result = job["result"] or {}
        seen.append((job["job"]["state"], len(result.get("stdout", ""))))
    return seen


def test_reads_racing_a_writer_never_see_a_partial_record(async_dir: Path) -> None:
    jid = "j200000001.1"
    context = multiprocessing.get_context("fork")
    stop, writes = context.Event(), context.Value("i", 0)
    writer = context.Process(target=_rewrite_until_stopped, args=(str(async_dir), jid, stop, writes))
    writer.start()
    try:
        wait_until(lambda: writes.value >= 2, timeout=10, message="the writer to write both records")
        # The writer is the job's "supervisor": the running record names its pid.
        with concurrent.futures.ProcessPoolExecutor(READER_PROCESSES, mp_context=context) as pool:
            per_reader = PARALLEL_READS // READER_PROCESSES
            batches = list(pool.map(_read_statuses, *zip(*[(str(async_dir), jid, per_reader)] * READER_PROCESSES)))
    finally:
        stop.set()
        writer.join(10)
        if writer.is_alive():
            writer.kill()
            writer.join()
    seen = [entry for batch in batches for entry in batch]
    assert len(seen) == PARALLEL_READS
    expected_stdout = len(_running_and_ended(jid)[1].result["stdout"])
    assert set(seen) <= {("running", 0), ("succeeded", expected_stdout)}, set(seen) - {("running", 0), ("succeeded", expected_stdout)}
    # Both versions were read: the reads really raced the rewrites.
    assert {entry[0] for entry in seen} == {"running", "succeeded"}
    assert writes.value > 10
    assert [name for name in os.listdir(async_dir) if name != jid] == []


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_non_utf8_output_is_refused_as_core_refuses_it(run_playbook: RunPlaybook) -> None:
    run = run_playbook("faults_big_output.yml")
    run.assert_ok()
    data = run.load("big_output.json")
    # ansible-core refuses module results that are not valid UTF-8 (MODULE_STRICT_UTF8_RESPONSE, on by
    # default); so does the job's task. 2.18 says "non UTF-8 data", later cores "invalid UTF8".
    assert data["sync_failed"] is True
    assert "invalid UTF8" in data["sync_msg"] or "non UTF-8 data" in data["sync_msg"], data["sync_msg"]
    assert data["job_failed"] is True
    assert "not valid UTF-8" in data["job_msg"] and "MODULE_STRICT_UTF8_RESPONSE" in data["job_msg"]
    one_line_without_traceback(data["job_msg"])


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_large_output_and_non_utf8_bytes_with_bounded_supervisor_memory(
    run_playbook: RunPlaybook, async_dir: Path, tmp_path: Path
) -> None:
    line = b"some output of a long job \xff\xfe that is not all UTF-8, caf\xc3\xa9 0123456789\n"
    content = (line * (BIG_OUTPUT_BYTES // len(line) + 1))[:BIG_OUTPUT_BYTES]
    big_file = tmp_path / "big.txt"
    big_file.write_bytes(content)
    # With the check off, core passes such bytes on as surrogate escapes, and so does the job.
    run = run_playbook(
        "faults_big_output.yml",
        extra_vars={"big_file": str(big_file)},
        env={"ANSIBLE_MODULE_STRICT_UTF8_RESPONSE": "false"},
    )
    run.assert_ok()
    data = run.load("big_output.json")
    assert data["sync_failed"] is False and data["job_failed"] is False
    assert data["job_stdout"] == data["sync_stdout"]
    assert base64.b64decode(data["job_stdout"]) == b"caf\xc3\xa9 \xff\xfe end"
    big = data["big"]
    assert big["job"]["state"] == "succeeded"
    assert big["rc"] == 0
    assert big["length"] == len(content.decode("utf-8", "surrogateescape"))
    assert big["sha1"] == hashlib.sha1(content).hexdigest()
    with open(big["results_file"], "rb") as handle:
        meta = json.load(handle)["_longrun"]
    assert 0 < meta["supervisor_max_rss"] < SUPERVISOR_RSS_BOUND_KIB, meta
    print(f"supervisor peak RSS {meta['supervisor_max_rss']} KiB for {BIG_OUTPUT_BYTES >> 20} MiB of output")


def test_timeout_leaves_no_temporary_files(run_playbook: RunPlaybook, async_dir: Path, out_dir: Path, marker: int) -> None:
    run = run_playbook("faults_timeout_tmpdir.yml", extra_vars={"marker": marker})
    run.assert_ok()
    result = run.load("timeout_tmpdir.json")
    assert result["job"]["state"] == "timed_out"
    job_tmpdir = Path((out_dir / "tmpdir.txt").read_text().strip())
    # The job's TMPDIR was private, in the async dir, and held the module's AnsiballZ payload.
    assert job_tmpdir.parent.name == f".{result['ansible_job_id']}.work"
    assert job_tmpdir.parent.parent == async_dir
    assert "_payload_" in (out_dir / "tmpdir-contents.txt").read_text()
    assert not job_tmpdir.parent.exists()
    assert sorted(os.listdir(async_dir)) == []
    assert pids_with_cmdline(f"sleep {marker}") == []


def test_lost_job_keeps_the_age_of_its_record(run_playbook: RunPlaybook, async_dir: Path, marker: int) -> None:
    run = run_playbook("faults_lost_age.yml", extra_vars={"marker": marker})
    run.assert_ok()
    data = run.load("lost_age.json")
    jid = data["job"]["ansible_job_id"]
    for listing in (data["first_list"], data["second_list"]):
        listed = {entry["ansible_job_id"]: entry for entry in listing["jobs"]}
        assert listed[jid]["state"] == "lost"
        assert listed[jid]["age"] > 7000
    assert data["cleaned"]["removed"] == [jid]
    assert not (async_dir / jid).exists()


def unusable_async_dir(tmp_path: Path, mount_tmpfs: t.Callable[..., Path]) -> Path:
    """An async dir the job's user cannot create: on a read-only file system (root), or in a locked dir."""
    if os.geteuid() == 0:
        return mount_tmpfs("read-only", size="64k", read_only=True) / "async"
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked / "async"


def test_unwritable_async_dir_fails_the_launch_with_one_line(
    run_playbook: RunPlaybook, tmp_path: Path, mount_tmpfs: t.Callable[..., Path]
) -> None:
    directory = unusable_async_dir(tmp_path, mount_tmpfs)
    run = run_playbook("faults_launch_fails.yml", env={"ANSIBLE_ASYNC_DIR": str(directory)})
    run.assert_ok()
    launch = run.load("launch.json")
    assert launch["failed"] is True
    assert str(directory) in launch["msg"]
    assert "set ansible_async_dir" in launch["msg"]
    one_line_without_traceback(launch["msg"])
    assert not directory.exists()


def test_full_disk_fails_the_launch_and_leaves_no_file(
    run_playbook: RunPlaybook, mount_tmpfs: t.Callable[..., Path]
) -> None:
    mount = mount_tmpfs("full", size="256k")
    directory = mount / "async"
    directory.mkdir(mode=0o700)
    fill(mount)
    run = run_playbook("faults_launch_fails.yml", env={"ANSIBLE_ASYNC_DIR": str(directory)})
    run.assert_ok()
    launch = run.load("launch.json")
    assert launch["failed"] is True
    assert f"cannot write the status file {directory}/j" in launch["msg"]
    assert "the disk is full; free space or set ansible_async_dir elsewhere" in launch["msg"]
    one_line_without_traceback(launch["msg"])
    # No record, temp file, side file or work dir is left behind.
    assert os.listdir(directory) == []


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_disk_filling_up_while_jobs_run(
    run_playbook: RunPlaybook, tmp_path: Path, mount_tmpfs: t.Callable[..., Path]
) -> None:
    mount = mount_tmpfs("filling", size="1m")
    directory = mount / "async"
    directory.mkdir(mode=0o700)
    source = tmp_path / "text"
    source.write_bytes(b"x" * 700_000)
    run = run_playbook(
        "faults_disk_fills.yml",
        extra_vars={"mount": str(mount), "filler_source": str(source), "result_bytes": 600_000},
        env={"ANSIBLE_ASYNC_DIR": str(directory)},
    )
    run.assert_ok()
    data = run.load("disk_fills.json")
    # The result fitted in the captured output but not again in the record: the end is still recorded.
    too_big = data["too_big"]
    assert too_big["job"]["state"] == "failed"
    assert too_big["job"]["reason"] == "result_not_saved"
    assert too_big["job"]["exit_code"] == 0
    assert "succeeded, but its result could not be saved" in too_big["msg"]
    assert "the disk is full" in too_big["msg"]
    one_line_without_traceback(too_big["msg"])
    # The job that filled the disk ends recorded as crashed when the space its own files held
    # (AnsiballZ payload, captured output) is enough for the record, else as lost: never running.
    while_full = data["while_full"]
    assert while_full["job"]["state"] in ("failed", "lost"), while_full["job"]
    one_line_without_traceback(while_full["msg"])
    if while_full["job"]["state"] == "lost":
        assert f"the file system of {directory} is full" in while_full["msg"]
    assert data["after_freeing"]["job"]["state"] in ("failed", "lost")
    assert data["stock_after"]["finished"] in (True, 1)
    assert sorted(os.listdir(directory)) == sorted(
        [data["too_big"]["ansible_job_id"], data["after_freeing"]["ansible_job_id"]]
    )
