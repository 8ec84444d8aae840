"""Issue 14 items 2, 3 and 6: reading a job's output (mode=output) and following it live (follow: true).

The jobs here are shell jobs run by the command executor: the command's stdout and stderr are the job's
side files, written as it prints and kept after its end.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pwd
import re
import secrets
import selectors
import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from playbook_run import TARGET_HOST, RunPlaybook, Target

INTEGRATION_DIR = Path(__file__).resolve().parent
PLAYBOOK_DIR = INTEGRATION_DIR / "playbooks"
JSON_CALLBACK_ENV = {
    "ANSIBLE_CALLBACK_PLUGINS": str(INTEGRATION_DIR / "status_callbacks"),
    "ANSIBLE_STDOUT_CALLBACK": "json_stdout",
}
LOCAL_OPERATION_RE = re.compile(r"^<[^>]+> (?:EXEC|PUT|FETCH) .{0,100}", re.MULTILINE)
SSH_OPERATION_RE = re.compile(r"^<[^>]+> SSH: EXEC .{0,100}", re.MULTILINE)
# Keys of a job's result that a plain synchronous task has not or that differ between two runs: the timings,
# our job record and async's bookkeeping.
TIMING_KEYS = ("start", "end", "delta", "job", "ansible_job_id", "results_file", "started", "finished")
TICK_LINE = re.compile(rf"^\[{TARGET_HOST}\] stdout: tick (\d+)$")


@dataclasses.dataclass
class StreamedRun:
    rc: int
    # (seconds since the start, line) of each line of stdout, as it arrived.
    lines: list[tuple[float, str]]
    stderr: str

    @property
    def stdout(self) -> str:
        return "\n".join(line for _at, line in self.lines)

    def report(self) -> str:
        shown = "\n".join(f"{at:6.1f} {line}" for at, line in self.lines[-80:])
        return f"rc {self.rc}\n--- stdout (arrival, line) ---\n{shown}\n--- stderr ---\n{self.stderr[-4000:]}"


@pytest.fixture
def stream_playbook(
    target: Target, out_dir: Path, async_dir: Path, tmp_path: Path, ansible_playbook_bin: Path, collections_path: str
) -> t.Callable[..., StreamedRun]:
    """Run a playbook as run_playbook does, but note when each line of its stdout arrives."""

    def run(playbook: str, *, extra_vars: dict[str, t.Any], timeout: float = 180) -> StreamedRun:
        vars_file = tmp_path / "stream-vars.json"
        vars_file.write_text(json.dumps({**extra_vars, "out_dir": str(out_dir), "async_dir": str(async_dir)}))
        command = [str(ansible_playbook_bin), "-i", str(target.inventory), str(PLAYBOOK_DIR / playbook),
                   "-e", f"@{vars_file}"]
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": collections_path,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_ASYNC_DIR": str(async_dir),
            # Python writes to a pipe in blocks unless told otherwise; a person's terminal gets each line.
            "PYTHONUNBUFFERED": "1",
            **target.env,
        }
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
            start_new_session=True,
        )
        lines: list[tuple[float, str]] = []
        errors: list[bytes] = []
        pending = b""
        selector = selectors.DefaultSelector()
        selector.register(t.cast(t.IO[bytes], process.stdout), selectors.EVENT_READ, "out")
        selector.register(t.cast(t.IO[bytes], process.stderr), selectors.EVENT_READ, "err")
        try:
            open_streams = 2
            while open_streams:
                if time.monotonic() - started > timeout:
                    raise AssertionError(f"{playbook} ran longer than {timeout} s")
                for key, _events in selector.select(timeout=1):
                    data = os.read(key.fd, 65536)
                    if not data:
                        selector.unregister(key.fileobj)
                        open_streams -= 1
                    elif key.data == "err":
                        errors.append(data)
                    else:
                        pending += data
                        *complete, pending = pending.split(b"\n")
                        now = time.monotonic() - started
                        lines.extend((now, line.decode(errors="replace")) for line in complete)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 15)
                process.wait()
        if pending:
            lines.append((time.monotonic() - started, pending.decode(errors="replace")))
        return StreamedRun(process.returncode, lines, b"".join(errors).decode(errors="replace"))

    return run


def without_timings(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in TIMING_KEYS}


def seconds(delta: str) -> float:
    """A command result's delta, H:MM:SS.ffffff, in seconds."""
    hours, minutes, secs = delta.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def remote_operations(output: str, task_name: str) -> list[str]:
    """Remote operations of one task in -vvv output."""
    section = output.split(f"TASK [{task_name}]", 1)[1].split("TASK [", 1)[0]
    pattern = SSH_OPERATION_RE if SSH_OPERATION_RE.search(section) else LOCAL_OPERATION_RE
    return pattern.findall(section)


