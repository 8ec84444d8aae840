"""Issue 14 item 4, the progress channel: jobs report, status and the waiting line show it, over local and ssh."""

from __future__ import annotations

import re
import secrets

from playbook_run import RunPlaybook

# The waiting line of run with poll > 0, with the job's report in it.
REPORTED_LINE_RE = re.compile(
    r"\[target\] longrun: job \S+ is running, running for \d+ s: 50% halfway there \(waited \d+ s\)"
)


def test_status_shows_the_latest_report_while_the_job_runs_and_after_its_end(run_playbook: RunPlaybook) -> None:
    secret = f"s3cr3t-{secrets.token_hex(6)}"
    run = run_playbook("progress.yml", extra_vars={"secret": secret})
    run.assert_ok()
    data = run.load("progress.json")
    shell_running, module_running, secret_running = data["running"]
    shell_ended, module_ended, secret_ended = data["ended"]

    # The shell job, on the command executor, wrote to its descriptor, and so did its child: the child's report
    # is the latest; the malformed lines written after it are ignored.
    assert shell_running["state"] == "running"
    assert shell_running["progress"]["percent"] == 40
    assert shell_running["progress"]["msg"] == "copied 4/10"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", shell_running["progress"]["updated_at"])
    # The file is gone with the end; the record kept the last report.
    assert shell_ended["state"] == "succeeded"
    assert shell_ended["progress"]["percent"] == 100
    assert shell_ended["progress"]["msg"] == "all copied"

    # The module job wrote to its descriptor, and so did its child; a report of current/total gives the percent.
    assert module_running["progress"]["msg"] == "from the child"
    assert module_ended["result"]["child_rc"] == 0
    assert module_ended["progress"]["percent"] == 100
    assert module_ended["progress"]["msg"] == "module done"
    assert (module_ended["progress"]["current"], module_ended["progress"]["total"]) == (10, 10)

    # A shell job writing to >&"$LONGRUN_PROGRESS_FD" (a module in the old style: the job's process is the shell),
    # and its child; the malformed line it writes last is ignored.
    assert data["shell_fd"]["state"] == "succeeded"
    assert data["shell_fd"]["progress"]["percent"] == 60
    assert data["shell_fd"]["progress"]["msg"] == "its child too"

    # A no_log job: its percent, never its message.
    for job in (secret_running, secret_ended):
        assert job["progress"]["percent"] == 40
        assert job["progress"]["msg"] == "hidden by no_log"
    assert secret not in run.stdout, run.report()
    assert secret not in run.stderr, run.report()

    # run with poll > 0: the waiting line shows the report, and the result has the last one. That job ran the
    # command module, which closes the descriptor of the commands it runs: they report to the file.
    assert REPORTED_LINE_RE.search(run.stdout), run.report()
    assert data["polled"]["progress"]["percent"] == 100
    assert data["polled"]["progress"]["msg"] == "finished"
    assert data["polled"].get("executor") is None
    assert data["polled_stdout"] == "no descriptor"
    # A command or shell job run by the executor has the descriptor.
    assert data["executor_fd"]["job"]["executor"] == "command"
    assert data["executor_fd"]["stdout"] == "descriptor open"
