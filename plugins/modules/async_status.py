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
    C(until)/C(retries)/C(delay) loop.
  - The async directory comes from C(ansible_async_dir) or E(ANSIBLE_ASYNC_DIR) (default C(~/.ansible_async)),
    and C(~) is expanded on the target as the user the module runs as.
author:
  - longrun.jobs maintainers (@longrun)
options:
  jid:
    description:
      - The job id, the RV(longrun.jobs.run#module:ansible_job_id) of a registered async result.
      - Only job ids as produced by longrun and by stock Ansible are accepted. Anything else, such as a path,
        is refused and nothing is read or removed.
    type: str
    required: true
  mode:
    description:
      - V(status) reports the job.
      - V(cleanup) removes the files of a job that has ended. The record of a running job is never removed.
    type: str
    choices: [status, cleanup]
    default: status
  wait:
    description:
      - Seconds to wait on the target for the job to end. V(0) reports at once.
      - The call returns as soon as the job ends. Long waits are split into remote calls of at most about a
        minute, and the progress is shown after each.
      - Connection errors during the wait are retried until the time is up.
    type: float
    default: 0
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
    details: The module only reads, except O(mode=cleanup), which removes files in check mode too, as stock does.
  diff_mode:
    support: none
notes:
  - The state V(lost) means that the record says the job is running but its supervisor is gone (its pid is dead
    or belongs to another process, or the host rebooted). Stock Ansible would report such a job as running forever.
seealso:
  - module: ansible.builtin.async_status
  - module: longrun.jobs.run
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
"""

RETURN = r"""
---
ansible_job_id:
  description: The job id.
  returned: always
  type: str
  sample: j123456789.4242
started:
  description: Whether the job was started, as in M(ansible.builtin.async_status).
  returned: always
  type: bool
finished:
  description: Whether the job has ended, in any state.
  returned: always
  type: bool
results_file:
  description: Absolute path of the job's status record on the target.
  returned: O(mode=status)
  type: str
  sample: /home/deploy/.ansible_async/j123456789.4242
erased:
  description: Path of the record that was removed.
  returned: O(mode=cleanup) and the record was removed
  type: str
stdout:
  description: The module's stdout when the job has finished, as in the stock module; empty before.
  returned: always
  type: str
stderr:
  description: The module's stderr when the job has finished, as in the stock module; empty before.
  returned: always
  type: str
job:
  description: The job's state and timing.
  returned: always
  type: dict
  contains:
    state:
      description: The job's state.
      type: str
      returned: always
      choices: [running, succeeded, failed, timed_out, killed, lost, not_found, unreadable]
    pid:
      description: The pid of the job's supervisor on the target.
      type: int
      returned: when known
    started_at:
      description: When the job started, ISO 8601 in UTC.
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
          (a traceback, a crash, a signal), V(async_limit), V(kill_requested), V(supervisor_gone),
          V(host_rebooted), V(no_record) or V(bad_record).
        - V(running) when O(mode=cleanup) kept the record of a job that is still running.
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
msg:
  description: For a job that ended in a failure state, one sentence that says what happened.
  returned: on failure
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.longrun.jobs.plugins.module_utils import _specs
from ansible_collections.longrun.jobs.plugins.module_utils._status_request import RequestError, handle_request


def main() -> None:
    module = AnsibleModule(argument_spec=_specs.async_status_argument_spec(), supports_check_mode=True)
    # Run on its own (the action plugin normally serves requests), it finds the async dir as stock does.
    params = dict(module.params, _async_dir=os.environ.get("ANSIBLE_ASYNC_DIR") or "~/.ansible_async")
    try:
        result = handle_request(params)
    except RequestError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