@pytest.mark.slow
def test_followed_lines_arrive_while_the_job_runs(
    stream_playbook: t.Callable[..., StreamedRun], run_playbook: RunPlaybook, out_dir: Path
) -> None:
    """The acceptance test: a line a second for 20 s, poll 5, follow: the lines show up as they are printed.

    And the job's result is the one of the same command run as a plain synchronous shell task, but for timings.
    """
    followed = stream_playbook("live_follow.yml", extra_vars={"follow": True, "compare": True})
    assert followed.rc == 0, followed.report()
    results = json.loads((out_dir / "ticked.json").read_text())
    followed_result, plain_result = results["ticked"], results["plain"]
    ticks = {int(match.group(1)): at for at, line in followed.lines if (match := TICK_LINE.match(line))}
    assert sorted(ticks) == list(range(1, 21)), followed.report()
    # The task's result is shown once the job has ended: a changed line for the host.
    ended_at = next(at for at, line in followed.lines if line.startswith(f"changed: [{TARGET_HOST}]"))
    # Tick 5 is printed 16 s before the job's end; it is shown within a few seconds of it, long before the end.
    assert ticks[5] < ended_at - 8, followed.report()
    assert ticks[10] < ended_at - 4, followed.report()
    # Each line once, in order.
    assert [ticks[n] for n in range(1, 21)] == sorted(ticks.values())

    # The job ran on the command executor, and its result is the shell module's but for timings.
    assert followed_result["job"]["state"] == "succeeded"
    assert followed_result["stdout_lines"] == [f"tick {n}" for n in range(1, 21)]
    assert without_timings(followed_result) == without_timings(plain_result)
    # What the job's result has more: our job record and the keys that async gives any task's result.
    assert set(followed_result) - set(plain_result) == {"job", "ansible_job_id", "results_file", "started", "finished"}


@pytest.mark.slow
def test_a_followed_window_is_one_remote_command(run_playbook: RunPlaybook) -> None:
    run = run_playbook(
        "live_follow.yml", extra_vars={"follow": True, "lines": 8, "follow_interval": 2, "unfollowed": True},
        env={"ANSIBLE_VERBOSITY": "3"},
    )
    run.assert_ok()
    operations = remote_operations(run.stdout, "Run the ticking job")
    ticks = re.findall(rf"^\[{TARGET_HOST}\] stdout: tick \d+$", run.stdout, re.MULTILINE)
    assert len(ticks) == 8, run.report()
    # The launch takes at most 3 operations; then one per window of at most 2 s while the job ran, plus the end.
    ran_for = seconds(run.load("ticked.json")["ticked"]["delta"])
    assert len(operations) <= 3 + math.ceil(ran_for / 2) + 2, (ran_for, operations)
    # Without follow, a job's output is not shown while it runs.
    assert "stdout: unfollowed" not in run.stdout, run.report()


def test_follow_shows_a_bounded_part_of_a_flood_and_counts_the_rest(run_playbook: RunPlaybook) -> None:
    run = run_playbook(
        "live_follow.yml", extra_vars={"follow": True, "lines": 1, "fill": 3_000_000}
    )
    run.assert_ok()
    skipped = re.findall(rf"^\[{TARGET_HOST}\] stdout: … (\d+) bytes skipped$", run.stdout, re.MULTILINE)
    assert skipped, run.report()
    shown = re.findall(rf"^\[{TARGET_HOST}\] stdout: x+$", run.stdout, re.MULTILINE)
    # 16 KiB per window: the 3 MB are not all shown, and what was skipped is counted.
    assert 0 < len(shown) * 100 <= 4 * 16384, len(shown)
    assert sum(int(count) for count in skipped) + len(shown) * 100 >= 3_000_000
    assert len(run.stdout) < 200_000


