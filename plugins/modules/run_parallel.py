#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_parallel
short_description: Run many modules as supervised background jobs, at most a given number at once
version_added: 0.1.0
description:
  - Runs a list of jobs on each host, at most O(limit) at once, in scheduling rounds. Each round launches jobs up to
    O(limit), waits on the target for any of them to end, and the next round launches the next, until every job has ended.
  - Each job is a module run as by M(longrun.jobs.run), under the same supervisor, with a hard limit (O(timeout),
    or the job's own C(async)), then C(SIGTERM), the grace period and C(SIGKILL) for the whole process tree.
  - Waiting costs one remote command per wait window for all running jobs of the host. The task returns within about
    a second of the last job's end. The jobs' records are removed once every job has ended.
  - The task fails when any job did not succeed. Its RV(msg) is then a table of all the jobs, with their state,
    the module's own C(rc) (RV(results[].rc), empty when the module returns none), duration and message.
    RV(results) is returned in both cases.
  - Under C(no_log), every entry of RV(results) is censored, at every verbosity, and RV(msg) only counts the jobs that
    did not succeed, since the table would show their names and messages.
  - Between wait windows a progress line is shown for each host, on stdout with ansible-core's own screen callbacks
    (and those derived from them), on stderr with any other stdout callback, such as a JSON one.
  - This is the engine of the role M(longrun.jobs.parallel), which also sets the fact C(parallel_results).
    This is a docs-only module; the work is done by the action plugin of the same name.
author:
  - longrun.jobs maintainers (@longrun)
options:
  jobs:
    description:
      - The jobs, in the order in which they are launched.
      - Each job is a dictionary in the nested form of M(longrun.jobs.run), exactly one key that names a module,
        whose value holds the module's arguments, plus the optional keys C(name) (shown in results and the table;
        by default the module's short name and its command), C(async) (the job's limit in seconds; by default
        O(timeout)) and C(grace) (by default O(grace)).
      - C(job_name) and C(on_existing) make the job a named job, as O(longrun.jobs.run#module:name) and
        O(longrun.jobs.run#module:on_existing) do for M(longrun.jobs.run). The key is C(job_name), not C(name),
        because C(name) is already the job's label in results and the table, free text that need not be unique;
        a job name is an identity on the target, unique per async directory. With C(on_existing=attach) (the default)
        the job of that name, when it runs, takes the item's place and is waited for. V(skip) is refused here, since
        the task waits for every item; V(fail) and V(restart) work as for M(longrun.jobs.run).
      - A job may also take C(lock) and C(lock_timeout), as O(longrun.jobs.run#module:lock) and
        O(longrun.jobs.run#module:lock_timeout) of M(longrun.jobs.run); its supervisor takes the locks before the job
        starts and holds them until it ends. A job that waits for a lock is V(waiting) and counts against O(limit).
    type: list
    elements: raw
    required: true
  limit:
    description:
      - At most this many jobs run at once on each host. V(0) means no limit.
    type: int
    default: 0
  timeout:
    description:
      - The async limit in seconds of jobs without their own C(async).
    type: int
    default: 3600
  wait:
    description:
      - The overall limit in seconds. When it passes, the running jobs are killed (state V(killed)) and the jobs not
        launched yet are reported as V(not_started). V(0) means no overall limit beyond the jobs' own limits.
      - The task's C(timeout) keyword (or C(TASK_TIMEOUT)), unlike this module's O(timeout), is not such a limit. The wait ends a little before it (a
        fifth of it, at least 1 and at most 5 seconds), the running jobs go on and are reported as V(running) with
        their job ids, the jobs not launched yet as V(not_started), and the task fails with C(timedout) and a C(msg)
        that says to wait for the rest with M(longrun.jobs.async_status) and O(longrun.jobs.async_status#module:jobs)
        set to the result. The records of the jobs that ended are kept, so that this wait reports them too;
        remove them afterwards with O(longrun.jobs.async_status#module:mode=cleanup).
    type: int
    default: 0
  fail_fast:
    description:
      - Stop at the first job that does not succeed. The running jobs are killed and the rest are not started.
    type: bool
    default: false
  grace:
    description:
      - Seconds between C(SIGTERM) and C(SIGKILL), at a job's limit and when jobs are killed.
    type: int
    default: 5
  detach:
    description:
      - Launch every job at once and return without waiting, as M(longrun.jobs.run) does with C(poll) set to V(0).
        Launching costs one remote command for all the jobs of a host, which makes it the fast way to start
        hundreds of jobs.
      - RV(results) then holds each job's C(ansible_job_id) and its state at the launch, usually V(running). Wait for
        the jobs with M(longrun.jobs.async_status), O(longrun.jobs.async_status#module:jobs) set to the registered
        result, and remove their records as with any background job.
      - The task fails only when a job could not be launched.
      - O(limit) must be V(0) or at least the number of jobs, and O(wait) and O(fail_fast) cannot be used.
    type: bool
    default: false
extends_documentation_fragment:
  - longrun.jobs.attributes
  - longrun.jobs.attributes.action
  - longrun.jobs.attributes.become
attributes:
  action:
    support: full
  async:
    support: none
    details: Each job already runs in the background under its own limit; the task itself waits for all of them.
  become:
    support: full
    details: The jobs run as the C(become) user and their files are in that user's async directory.
  check_mode:
    support: full
    details: The wrapped modules receive check mode and decide what to do, as with M(longrun.jobs.run).
  diff_mode:
    support: none
seealso:
  - module: longrun.jobs.run
  - module: longrun.jobs.async_status
"""

EXAMPLES = r"""
---
- name: Build both parts, at most two jobs at a time
  longrun.jobs.run_parallel:
    limit: 2
    jobs:
      - name: frontend
        ansible.builtin.command: /opt/app/build-frontend.sh
      - name: backend
        ansible.builtin.command: /opt/app/build-backend.sh
        async: 900
      - name: docs
        ansible.builtin.shell: make -C /opt/app/docs html > /tmp/docs.log 2>&1
  register: builds

- name: Show how long each took
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.state }} in {{ item.duration }} s"
  loop: "{{ builds.results }}"
  loop_control:
    label: "{{ item.name }}"

- name: Start every shard in one task, without waiting
  longrun.jobs.run_parallel:
    detach: true
    timeout: 7200
    jobs:
      - {name: shard-1, ansible.builtin.command: /opt/app/process-shard.sh 1}
      - {name: shard-2, ansible.builtin.command: /opt/app/process-shard.sh 2}
      - {name: shard-3, ansible.builtin.command: /opt/app/process-shard.sh 3}
  register: launched

- name: Wait for all of them in one call
  longrun.jobs.async_status:
    jobs: "{{ launched }}"
    wait: 7200
"""

RETURN = r"""
---
results:
  description: One entry per job, in the order of O(jobs).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The job's name.
      type: str
      returned: always
    ansible_job_id:
      description: The job id; V(null) for a job that was never launched.
      type: str
      returned: always
    state:
      description:
        - The job's state, as in the RV(longrun.jobs.async_status#module:job.state) of M(longrun.jobs.async_status),
          or V(not_started) for a job that was never launched (after O(fail_fast) or O(wait)).
        - With O(detach), the state at the launch, usually V(running).
      type: str
      returned: always
      choices: [running, succeeded, failed, timed_out, killed, lost, not_found, unreadable, not_started]
    reason:
      description: Why the job is not a success, as in M(longrun.jobs.async_status), or V(launch_failed).
      type: str
      returned: always
    started_at:
      description: When the job started, ISO 8601 in UTC.
      type: str
      returned: always
    ended_at:
      description: When the job ended, ISO 8601 in UTC.
      type: str
      returned: always
    duration:
      description: Seconds from start to end.
      type: float
      returned: always
    rc:
      description:
        - The module's own C(rc), such as the exit status of the command of M(ansible.builtin.command).
        - V(null) when the module returns none (M(ansible.builtin.uri), M(ansible.builtin.file) and most others),
          also when it failed.
      type: int
      returned: always
    exit_code:
      description:
        - The exit status of the module process, V(null) when it was ended by a signal or never started.
        - A module that fails exits with V(1) whatever went wrong.
      type: int
      returned: always
    msg:
      description: For a job that did not succeed, one sentence that says what happened.
      type: str
      returned: always
    result:
      description: The module result.
      type: dict
      returned: always
summary:
  description: A count per state plus C(total).
  returned: always
  type: dict
  sample: {"succeeded": 4, "failed": 1, "timed_out": 0, "killed": 0, "lost": 0, "not_found": 0, "unreadable": 0,
           "running": 0, "waiting": 0, "total": 5}
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
    - When a job did not succeed, a table of all the jobs; else a one-line summary.
    - With O(detach), how many jobs were launched, or which could not be.
  returned: always
  type: str
"""
