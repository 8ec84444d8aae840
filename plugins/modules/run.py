#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run
short_description: Run any module as a supervised background job with a hard deadline
version_added: 0.1.0
description:
  - Wraps exactly one module and runs it under the task's own C(async:) and C(poll:) keywords, as a job
    supervised on the target by a process of its own, which the action starts in one remote command.
  - C(async) is a hard limit, enforced to the second. When it passes, the job and every descendant (also those that
    called C(setsid) or daemonized) get C(SIGTERM), then after O(grace) seconds C(SIGKILL).
  - With C(poll=0) the task returns at once (fire-and-forget). Check on the job later with M(longrun.jobs.async_status)
    or with stock M(ansible.builtin.async_status).
  - With C(poll) greater than V(0) the action waits by itself by long-polling the target, so the task returns within
    about a second of the job's end, not on the next poll tick. Connection errors during the wait are retried until
    the limit. Once the result is collected, the job's files are removed.
  - Without C(async) the module runs synchronously, as if it were not wrapped.
  - Every result carries a RV(job) dictionary. A job that ended in any failure state fails the task; C(job.msg)
    says what happened in one sentence, and RV(msg) is the module's own message when it gave one, as with stock.
  - The module's output is judged as ansible-core judges it. Text after its JSON result is dropped with core's
    warning; more JSON after it (a broad C(except) that swallowed C(exit_json)) fails the job.
  - The async directory comes from C(ansible_async_dir) or E(ANSIBLE_ASYNC_DIR) (default C(~/.ansible_async)) and is
    resolved on the target, as the user the job runs as (the C(become) user with C(become)).
  - A missing async directory is created C(0700). The mode of an existing one is never changed, and one that other
    users can write to (group- or world-writable, such as C(/tmp)) is refused.
  - C(async) can be at most V(3153600000) seconds (100 years); so can O(grace).
  - This is a docs-only module; the work is done by the action plugin of the same name.
author:
  - longrun.jobs maintainers (@longrun)