def test_follow_keeps_json_callbacks_valid(run_playbook: RunPlaybook) -> None:
    run = run_playbook("live_follow.yml", extra_vars={"follow": True, "lines": 3, "follow_interval": 1},
                       env=JSON_CALLBACK_ENV)
    run.assert_ok()
    document = json.loads(run.stdout)
    assert document["stats"][TARGET_HOST]["failures"] == 0
    assert f"[{TARGET_HOST}] stdout: tick 2" in run.stderr, run.report()


def test_follow_shows_nothing_under_no_log(run_playbook: RunPlaybook) -> None:
    secret = f"SECRET{secrets.token_hex(8)}"
    run = run_playbook(
        "live_follow.yml",
        extra_vars={"follow": True, "lines": 3, "follow_interval": 1, "prefix": secret, "task_no_log": True},
    )
    run.assert_ok()
    assert secret not in run.stdout + run.stderr, run.report()
    assert "stdout:" not in run.stdout


@pytest.mark.slow
def test_async_status_wait_follows_one_job_and_many(
    stream_playbook: t.Callable[..., StreamedRun], out_dir: Path
) -> None:
    secret = f"SECRET{secrets.token_hex(8)}"
    run = stream_playbook("live_follow_status.yml", extra_vars={"secret": secret})
    assert run.rc == 0, run.report()
    assert secret not in run.stdout + run.stderr, run.report()
    shown = {line: at for at, line in run.lines}
    one_done = next(at for at, line in run.lines if line.startswith("TASK [Follow the others together]"))
    out_ticks = [at for line, at in shown.items() if re.match(rf"^\[{TARGET_HOST}\] stdout: out-tick \d+$", line)]
    assert len(out_ticks) == 10, run.report()
    # The first lines came while the wait went on, not all at its end.
    assert min(out_ticks) < one_done - 3, run.report()
    data = json.loads((out_dir / "followed.json").read_text())
    assert data["one"]["finished"] is True
    assert data["one"]["stdout_lines"] == [f"out-tick {n}" for n in range(1, 11)]
    # Many jobs: each line names its job.
    err_jid = data["many"]["jobs"][0]["ansible_job_id"]
    err_lines = [line for line in shown if line.startswith(f"[{TARGET_HOST}] {err_jid} stderr: err-tick ")]
    assert len(err_lines) == 22, run.report()
    assert data["many"]["finished"] is True
    # The result is that of an unfollowed wait: no output keys.
    assert all("output" not in job for job in data["many"]["jobs"])


def test_mode_output_reads_running_and_ended_jobs_within_bounds(run_playbook: RunPlaybook) -> None:
    secret = f"SECRET{secrets.token_hex(8)}"
    run = run_playbook("live_output.yml", extra_vars={"secret": secret})
    run.assert_ok()
    assert secret not in run.stdout + run.stderr, run.report()
    data = json.loads((run.out_dir / "output.json").read_text())

    first, second = data["first_read"], data["second_read"]
    assert first["finished"] is False and first["complete"] is False
    assert first["stdout"].startswith("out-tick 1\nout-tick 2\nout-tick 3\n")
    assert first["stderr"] == ""
    assert first["output"]["stdout"]["offset"] == 0
    assert first["next_since"]["stdout"] == len(first["stdout"].encode())
    # The second read starts where the first ended: nothing twice, nothing lost.
    assert second["output"]["stdout"]["offset"] == first["next_since"]["stdout"]
    first_numbers = [int(line.split()[1]) for line in first["stdout"].splitlines()]
    second_numbers = [int(line.split()[1]) for line in second["stdout"].splitlines()]
    assert second_numbers[0] == first_numbers[-1] + 1
    assert len(data["tail_read"]["stdout"].splitlines()) == 2

    many = data["many_read"]
    out_job, err_job = many["jobs"]
    assert out_job["stdout"].startswith("out-tick 1\n") and out_job["stderr"] == ""
    assert err_job["stderr"].startswith("err-tick 1\n") and err_job["stdout"] == ""
    assert set(many["next_since"]) == {out_job["ansible_job_id"], err_job["ansible_job_id"]}
    again = {job["ansible_job_id"]: job for job in data["many_again"]["jobs"]}
    assert again[err_job["ansible_job_id"]]["output"]["stderr"]["offset"] == err_job["next_since"]["stderr"]

    # A few MB of output: a read returns at most the cap, and the next read goes on from there.
    big_first, big_second = data["big_first"], data["big_second"]
    assert big_first["output"]["stdout"]["size"] >= 3_000_000
    assert len(big_first["stdout"].encode()) == 65536
    assert big_first["truncated"] is True and big_first["next_since"]["stdout"] == 65536
    assert big_second["output"]["stdout"]["offset"] == 65536
    assert len(big_second["stdout"].encode()) == 1048576
    assert big_second["next_since"]["stdout"] == 65536 + 1048576

    hidden = data["hidden_read"]
    assert hidden["hidden"] is True
    assert "hidden by no_log" in hidden["msg"]
    assert "stdout" not in hidden and "output" not in hidden

    # An ended command job: its kept output file.
    quick = data["quick_tail"]
    assert quick["finished"] is True and quick["complete"] is True
    assert quick["stdout"].splitlines() == ["second", "third"]
    assert quick["output"]["stdout"]["source"] == "file"
    # An ended module job has no side files any more: its result's stdout.
    quick_module = data["quick_module_tail"]
    assert quick_module["finished"] is True and quick_module["complete"] is True
    assert quick_module["stdout"].splitlines() == ["second", "third"]
    assert quick_module["output"]["stdout"]["source"] == "result"
    # An ended shell job: its full text, from the kept file.
    ended = data["ended_read"]
    assert ended["finished"] is True and ended["complete"] is True and ended["state"] == "succeeded"
    assert ended["stdout"] == "".join(f"out-tick {n}\n" for n in range(1, 31))
    assert ended["output"]["stdout"]["source"] == "file"


