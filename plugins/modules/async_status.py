#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: async_status
short_description: Report, wait for and clean up background jobs, a superset of ansible.builtin.async_status
version_added: 0.1.0
description:
  - A drop-in superset of M(ansible.builtin.async_status). O(jid) with O(mode=status) or O(mode=cleanup)
    returns the same keys as the stock module, so swapping the module name changes nothing that worked.
  - Reads jobs launched by M(longrun.jobs.run) and jobs launched by stock C(async:) tasks.
  - Every result carries a RV(job) dictionary with the job's state, one of V(running), V(succeeded), V(failed),
    V(timed_out), V(killed), V(lost), V(not_found) and V(unreadable).
  - A job that ended in a failure state makes the task fail, so that C(rescue), C(ignore_errors) and
    C(failed_when) work. A running job is not a failure.
  - O(wait) waits on the target until the job ends and returns the moment it does, instead of a
    C(until)/C(retries)/C(delay) loop. With O(follow=true) the wait shows the jobs' new output lines as they come.
  - O(mode=output) reads what the jobs have printed so far, running or ended, from a byte offset (O(since)) or
    their last lines (O(tail)), at most O(max_bytes) per stream per job.
  - The async directory comes from C(ansible_async_dir) or E(ANSIBLE_ASYNC_DIR) (default C(~/.ansible_async)),
    and C(~) is expanded on the target as the user the task runs as (the C(become) user with C(become)).
  - This is a docs-only module; the work is done by the action plugin of the same name.
author:
  - longrun.jobs maintainers (@longrun)