options:
  grace:
    description:
      - Seconds between C(SIGTERM) and C(SIGKILL) when the job reaches its C(async) limit.
      - V(0) sends C(SIGKILL) right after C(SIGTERM).
    type: int
    default: 5
  follow:
    description:
      - "Show the job's new output lines while the task waits for it (C(poll) greater than V(0)), as they are
        written, each as C([host] stdout: line) or C([host] stderr: line)."
      - The lines are shown every O(follow_interval) seconds, through Ansible's display like the progress line
        (on stdout with ansible-core's screen callbacks, on stderr with other stdout callbacks such as JSON ones).
        Each look is part of a wait window, which then lasts at most O(follow_interval); it is still one remote
        command per window, as without O(follow).
      - Per window, at most 16384 bytes per stream are shown; when more was written, the latest lines, after a
        line C(… N bytes skipped). A line still being written is shown once it ends (or when the job does).
      - Nothing is shown when the task has C(no_log).
      - The task's result is the same as without O(follow).
      - For a module other than M(ansible.builtin.command) and M(ansible.builtin.shell), the output is what its
        process writes to stdout and stderr while it runs.
      - Needs C(async) and C(poll) greater than V(0); for a job started with C(poll=0), use
        M(longrun.jobs.async_status) with O(longrun.jobs.async_status#module:wait) and
        O(longrun.jobs.async_status#module:follow).
    type: bool
    default: false
  follow_interval:
    description:
      - With O(follow=true), seconds between two looks at the output; the default is V(3), the least V(1).
    type: float
  lock:
    description:
      - Locks that the job's supervisor takes on the target before the module starts, and holds until the job ends,
        however it ends. They go with the supervisor's process, so a supervisor killed with C(SIGKILL) never leaves a
        stale lock.
      - A lock name (1 to 100 letters, digits and C(_ . @ + = -), starting with a letter, a digit or C(_)) or a list
        of them. Jobs that name the same lock in the same async directory run one at a time. A job with several
        locks takes them in sorted order, so that jobs with overlapping lists never deadlock.
      - The launch returns at once. Until it holds every lock, the job is in state V(waiting) and its RV(job) says
        C(waiting_for) (the lock, and the C(holder) job id and C(holder_pid) when known); with C(poll) greater than
        V(0) the task shows C(waiting for lock NAME (held by job JID)).
      - The C(async) limit counts from the job's start, once it holds its locks; the task (with C(poll)) waits for
        O(lock_timeout) more.
      - "Presets, reserved names for the package managers' own locks (run the task with C(become=true)):"
      - V(dpkg) also holds dpkg's frontend lock C(/var/lib/dpkg/lock-frontend) for the job's life, and the job runs
        with C(DPKG_FRONTEND_LOCKED=1), so C(dpkg) run by the job works, while any other C(dpkg) or C(apt) (such as a
        plain M(ansible.builtin.apt) task) waits for it or fails on it. C(apt) run by the job fails too, as apt does
        not honour that hand-over; use V(apt) for apt jobs.
      - V(apt) waits until dpkg's frontend lock is free and holds the longrun lock V(dpkg), so that longrun jobs with
        V(dpkg) or V(apt) never overlap; the job's apt then takes dpkg's lock itself. A plain apt task that starts
        in between is not kept out.
      - V(rpm) (also V(dnf) and V(yum)) waits until rpm's transaction lock (C(.rpm.lock) in rpm's database
        directory) is free and holds the longrun lock V(rpm), so that longrun rpm jobs never overlap; rpm hands its
        lock to no child, so holding it would block the job's own rpm, and a plain dnf task that starts in between
        is not kept out.
      - A preset on a host without its package manager, or run by a user who cannot open its lock file, refuses the
        launch with a sentence that says so.
      - The lock files are C(.locks/NAME) in the async directory (C(0700), files C(0600)); they are never removed,
        as a waiting job holds the very file.
      - Needs C(async).
    type: raw
  lock_timeout:
    description:
      - With O(lock), seconds the job waits for its locks at most. Then it ends V(failed) with C(job.reason)
        V(lock_timeout) and a C(job.msg) that names the busy lock and its holder; it never ran.
      - V(0) fails at once when a lock is busy. The default is the task's C(async) limit.
    type: int
  name:
    description:
      - A name for the job, unique in its async directory, which makes a re-run find the job instead of launching it
        again (see O(on_existing)). Needs C(async).
      - 1 to 100 letters, digits and C(_ . @ + = -), starting with a letter, digit or C(_), and not shaped like a job
        id (digits and dots, with or without a leading C(j)). Anything else (such as a path) is refused with one
        sentence.
      - The target claims the name atomically, so two runs that launch the same name at once start one job; the
        other run finds it as a re-run does.
      - M(longrun.jobs.async_status) accepts the name wherever it accepts a job id. The results carry the real job id
        in RV(ansible_job_id) and the name in C(job.name).
      - The name stands for its job until a wait (this task's with C(poll) above V(0), or
        M(longrun.jobs.async_status) by a run's wait) delivers the job's end. Then the name is free, and the next run
        launches the job again. So a re-run after an interruption (Ctrl-C, a killed controller, a lost connection)
        attaches to the job, and a re-run after a completed run runs it again. The collected job's record stays, for
        other runs waiting on it, until the next launch of the name removes it.
      - A job launched with C(poll=0) and never waited for keeps the name until its end is collected or
        M(longrun.jobs.async_status) O(longrun.jobs.async_status#module:mode=cleanup) removes it.
      - See C(docs/reruns-locks-interruption.md) in the collection.
    type: str
    version_added: 0.1.0
  on_existing:
    description:
      - What a launch of a named job (O(name)) does when a job of that name is running, waiting, or ended but its end
        was not collected yet. A name whose job is gone (collected, cleaned up) launches a new job whatever this says.
      - V(attach) launches nothing and takes that job as its own. With C(poll) above V(0) the task waits for it, and
        its result is that job's result, with RV(attached=true). With C(poll=0) it returns that job's
        RV(ansible_job_id) (C(changed=false), RV(attached=true)).
      - V(skip) launches nothing and returns at once, RV(skipped=true) and C(changed=false) with that job's
        RV(ansible_job_id), as a task skipped by a condition; Ansible counts it as skipped.
      - V(fail) fails the task with a sentence that names the job, its state and how to wait for it.
      - V(restart) kills the running job through its supervisor (C(SIGTERM), then C(SIGKILL) after its grace),
        removes its files and launches a new one.
    type: str
    choices: [attach, fail, restart, skip]
    default: attach
    version_added: 0.1.0
  on_controller_loss:
    description:
      - What happens to the job when no controller waits on it any more, because the run was interrupted (C(Ctrl-C),
        a killed C(ansible-playbook), a cancelled CI or AWX job) or lost its connection to the host.
      - V(keep) leaves the job running under its own C(async) limit, as stock C(async) does. Collect it later with
        M(longrun.jobs.async_status).
      - V(kill) gives the job a lease on the target that every window of the task's wait renews, and every
        M(longrun.jobs.async_status) status or output request that names the job (each window of its
        O(longrun.jobs.async_status#module:wait)). When no request renewed it for O(controller_timeout) seconds, the
        supervisor ends the job's process tree (C(SIGTERM), then C(SIGKILL) after O(grace) seconds), and the job is
        V(killed) with the reason V(controller_lost).
      - With V(kill) and C(poll) above V(0), a job whose controller dies in the middle of a wait window is killed at
        most C(poll) (at most 55) plus O(controller_timeout) seconds after that window began, plus O(grace) to end
        the tree. A connection to the host lost for longer than that kills the job too.
      - With V(kill) and C(poll=0), the job lives only as long as M(longrun.jobs.async_status) reads it at least every
        O(controller_timeout) seconds (a wait counts until its end); the first read must come within
        O(controller_timeout) seconds of the launch. Fire-and-forget jobs are never killed this way with V(keep).
    type: str
    choices: [keep, kill]
    default: keep
  controller_timeout:
    description:
      - With O(on_controller_loss=kill), the seconds a job outlives the end of the last wait window (or read) of its
        controller; V(15) when not set, the least V(1).
      - Refused with O(on_controller_loss=keep).
    type: int
notes:
  - Besides the options above, the arguments hold exactly one key that names a module, by
    FQCN or short name. Its value is that module's arguments, a free-form string or a dictionary, parsed as Ansible
    parses a task.
    A second module, an unknown module, no module or any other key is an error that names the allowed keys.
  - M(ansible.builtin.shell) runs as M(ansible.builtin.command) with the shell enabled, as core does.
  - A M(ansible.builtin.command) or M(ansible.builtin.shell) job runs on the collection's command executor; the
    supervisor runs the command itself, its stdout and stderr go to the job's files as they are written (kept
    after the end until the job's files are removed), and the result is the one the module would return, key for
    key. The job's RV(job) then says C(executor=command). In check mode, with options other than those of
    ansible-core's command module listed in its documentation, or with C(executable) without the shell, the job
    runs the module. Set the variable C(longrun_command_executor) to V(false) to always run the module.
  - The task's C(module_defaults) apply to the wrapped module as core applies them to a task that names it, the
    defaults of its action groups (C(group/...)), then its own, under the arguments given.
  - M(ansible.builtin.package), M(ansible.builtin.service) and M(ansible.builtin.dnf) (and C(ansible.builtin.yum),
    a redirect to it) pick the module that does the work, as their action plugins do, from C(use) (C(use_backend)
    for dnf), C(ansible_package_use) or the host's facts C(pkg_mgr) and C(service_mgr), gathered on the fly when
    missing. The job runs that module, with the C(module_defaults) of package or service and then of the backend.
  - Other modules that work through a controller-side action plugin (such as M(ansible.builtin.copy) or
    M(ansible.builtin.template)) cannot run as a job on the target and are refused.
  - The task's C(timeout) keyword (or C(TASK_TIMEOUT)) bounds the task, not the job. With C(poll) greater than V(0),
    the wait ends a little before the task timeout (a fifth of it, at least 1 and at most 5 seconds), and the task
    fails with RV(timedout), the job's RV(ansible_job_id) and RV(results_file), RV(finished=false) and a RV(msg) that
    says the job is still running and how to wait for it with M(longrun.jobs.async_status). The job goes on under its
    own C(async) limit. Should core's alarm still cut a remote command, the result is the same.
  - The job runs with C(TMPDIR) set to a private directory next to its record, which is removed when the job ends,
    however it ends. Processes that the job leaves running must not rely on files there.
  - As for any module, ansible-core refuses a result that holds output that is not valid UTF-8, unless
    C(MODULE_STRICT_UTF8_RESPONSE) is off; with it off, such bytes come back as surrogate escapes, as from
    M(ansible.builtin.command). A refused result is not lost. The task fails with the job's RV(ansible_job_id) and
    RV(results_file), and the record stays until it is read with the setting off or removed with
    M(longrun.jobs.async_status) O(longrun.jobs.async_status#module:mode=cleanup).
  - Transparent mode runs plain async tasks the same way without this wrapper. With the collection's
    C(transparent/action_plugins) directory first on the action plugin path (C(ANSIBLE_ACTION_PLUGINS)), a task
    with C(async) whose module has no action plugin of its own, or that is C(command:), C(ansible.legacy.command:),
    C(shell:), C(ansible.builtin.shell:) or C(uri:) without files to send, runs as a job as if it were wrapped,
    with O(grace=5). Use this module for
    another O(grace), for M(ansible.builtin.command) written as FQCN, for the modules with action plugins that it
    accepts, or where the playbook must not depend on configuration.
extends_documentation_fragment:
  - longrun.jobs.attributes
  - longrun.jobs.attributes.action
  - longrun.jobs.attributes.become
attributes:
  action:
    support: full
  async:
    support: full
  become:
    support: full
    details: The job runs as the C(become) user and its files are in that user's async directory.
  check_mode:
    support: full
    details: The wrapped module receives check mode and decides what to do; check mode alone never fails the task.
  diff_mode:
    support: none
seealso:
  - module: longrun.jobs.async_status
  - module: ansible.builtin.async_status
  - ref: playbooks_async
    description: Ansible's guide to asynchronous actions and polling.
  - name: Transparent mode
    description: Existing async tasks and ad hoc commands run as longrun jobs without edits.
    link: https://github.com/longrun/jobs/blob/main/docs/transparent-mode.md
  - name: Live output
    description: Following a job's output while the task waits for it.
    link: https://github.com/longrun/jobs/blob/main/docs/live-output.md
"""

EXAMPLES = r"""
---
- name: Run database backup, waiting for it by long-polling
  longrun.jobs.run:
    ansible.builtin.command: /opt/scripts/full-backup.sh
  async: 3600
  poll: 30
  register: backup_result

- name: Show how long it took
  ansible.builtin.debug:
    msg: "Backup {{ backup_result.job.state }} in {{ backup_result.job.duration }} s: {{ backup_result.stdout }}"

- name: Start a migration in the background, with 30 s between SIGTERM and SIGKILL at the limit
  longrun.jobs.run:
    ansible.builtin.shell: /opt/app/migrate.sh > /var/log/migrate.log 2>&1
    grace: 30
  async: 7200
  poll: 0
  register: migration

- name: Wait for the migration, returning the moment it ends
  longrun.jobs.async_status:
    jid: "{{ migration.ansible_job_id }}"
    wait: 7200

- name: Handle a timeout structurally
  block:
    - name: Build with a 10 minute limit
      longrun.jobs.run:
        ansible.builtin.command:
          cmd: make -j4
          chdir: /srv/build
      async: 600
      poll: 15
      register: build
  rescue:
    - name: Report why the build failed
      ansible.builtin.debug:
        msg: "{{ build.job.state }}: {{ build.msg }}"

- name: Run a long install, showing its output lines as they come
  longrun.jobs.run:
    ansible.builtin.shell: /opt/app/install.sh 2>&1
    follow: true
  async: 1800
  poll: 10

- name: Back up once; a re-run after an interruption waits for the same backup instead of starting another
  longrun.jobs.run:
    ansible.builtin.command: /opt/scripts/full-backup.sh
    name: nightly-backup
  async: 3600
  poll: 30

- name: Leave a running reindex alone, else start one
  longrun.jobs.run:
    ansible.builtin.command: /opt/app/reindex
    name: reindex
    on_existing: skip
  async: 7200
  poll: 0

- name: Migrate one database at a time, waiting at most 10 minutes for the lock
  longrun.jobs.run:
    ansible.builtin.command: /opt/app/migrate.sh
    lock: db-migrations
    lock_timeout: 600
  async: 3600
  poll: 15

- name: Install packages with dpkg while plain apt and dpkg tasks wait for the job
  longrun.jobs.run:
    ansible.builtin.command: dpkg -i /srv/debs/app_2.0_amd64.deb
    lock: dpkg
  async: 1800
  poll: 10
  become: true

- name: Run a load test that must not outlive an interrupted run (Ctrl-C, an AWX cancel)
  longrun.jobs.run:
    ansible.builtin.command: /opt/bench/load-test.sh
    on_controller_loss: kill
    controller_timeout: 30
  async: 3600
  poll: 10
"""

RETURN = r"""
---
ansible_job_id:
  description: The job id. Use it with M(longrun.jobs.async_status) or M(ansible.builtin.async_status).
  returned: when the task has C(async)
  type: str
  sample: j123456789.4242
started:
  description: V(true) once the job has been started.
  returned: when the task has C(async)
  type: bool
finished:
  description: V(false) with C(poll=0) or when the task timeout ended the wait; V(true) once the job has ended.
  returned: when the task has C(async)
  type: bool
results_file:
  description: Absolute path of the job's status record on the target.
  returned: with C(poll=0), and when the task did not wait for the job to its end (task timeout, refused result)
  type: str
  sample: /home/deploy/.ansible_async/j123456789.4242
job:
  description:
    - The job's state and timing, as described in RV(longrun.jobs.async_status#module:job).
    - Its C(state) is one of V(running), V(waiting) (for its O(lock), with C(poll=0)), V(succeeded), V(failed),
      V(timed_out), V(killed), V(lost), V(not_found) and V(unreadable).
    - Its C(progress) is what the job last reported on its progress channel (C(percent), C(msg), C(updated_at)), when
      it reported any; with C(poll) above 0 the line shown between waits includes it.
    - C(executor) is V(command) when the collection's command executor ran the command instead of the command module.
    - C(name) is the job's O(name), when it has one.
    - C(on_controller_loss) is V(kill) for a job launched with O(on_controller_loss=kill); a job that no controller
      waited on for O(controller_timeout) seconds is V(killed) with C(reason) V(controller_lost).
  returned: when the task has C(async)
  type: dict
  sample:
    state: timed_out
    pid: 4242
    started_at: "2026-11-23T19:55:01.123Z"
    ended_at: "2026-11-23T19:55:03.131Z"
    duration: 2.008
    reason: async_limit
    msg: job j123.456 timed out after 2 s (async limit) and was terminated with SIGTERM
timedout:
  description:
    - Set when the task timeout (the C(timeout) keyword or C(TASK_TIMEOUT)) ended the wait while the job still runs,
      as core sets it for a task that timed out; C(period) is the timeout in seconds. The C(timedout) test is true.
  returned: when the task timeout ended the wait
  type: dict
  sample:
    period: 60
attached:
  description:
    - V(true) when a launch with O(name) found a job of that name and took it as its own (O(on_existing=attach));
      the result is that job's.
  returned: when O(on_existing=attach) found a job
  type: bool
  sample: true
skipped:
  description: V(true) when a launch with O(name) found a job of that name and O(on_existing=skip).
  returned: when O(on_existing=skip) found a job
  type: bool
  sample: true
msg:
  description:
    - On failure, the module's own C(msg) when it returned one (as with stock C(async)), else the sentence of
      C(job.msg).
    - When the module returned no usable JSON, the sentence of C(job.msg) with the reason in core's words (such as
      C(No start of json char found)) and the last line of the module's stderr.
  returned: on failure
  type: str
  sample: job j123.456 timed out after 2 s (async limit) and was terminated with SIGTERM
stderr:
  description:
    - What the module process wrote to stderr (its last 1 MiB), when it wrote anything; it replaces the module's own
      C(stderr), as stock's wrapper does.
  returned: when the job has finished and the module process wrote to stderr
  type: str
data:
  description: The end of the module's stdout (last 4 KiB), when it returned no usable JSON; stock's name for it.
  returned: when C(job.reason) is V(module_crashed)
  type: str
module_stdout:
  description: The end of the module's stdout (last 4 KiB), when it returned no usable JSON; core's name for it.
  returned: when C(job.reason) is V(module_crashed)
  type: str
module_stderr:
  description: The end of the module's stderr (last 4 KiB), when it returned no usable JSON.
  returned: when C(job.reason) is V(module_crashed)
  type: str
cmd:
  description: The command the supervisor started, when the module returned no usable JSON.
  returned: when C(job.reason) is V(module_crashed)
  type: str
stdout:
  description: The wrapped module's own keys, such as C(stdout), C(rc) and C(changed), are at the top level.
  returned: when the job has finished and the module returns it
  type: str
"""