def test_bad_output_options_fail_with_a_sentence(run_playbook: RunPlaybook) -> None:
    run = run_playbook("live_output_bad.yml")
    run.assert_ok()
    data = json.loads((run.out_dir / "bad.json").read_text())
    messages = {item["item"]["name"]: item["msg"] for item in data["bad"]}
    assert all(item["failed"] for item in data["bad"])
    expected = {
        "negative_since": "since must be a byte offset of 0 or more, got -1",
        "since_and_tail": "give either since or tail, not both",
        "negative_tail": "tail must be 0 or more lines, got -2",
        "huge_cap": "max_bytes must be from 1 to 1048576 bytes per stream",
        "bad_stream": "since has unknown key(s) stdin",
        "text_since": "since must be a byte offset of 0 or more, got 'lots'",
        "foreign_jid": "since names job(s) j2.2 that are not asked about",
        "tail_in_status": "tail is only used with mode=output",
        "follow_without_wait": "follow: true shows the jobs' output while waiting for them: set wait",
        "short_interval": "follow_interval must be 1 or more seconds",
        "output_without_jobs": "mode=output needs jid or jobs",
        "output_with_wait": "mode=output reads at once and does not wait",
    }
    for name, fragment in expected.items():
        assert fragment in messages[name], (name, messages[name])
        assert "Traceback" not in messages[name]
    assert data["follow_poll_0"]["failed"] is True
    assert "needs async and poll greater than 0" in data["follow_poll_0"]["msg"]


def shared_python() -> str:
    """A Python every user can run (pyenv's live under /root)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no system-wide python3 for the become user")


@pytest.mark.slow
def test_output_of_a_become_job_is_read_and_followed(run_playbook: RunPlaybook, become_user: str) -> None:
    run = run_playbook(
        "live_output_become.yml",
        extra_vars={"job_user": become_user, "job_user_python": shared_python()},
        # The become user cannot enter the test's private dirs: the default async dir, in its home.
        env={"ANSIBLE_ASYNC_DIR": "~/.ansible_async"},
    )
    run.assert_ok()
    data = run.load("become.json")
    home = Path(pwd.getpwnam(become_user).pw_dir)
    assert data["launched"]["results_file"].startswith(str(home / ".ansible_async") + "/")
    read = data["read"]
    assert read["stdout"].startswith(f"{become_user}-tick 1\n{become_user}-tick 2\n"), read
    assert read["output"]["stdout"]["source"] == "file"
    followed_lines = re.findall(rf"^\[{TARGET_HOST}\] stdout: {become_user}-tick (\d+)$", run.stdout, re.MULTILINE)
    assert [int(n) for n in followed_lines] == list(range(1, 7)), run.report()
    assert data["followed"]["finished"] is True