options:
  jid:
    description:
      - The job id, the RV(longrun.jobs.run#module:ansible_job_id) of a registered async result, or the
        O(longrun.jobs.run#module:name) of a named job.
      - Only job ids as produced by longrun and by stock Ansible, and valid job names, are accepted. Anything else,
        such as a path, is refused and nothing is read or removed.
      - A name is resolved on the target to the job it stands for; the result carries that job's id in
        RV(ansible_job_id) and the name in C(job.name). A name that stands for no job is reported as V(not_found),
        with a RV(msg) that names the name. See C(docs/reruns-locks-interruption.md) in the collection.
      - With O(jid), O(mode=status) and O(mode=cleanup) return the same keys as the stock module.
      - Mutually exclusive with O(jobs).
    type: str
  jobs:
    description:
      - Many jobs in one call. A list whose items are job id strings, registered results of single launches
        (dictionaries with C(ansible_job_id)) or whole registered loop results (dictionaries with C(results)),
        which are flattened. A registered result on its own, without a list around it, works too.
      - A string item may also be a job name (O(longrun.jobs.run#module:name)), resolved as for O(jid); its entry in
        RV(jobs) carries the job's id.
      - Items without C(ansible_job_id), such as skipped loop items, are ignored and counted in RV(ignored).
      - The result then has one entry per job in RV(jobs), in input order, plus RV(summary), RV(failed_jobs)
        and a one-line RV(msg).
      - All the jobs of a host are checked in one remote command per wait window, however many they are.
      - Mutually exclusive with O(jid).
    type: raw
  mode:
    description:
      - V(status) reports the jobs, and with O(wait) waits for them to end.
      - V(kill) ends the jobs and all their descendants (also those that ignore C(SIGTERM) or called C(setsid)),
        with O(signal) first, then C(SIGKILL) after O(grace) seconds. Their state becomes V(killed) and the call
        returns once they are gone. A job that has already ended is reported in its state, without error.
      - V(list) reports every job record in the async directory with its state and age, filtered by O(states)
        and O(older_than).
      - V(cleanup) removes job records and their side files. With O(jid) alone it is the stock form. With O(jobs),
        O(older_than) or O(states) it removes every matching record. Only records of jobs that have ended are
        removed, unless O(force=true).
      - As with O(jid), V(cleanup) with O(jobs) fails when a job it names has no record; the others are still
        removed, RV(not_found) lists the missing ones and RV(msg) names them.
      - V(output) reads the jobs' stdout and stderr (see O(since), O(tail) and O(max_bytes)) and returns the text in
        RV(stdout) and RV(stderr) (with O(jobs), per job in RV(jobs)), with RV(next_since), the offsets to read on
        from. It changes nothing and never waits.
      - While a job runs, its output is what its process has written so far. Once it has ended, it is the output
        kept in the async directory (M(ansible.builtin.command) and M(ansible.builtin.shell) jobs keep it until their
        files are removed), else the C(stdout) and C(stderr) of the module's result, if it returned them.
      - The output of a job launched under C(no_log) is never returned, only RV(hidden) and a RV(msg) that says so.
    type: str
    choices: [status, cleanup, kill, list, output]
    default: status
  wait:
    description:
      - Seconds to wait on the target for the jobs to end (see O(return_when)). V(0) reports at once.
      - The call returns as soon as the jobs end. Long waits are split into remote calls of at most about a
        minute, and each host's progress is shown after each of them, on stdout with ansible-core's own screen
        callbacks (and those derived from them), on stderr with any other stdout callback, such as a JSON one,
        so that its output stays machine-readable.
      - Connection errors during the wait are retried until the time is up.
      - The task's C(timeout) keyword (or C(TASK_TIMEOUT)) ends the wait a little before it (a fifth of it, at least
        1 and at most 5 seconds). When jobs are then still running, the task fails with C(timedout), the job ids and
        a C(msg) that says to wait again; the jobs are not affected.
      - With O(mode=kill), how long to wait for the killed jobs to end; V(0) means O(grace) plus 10 seconds.
      - O(mode=output) reads at once and takes no O(wait); to see the output while waiting, use O(follow).
      - A status or output request renews the lease of each job it names that M(longrun.jobs.run) launched with
        C(on_controller_loss=kill), until the end of its wait (each remote call of a long wait) plus the job's
        C(controller_timeout).
    type: float
    default: 0
  return_when:
    description:
      - With O(wait), V(all) returns once every job has ended, V(any) as soon as one of them has.
    type: str
    choices: [all, any]
    default: all
  signal:
    description:
      - The first signal that O(mode=kill) (and O(mode=cleanup) with O(force=true)) sends. V(KILL) skips the grace.
    type: str
    choices: [TERM, INT, HUP, QUIT, USR1, USR2, KILL]
    default: TERM
  grace:
    description:
      - Seconds between O(signal) and C(SIGKILL) for O(mode=kill) and O(force=true).
    type: int
    default: 5
  states:
    description:
      - With O(mode=list) and O(mode=cleanup), only jobs in these states.
      - For O(mode=cleanup), without O(states) every state matches, but the record of a V(running) or V(waiting) job
        is only removed with O(force=true), after the job was killed. Without O(force) it is kept and reported in
        RV(spared).
    type: list
    elements: str
    choices: [running, waiting, succeeded, failed, timed_out, killed, lost, unreadable]
  older_than:
    description:
      - With O(mode=list) and O(mode=cleanup), only records last written more than this long ago. That is since the
        start for a running job and since the end for one that has ended, like C(find -mtime).
      - A number of seconds, or a duration such as V(30m), V(12h), V(1d), V(1w) or V(1d12h).
    type: raw
  force:
    description:
      - With O(mode=cleanup), also remove the records of matching running jobs, after killing them as O(mode=kill)
        does (O(signal), O(grace)).
      - Without it a running job's record is never removed; it is reported in RV(spared).
    type: bool
    default: false
  since:
    description:
      - With O(mode=output), where to start reading, in bytes from the start of each stream. Without it and
        without O(tail), reading starts at V(0).
      - A number for both streams, a dictionary with C(stdout) and C(stderr) offsets, or a dictionary of those by
        job id. The RV(next_since) of the previous O(mode=output) result is of the right form, for O(jid) and for
        O(jobs). Pass it to read on without missing or repeating anything.
      - An offset in the middle of a character starts at the next character; one past the end returns nothing.
      - Mutually exclusive with O(tail).
    type: raw
  tail:
    description:
      - With O(mode=output), return the last O(tail) lines of each stream instead, within the last O(max_bytes).
      - Mutually exclusive with O(since).
    type: int
  max_bytes:
    description:
      - With O(mode=output), the most bytes returned per stream per job; the default is V(65536), the largest
        V(1048576).
      - Text is never cut in the middle of a UTF-8 character. When more output follows, RV(truncated) is V(true)
        and the next call with O(since) set to RV(next_since) goes on from there.
    type: int
  follow:
    description:
      - "With O(wait) (and O(mode=status)), show the jobs' new output lines while waiting, as they are written,
        each as C([host] stdout: line) (with O(jobs), C([host] <jid> stdout: line))."
      - The lines are shown every O(follow_interval) seconds, through Ansible's display like the progress line
        (on stdout with ansible-core's screen callbacks, on stderr with other stdout callbacks such as JSON ones).
        Each look is part of one wait window; still one remote command per window, however many jobs.
      - Per window, at most 16384 bytes per stream per job are shown; when more was written, the latest lines,
        after a line C(… N bytes skipped).
      - A line still being written is shown once it ends (or when the job does).
      - Nothing is shown for a job launched under C(no_log), nor by a task that has C(no_log) itself.
      - The result is the same as without O(follow).
      - The output of a module job (not M(ansible.builtin.command) or M(ansible.builtin.shell)) is its process's
        stdout and stderr, which are only there while it runs.
    type: bool
    default: false
  follow_interval:
    description:
      - With O(follow=true), seconds between two looks at the output; the default is V(3), the least V(1).
    type: float
extends_documentation_fragment:
  - longrun.jobs.attributes
  - longrun.jobs.attributes.action
attributes:
  action:
    support: full
  async:
    support: none
  check_mode:
    support: full
    details:
      - O(mode=status) and O(mode=list) only read.
      - In check mode, O(mode=kill) and O(mode=cleanup) report what they would kill and remove, and change nothing.
  diff_mode:
    support: none
notes:
  - O(jid) or O(jobs) is required for O(mode=status), O(mode=kill) and O(mode=output). O(mode=cleanup) needs O(jid),
    O(jobs), O(older_than) or O(states).
  - The state V(lost) means that the record says the job is running but its supervisor is gone (its pid is dead
    or belongs to another process, or the host rebooted). Stock Ansible would report such a job as running forever.
  - With transparent mode on (the collection's C(transparent/action_plugins) directory first on the action plugin
    path), plain C(async_status:) tasks, ad hoc C(-m async_status) and ansible-core's own poller and clean-up of async
    tasks go through this plugin, so stock C(until) loops see V(lost) and V(timed_out).
    M(ansible.builtin.async_status) written as FQCN stays ansible-core's own, and still reads this collection's jobs.
seealso:
  - module: ansible.builtin.async_status
  - module: longrun.jobs.run
  - name: Live output
    description: Reading a job's output while it runs, and following it during a wait.
    link: https://github.com/longrun/jobs/blob/main/docs/live-output.md
  - name: Transparent mode
    description: Plain async_status tasks and core's poller read jobs through this plugin.
    link: https://github.com/longrun/jobs/blob/main/docs/transparent-mode.md
"""

EXAMPLES = r"""
---
- name: Start a data export in the background
  longrun.jobs.run:
    ansible.builtin.command: /opt/app/export.sh
  async: 3600
  poll: 0
  register: export_job

- name: Wait up to 30 minutes for it, returning as soon as it ends
  longrun.jobs.async_status:
    jid: "{{ export_job.ansible_job_id }}"
    wait: 1800
  register: export_result

- name: Show how it ended
  ansible.builtin.debug:
    msg: "{{ export_result.job.state }} after {{ export_result.job.duration }} s"

- name: Stock pattern, unchanged, still works
  longrun.jobs.async_status:
    jid: "{{ export_job.ansible_job_id }}"
  register: poll_result
  until: poll_result.finished
  retries: 10
  delay: 5

- name: Remove the job's files
  longrun.jobs.async_status:
    jid: "{{ export_job.ansible_job_id }}"
    mode: cleanup

- name: Start one job per database
  longrun.jobs.run:
    ansible.builtin.command: /opt/app/reindex.sh {{ item }}
  async: 900
  poll: 0
  loop: [orders, users, audit]
  register: reindex

- name: Wait for all of them in one call; fails if any of them failed
  longrun.jobs.async_status:
    jobs: "{{ reindex }}"
    wait: 900
  register: reindexed

- name: Show the one-line summary
  ansible.builtin.debug:
    msg: "{{ reindexed.msg }}"

- name: Wait until the first of them ends
  longrun.jobs.async_status:
    jobs: "{{ reindex.results }}"
    wait: 900
    return_when: any

- name: Stop the others, with 10 s between SIGTERM and SIGKILL
  longrun.jobs.async_status:
    jobs: "{{ reindex }}"
    mode: kill
    grace: 10

- name: List the jobs that failed more than an hour ago
  longrun.jobs.async_status:
    mode: list
    states: [failed, timed_out, killed, lost]
    older_than: 1h
  register: failures

- name: Remove the records of jobs that ended more than a day ago (running jobs are spared)
  longrun.jobs.async_status:
    mode: cleanup
    older_than: 1d

- name: Read the last 20 lines the export has printed so far
  longrun.jobs.async_status:
    jid: "{{ export_job.ansible_job_id }}"
    mode: output
    tail: 20
  register: export_tail

- name: Later, read what it printed since
  longrun.jobs.async_status:
    jid: "{{ export_job.ansible_job_id }}"
    mode: output
    since: "{{ export_tail.next_since }}"

- name: Wait for the reindex jobs, showing their output as it comes
  longrun.jobs.async_status:
    jobs: "{{ reindex }}"
    wait: 900
    follow: true
"""

RETURN = r"""
---
ansible_job_id:
  description: The job id.
  returned: with O(jid)
  type: str
  sample: j123456789.4242
started:
  description: Whether the job was started, as in M(ansible.builtin.async_status).
  returned: with O(jid) and O(mode=status) or O(mode=cleanup)
  type: bool
finished:
  description: Whether the job has ended, in any state; with O(jobs), whether all of them have.
  returned: with O(jid) or O(jobs), except for O(mode=cleanup) with O(jobs)
  type: bool
results_file:
  description: Absolute path of the job's status record on the target.
  returned: O(mode=status)
  type: str
  sample: /home/deploy/.ansible_async/j123456789.4242
erased:
  description:
    - Path of the record that was removed.
    - Not returned in check mode, where nothing is removed; RV(msg) then says which record would be.
  returned: O(mode=cleanup) with O(jid), when the record was removed
  type: str
stdout:
  description:
    - The module's stdout when the job has finished, as in the stock module; empty before.
    - With O(mode=output), the text read from the job's stdout (at most O(max_bytes) bytes).
  returned: with O(jid) and O(mode=status), O(mode=cleanup) or O(mode=output) (not for a C(no_log) job)
  type: str
stderr:
  description:
    - The module's stderr when the job has finished, as in the stock module; empty before.
    - With O(mode=output), the text read from the job's stderr (at most O(max_bytes) bytes).
  returned: with O(jid) and O(mode=status), O(mode=cleanup) or O(mode=output) (not for a C(no_log) job)
  type: str
output:
  description:
    - With O(mode=output), how each stream was read, under C(stdout) and C(stderr); with O(jobs), per job in RV(jobs).
    - C(offset) is where the text starts and C(next_offset) where the next read should (RV(next_since)),
      C(size) the stream's length when read, C(skipped) the bytes before the text that were not returned
      (with O(tail)), C(truncated) whether the cap stopped the read with more to come, C(complete) whether the job
      has ended and its stream was read to the end, and C(source) V(file) (the job's output file), V(result) (the
      ended job's result) or V(none) (no output there).
  returned: O(mode=output), except for a C(no_log) job
  type: dict
  sample: {"stdout": {"offset": 0, "next_offset": 28, "size": 28, "skipped": 0, "truncated": false,
           "complete": false, "source": "file"}, "stderr": {"offset": 0, "next_offset": 0, "size": 0, "skipped": 0,
           "truncated": false, "complete": false, "source": "file"}}
next_since:
  description:
    - With O(mode=output), the offsets to pass as O(since) to read on. With O(jid), C(stdout) and C(stderr) offsets;
      with O(jobs), those offsets by job id.
  returned: O(mode=output)
  type: dict
  sample: {"stdout": 28, "stderr": 0}
truncated:
  description: With O(mode=output), whether more output than O(max_bytes) was waiting; read on from RV(next_since).
  returned: O(mode=output)
  type: bool
complete:
  description: With O(mode=output), whether the jobs have ended and all their output was read.
  returned: O(mode=output)
  type: bool
hidden:
  description: With O(mode=output), V(true) for a job launched under C(no_log), whose output is never returned.
  returned: O(mode=output), for a C(no_log) job
  type: bool
jobs:
  description:
    - With O(jobs) (O(mode=status) or O(mode=kill)), one entry per job, in input order.
    - With O(mode=list), one entry per record in the async directory that matches the filters, without RV(jobs[].result).
    - With O(mode=output), one entry per job with C(ansible_job_id), C(state), C(finished), C(job), and the keys
      RV(stdout), RV(stderr), RV(output), RV(next_since), RV(truncated), RV(complete) (or RV(hidden) and RV(msg))
      of that job.
  returned: with O(jobs), and with O(mode=list)
  type: list
  elements: dict
  contains:
    ansible_job_id:
      description: The job id.
      type: str
      returned: always
    state:
      description: The job's state, as in RV(job.state).
      type: str
      returned: always
    reason:
      description: Why the job is not a success, as in RV(job.reason); V(null) for running and succeeded jobs.
      type: str
      returned: always
    finished:
      description: Whether the job has ended.
      type: bool
      returned: except with O(mode=list)
    failed:
      description: Whether the job ended in a failure state.
      type: bool
      returned: except with O(mode=list)
    started_at:
      description:
        - When the job started, ISO 8601 in UTC.
        - For a job with C(lock), when it took its locks and started; while it waits, when it was launched.
      type: str
      returned: always
    ended_at:
      description: When the job ended, ISO 8601 in UTC; V(null) while it runs.
      type: str
      returned: always
    duration:
      description: Seconds from start to end, or to now while the job runs.
      type: float
      returned: always
    age:
      description: Seconds since the record was last written (the start of a running job, the end of one that has ended).
      type: float
      returned: with O(mode=list)
    origin:
      description: V(longrun) or V(stock).
      type: str
      returned: with O(mode=list)
    timeout:
      description: The job's async limit in seconds.
      type: int
      returned: except with O(mode=list)
    rc:
      description:
        - The module's own C(rc), such as the exit status of the command of M(ansible.builtin.command).
        - V(null) when the module returns none (M(ansible.builtin.uri), M(ansible.builtin.file) and most others),
          also when it failed; RV(jobs[].exit_code) is then no substitute for it.
        - The C(rc=N) of RV(msg) is this number.
      type: int
      returned: except with O(mode=list)
    exit_code:
      description:
        - The exit status of the module process, V(null) when it was ended by a signal or has not ended.
        - A module that fails exits with V(1) whatever went wrong; a uri request that got a 404 is C(exit_code=1)
          with C(rc=null).
      type: int
      returned: except with O(mode=list)
    msg:
      description: For a job that is not a success, one sentence that says what happened.
      type: str
      returned: always
    progress:
      description: What the job last reported on its progress channel, as in RV(job.progress); V(null) when it reported
        nothing.
      type: dict
      returned: except with O(mode=list)
    result:
      description: The module result once the job has finished, else V(null).
      type: dict
      returned: except with O(mode=list)
    waiting_for:
      description: While the job is V(waiting) for its locks, what it waits for, as in RV(job.waiting_for).
      type: dict
      returned: while the job is V(waiting), except with O(mode=list)
summary:
  description: A count per state (every state, zeros included) plus C(total).
  returned: with O(jobs), and with O(mode=list)
  type: dict
  sample: {"succeeded": 16, "failed": 3, "timed_out": 1, "killed": 0, "lost": 0, "not_found": 0, "unreadable": 0,
           "running": 0, "waiting": 0, "total": 20}
failed_jobs:
  description: The C(ansible_job_id), C(state) and C(msg) of each job that ended in a failure state (with O(mode=kill),
    of each job that could not be killed).
  returned: with O(jobs) and O(mode=status) or O(mode=kill)
  type: list
  elements: dict
ignored:
  description:
    - How many items of O(jobs) had no C(ansible_job_id) (skipped loop items, failed launches) and were ignored.
    - Not named C(skipped), which would mark the whole task as skipped.
  returned: with O(jobs)
  type: int
killed:
  description:
    - The jobs that O(mode=kill) (or O(force=true)) ended, in check mode those it would signal.
    - Jobs that had already ended are not in it, nor a job that ended on its own (for example V(succeeded)) in the
      moment it was signalled; its state in RV(jobs) tells how it ended.
  returned: with O(mode=kill), and O(mode=cleanup) with O(jobs) or filters
  type: list
  elements: str
removed:
  description: The jobs whose records O(mode=cleanup) removed (in check mode, would remove).
  returned: O(mode=cleanup) with O(jobs) or filters
  type: list
  elements: str
spared:
  description: Running jobs that matched O(mode=cleanup) but whose records were kept, because O(force) was not set.
  returned: O(mode=cleanup) with O(jobs) or filters
  type: list
  elements: str
not_found:
  description: Jobs named in O(jobs) that have no record. When there are any, the task fails and RV(msg) names them.
  returned: O(mode=cleanup) with O(jobs)
  type: list
  elements: str
async_dir:
  description: The async directory on the target, with C(~) expanded.
  returned: with O(mode=list), and O(mode=cleanup) with O(jobs) or filters
  type: str
  sample: /home/deploy/.ansible_async
job:
  description: The job's state and timing.
  returned: with O(jid)
  type: dict
  contains:
    state:
      description:
        - The job's state.
        - V(waiting) is a job launched with C(lock) whose supervisor waits for its locks; the job has not started
          yet. Like V(running), it has not finished, it is killed on request (and then never starts), and
          O(mode=cleanup) keeps its record. Stock M(ansible.builtin.async_status) sees it as running.
      type: str
      returned: always
      choices: [running, waiting, succeeded, failed, timed_out, killed, lost, not_found, unreadable]
    pid:
      description: The pid of the job's supervisor on the target.
      type: int
      returned: when known
    started_at:
      description:
        - When the job started, ISO 8601 in UTC.
        - For a job with C(lock), when it took its locks and started; while it waits, when it was launched.
      type: str
      returned: when known
      sample: "2026-11-23T19:55:01.123Z"
    ended_at:
      description: When the job ended, ISO 8601 in UTC.
      type: str
      returned: when known
    duration:
      description: Seconds from start to end, or to now while the job runs.
      type: float
      returned: when known
    timeout:
      description: The job's async limit in seconds.
      type: int
      returned: for longrun jobs
    reason:
      description:
        - Why the job is not a success.
        - V(module_failed) when the module returned C(failed=true), V(module_crashed) when it did not return JSON
          (a traceback, a crash, a signal, or a program that could not be executed), V(async_limit), V(kill_requested),
          V(controller_lost) (a job of M(longrun.jobs.run) with C(on_controller_loss=kill) that no controller waited on
          for its C(controller_timeout)), V(supervisor_gone),
          V(host_rebooted), V(no_record), V(bad_record), or V(result_not_saved) when the job ended but its result
          could not be written (typically a full disk).
        - V(lock_timeout) when the job's locks were not free within its C(lock_timeout); it never started (state
          V(failed)). A job killed while it waited for its locks is V(killed) with V(kill_requested).
        - V(running) or V(waiting) when O(mode=cleanup) kept the record of a job that has not ended.
      type: str
      returned: when the state is not V(running) or V(succeeded)
    msg:
      description: One sentence that says what happened.
      type: str
      returned: when the state is not V(running) or V(succeeded)
      sample: job j123.456 timed out after 2 s (async limit) and was terminated with SIGTERM
    signal:
      description: The signal that ended the job, or that the supervisor sent at the limit.
      type: str
      returned: when a signal was involved
      sample: SIGTERM
    exit_code:
      description: The exit code of the module process.
      type: int
      returned: when the module process exited
    origin:
      description: V(longrun) for jobs of M(longrun.jobs.run), V(stock) for jobs launched by stock C(async:).
      type: str
      returned: always
    progress:
      description:
        - What the job last reported on its progress channel (the JSON lines it writes to the descriptor
          C(LONGRUN_PROGRESS_FD) or the file C(LONGRUN_PROGRESS_FILE)), read when the status was taken; an ended job
          keeps its last report. See C(docs/progress.md) in the collection.
        - C(percent) is a number from V(0) to V(100) (or V(null)), from the report's C(percent), else from its
          C(current) and C(total); C(msg) is the report's message, cut to 256 characters (or V(null)),
          V(hidden by no_log) for a job launched under C(no_log); C(current) and C(total) are there when the report
          had them; C(updated_at) is when the job last wrote to the channel, ISO 8601 in UTC.
      type: dict
      returned: when the job has reported progress
      sample: {"percent": 40, "msg": "copied 4/10", "updated_at": "2026-11-23T19:55:41.020Z"}
    locks:
      description: The locks the job's supervisor takes before the job starts and holds until it ends (C(lock)).
      type: list
      elements: str
      returned: for jobs launched with C(lock)
      sample: [dpkg]
    waiting_for:
      description:
        - While the job is V(waiting), the lock it waits for (C(lock)), the job that holds it (C(holder), a job id,
          when a longrun job holds it) and the pid of the holder's supervisor or of the process that holds a
          package manager's lock (C(holder_pid)), when known.
        - With O(jobs), each entry of RV(jobs) has it too, while its job waits.
      type: dict
      returned: while the state is V(waiting)
      sample: {"lock": "db-migrations", "holder": "j123456789.4242", "holder_pid": 4243}
timedout:
  description:
    - Set when the task timeout (the C(timeout) keyword or C(TASK_TIMEOUT)) ended the wait while jobs still run, as core
      sets it for a task that timed out; C(period) is the timeout in seconds.
  returned: when the task timeout ended the wait
  type: dict
  sample:
    period: 60
msg:
  description:
    - With O(jid), for a job that ended in a failure state, the module's own C(msg) when it returned one (as with
      stock), else the sentence of RV(job.msg). For a job that is not in the async directory it starts with
      core's C(could not find job).
    - "With O(jobs), a one-line summary such as C(5 jobs: 3 succeeded, 1 failed (j1.2: rc=3), 1 timed_out (j4.5 after 3 s))."
    - In that summary C(rc=N) is the module's own RV(jobs[].rc); a failed job without one shows the first line of the
      module's message instead.
    - With O(mode=cleanup) and O(jid) in check mode, which record would be removed.
    - With O(mode=list) and O(mode=cleanup), a one-line summary.
    - With O(mode=output), how many bytes were read, or that the output is hidden by C(no_log).
  returned: on failure, and with O(jobs), O(mode=list), O(mode=output) or O(mode=cleanup) with filters
  type: str
"""
