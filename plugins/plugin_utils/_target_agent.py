# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the target-side agent: our module_utils as one lean Python program.

A full module costs a large AnsiballZ build on the controller and, on the
target, the import of ansible.module_utils.basic (about half a second per
call on a small host). The agent is our stdlib-only module_utils bundled into
one program: one remote command per request, no tmp dir with pipelining, and
the async dir is resolved on the target by the user that runs the job.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import shlex
import typing as t

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.executor.interpreter_discovery import discover_interpreter
from ansible.utils.display import Display

from ansible_collections.longrun.jobs.plugins.module_utils import _protocol
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import holds_undecodable_text
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure
from ansible_collections.longrun.jobs.plugins.plugin_utils._agent_bundle import agent_program, agent_source

display = Display()

# Longest remote command, in bytes, once become and the shell have wrapped it: ssh hands it to the
# remote shell as one argument, and Linux caps one argument at 128 KiB with its final NUL
# (MAX_ARG_STRLEN). The local connection runs it with sh -c, under the same cap.
MAX_COMMAND_BYTES = 128 * 1024 - 1
DEFAULT_ASYNC_DIR = "~/.ansible_async"
REQUEST_FILE = "longrun_request"
# What a request leaves on the target when keep_remote_files is on: the agent as plain source, and the request.
KEPT_AGENT_FILE = "longrun_agent.py"
KEPT_REQUEST_FILE = "longrun_request.json"
# Seconds a handover dir may wait for the agent before its watcher removes it anyway.
HANDOVER_DEADLINE = 600

# The remote command: python reads the program from its first stdin line
# (pipelined) or from argv (small requests without pipelining).
_BOOT_STDIN = "import sys,zlib,base64;exec(zlib.decompress(base64.b64decode(sys.stdin.readline())))"
_BOOT_ARGV = "import sys,zlib,base64;p=sys.argv.pop(1);exec(zlib.decompress(base64.b64decode(p)))"


def target_python(action: t.Any, task_vars: dict) -> t.Tuple[str, t.Optional[dict]]:
    """The target's Python and, when it had to be discovered, the facts that record it."""
    configured = task_vars.get("ansible_python_interpreter")
    if configured:
        return str(action._templar.template(configured)), None
    discovered = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
    if discovered:
        return str(discovered), None
    mode = C.config.get_config_value("INTERPRETER_PYTHON", variables=task_vars)
    if mode and not str(mode).startswith("auto"):
        return str(mode), None
    found = discover_interpreter(action=action, interpreter_name="python", discovery_mode=mode, task_vars=task_vars)
    return found, {"discovered_interpreter_python": found}


def keep_remote_files(task_vars: dict) -> bool:
    """Whether core's keep_remote_files (ANSIBLE_KEEP_REMOTE_FILES) is on: the debug switch that keeps what ran."""
    return bool(C.config.get_config_value("DEFAULT_KEEP_REMOTE_FILES", variables=task_vars))


def async_dir_option(action: t.Any) -> str:
    """The async dir as configured (ansible_async_dir / ANSIBLE_ASYNC_DIR); ~ is expanded on the target."""
    return action.get_shell_option("async_dir", default=DEFAULT_ASYNC_DIR) or DEFAULT_ASYNC_DIR


class TargetAgent:
    """Sends requests to the agent on the target of one action plugin."""

    def __init__(self, action: t.Any, task_vars: dict, *, interpreter: t.Optional[str] = None) -> None:
        self.action = action
        self.task_vars = task_vars
        self.discovered_facts: t.Optional[dict] = None
        if interpreter is None:
            interpreter, self.discovered_facts = target_python(action, task_vars)
        self.interpreter = interpreter

    def request(self, request: t.Any) -> t.Any:
        """Serve one typed request (_protocol) on the target and return its typed reply.

        Raises AnsibleActionFail when it could not run or its reply does not follow the protocol.
        """
        reply = self._send(json.dumps(request.to_wire()))
        try:
            return _protocol.decode_reply(request, reply)
        except _protocol.ProtocolError as exc:
            raise action_failure(f"the longrun agent on the target sent a reply this controller cannot read: {exc}") from None

    def _send(self, request: str) -> dict:
        if keep_remote_files(self.task_vars):
            return self._run_kept(request)
        if self._stdin_allowed():
            return self._run_pipelined(request)
        command = self._argv_command(request)
        if command is not None:
            return self._execute(command)
        return self._run_from_file(request)

    def _run_kept(self, request: str) -> dict:
        """Run the request from files that stay on the target, to read them and run them again by hand.

        Each request gets a tmp dir of core's making (core keeps those when keep_remote_files is on), with
        core's permission fixes, so that a become user, also an unprivileged one, can read both files.
        """
        action = self.action
        shell = action._connection._shell
        tmpdir_before = shell.tmpdir
        try:
            tmpdir = action._make_tmp_path()
        finally:
            # The action's own tmp dir, or its absence, is the action's business: keep it as it was.
            shell.tmpdir = tmpdir_before
        program = shell.join_path(tmpdir, KEPT_AGENT_FILE)
        request_path = shell.join_path(tmpdir, KEPT_REQUEST_FILE)
        action._transfer_data(program, agent_source())
        action._transfer_data(request_path, request)
        action._fixup_perms2([tmpdir, program, request_path], execute=False)
        command = f"{self._kept_command(program)} < {shlex.quote(request_path)}"
        become_user = getattr(action._play_context, "become_user", None) if action._play_context.become else None
        as_user = f" as {become_user}" if become_user else ""
        display.v(
            f"longrun: keep_remote_files is on: the agent and the request stay in {tmpdir.rstrip('/')}; "
            f"to run the request again{as_user}: {command}",
            host=self._host(),
        )
        return self._execute(command)

    def _kept_command(self, program: str) -> str:
        """The command that runs the kept agent file, with the flags of _command."""
        environment = self.action._compute_environment_string()
        words = [shlex.quote(word) for word in shlex.split(self.interpreter)] + ["-I", "-S", shlex.quote(program)]
        return " ".join(([environment] if environment else []) + words)

    def _stdin_allowed(self) -> bool:
        """Whether the request may go over stdin, in the one remote command.

        Pipelining is off by default only because it conflicts with become methods
        that need a tty (sudo with requiretty); without become, stdin is safe on
        every connection that can pipeline.
        """
        if self.action._is_pipelining_enabled("new"):
            return True
        connection = self.action._connection
        return bool(getattr(connection, "has_pipelining", False)) and not self.action._play_context.become

    def _command(self, boot: str, *args: str) -> str:
        environment = self.action._compute_environment_string()
        words = [shlex.quote(word) for word in shlex.split(self.interpreter)]
        # -I: nothing from the login dir or PYTHON* variables may shadow the stdlib the agent uses.
        # -S: the agent is stdlib only, and skipping site (its .pth files) saves tens of ms per call.
        words += ["-I", "-S", "-c", shlex.quote(boot)] + [shlex.quote(arg) for arg in args]
        return " ".join(([environment] if environment else []) + words)

    def _run_pipelined(self, request: str) -> dict:
        command = self._command(_BOOT_STDIN)
        data = (agent_program() + "\n" + request).encode("utf-8")
        return self._execute(command, in_data=data)

    def _argv_command(self, request: str) -> t.Optional[str]:
        """The command that carries the program and the request as arguments, or None when it would be too long.

        What counts is the command as run: with the environment string, and wrapped by become and the shell.
        """
        if len(agent_program()) + len(request) * 4 // 3 > MAX_COMMAND_BYTES:
            display.vvv(f"longrun: the request ({len(request)} bytes) goes to the target in a file", host=self._host())
            return None
        encoded = base64.b64encode(request.encode("utf-8")).decode("ascii")
        command = self._command(_BOOT_ARGV, agent_program(), encoded)
        length = len(self._as_run(command).encode("utf-8"))
        where = "on the command line" if length <= MAX_COMMAND_BYTES else "in a file"
        display.vvv(
            f"longrun: the request ({len(request)} bytes) goes to the target {where}: "
            f"the command would be {length} bytes, of at most {MAX_COMMAND_BYTES}",
            host=self._host(),
        )
        return command if length <= MAX_COMMAND_BYTES else None

    def _as_run(self, command: str) -> str:
        """The command as _low_level_execute_command will run it: through become when core uses it, and the shell."""
        connection = self.action._connection
        if connection.become and self._becomes():
            # On a copy: building a become command arms the plugin's success marker, which the
            # connection would then wait for on the next command, also one that core runs without become.
            command = copy.copy(connection.become).build_become_command(command, connection._shell)
        if connection.allow_executable:
            command = connection._shell.append_command(command, "sleep 0")
            executable = self.action._play_context.executable
            if executable:
                command = f"{executable} -c {shlex.quote(command)}"
        return command

    def _becomes(self) -> bool:
        """Whether core wraps a command in become: not for the connection user itself, unless allowed."""
        remote_user = self.action._get_remote_user()
        become_user = self.action.get_become_option("become_user")
        return bool(C.BECOME_ALLOW_SAME_USER or become_user != remote_user or not (remote_user or become_user))

    def _host(self) -> str:
        return str(getattr(self.action._play_context, "remote_addr", None) or "")

    def _run_from_file(self, request: str) -> dict:
        """Large requests without stdin: a private dir, the request put there, one command that runs and removes it.

        That is three remote operations, also when an admin (root) connection becomes an
        unprivileged user: the dir and the empty request file are then created for that user
        before the transfer fills the file in place. Only a non-admin connection that becomes
        another unprivileged user takes core's longer way, with its permission fixes and a
        separate removal: without ACLs, nothing else hands that user a private file.
        """
        action = self.action
        shell = action._connection._shell
        data = agent_program() + "\n" + request
        if shell.tmpdir is None:
            if not action._is_become_unprivileged():
                tmpdir: t.Optional[str] = self._make_private_dir()
            else:
                tmpdir = self._make_handover_dir(
                    str(action.get_become_option("become_user")),
                    admin=action._get_remote_user() in action._get_admin_users(),
                )
            if tmpdir is not None:
                try:
                    path = shell.join_path(tmpdir, REQUEST_FILE)
                    action._transfer_data(path, data)
                    command = f"{self._command(_BOOT_STDIN)} < {shlex.quote(path)}"
                    # The dir goes in the same remote command: no extra round trip for its removal.
                    command += f"; rc=$?; rm -rf {shlex.quote(tmpdir)} >/dev/null 2>&1; exit $rc"
                    return self._execute(command)
                except Exception:
                    # The command did not run, or not to its end (a failed become, a lost connection):
                    # the request, secrets and all, must not stay on the target.
                    self._remove_dir(tmpdir)
                    raise
        tmpdir = shell.tmpdir or action._make_tmp_path()
        path = shell.join_path(tmpdir, REQUEST_FILE)
        action._transfer_data(path, data)
        action._fixup_perms2([tmpdir, path], execute=False)
        return self._execute(f"{self._command(_BOOT_STDIN)} < {shlex.quote(path)}")

    def _remove_dir(self, directory: str) -> None:
        """Remove a dir this agent made, as the connection user (who made it); a failure is only shown."""
        try:
            result = self.action._low_level_execute_command(f"rm -rf {shlex.quote(directory)}", sudoable=False)
            failed = result.get("rc") != 0
        except Exception:  # pylint: disable=broad-except
            failed = True
        if failed:
            display.warning(f"longrun: could not remove the request dir {directory} on the target; remove it by hand")

    def _make_private_dir(self) -> str:
        """Create a 0700 dir under remote_tmp as the connection user and learn its absolute path, in one command."""
        base = str(self.action.get_shell_option("remote_tmp", default="~/.ansible/tmp") or "~/.ansible/tmp")
        if base == "~" or base.startswith("~/"):
            # The tilde must stay unquoted for the remote shell to expand it.
            base_words = "~" + (("/" + shlex.quote(base[2:])) if base[2:] else "")
        else:
            base_words = shlex.quote(base)
        name = f"longrun-{secrets.token_hex(8)}"
        command = f'umask 77 && mkdir -p {base_words} && cd {base_words} && mkdir {name} && echo "$PWD/{name}"'
        result = self.action._low_level_execute_command(command, sudoable=False)
        path = _printed_path(result)
        if path is None:
            raise AnsibleActionFail(
                f"cannot create a temporary directory under {base} on the target "
                f"(rc={result.get('rc')}): {(result.get('stderr') or '').strip()[-500:] or 'no output'}; "
                "check remote_tmp (ansible_remote_tmp) and the free space there"
            )
        return path

    def _make_handover_dir(self, user: str, *, admin: bool) -> t.Optional[str]:
        """Create a private dir and an empty request file that ``user`` can read, in one command.

        The dir is made in a system tmp dir (the connection user's remote_tmp is usually out
        of the become user's reach), with a random name, 0700, and the file 0600. An admin
        connection gives both to ``user``. Any other connection grants ``user`` access with
        POSIX ACLs (setfacl) and leaves a detached watcher that removes the dir once the
        agent, run as ``user``, has removed the file; ``user`` cannot remove the dir itself.
        The transfer rewrites the existing file in place, so its owner, mode and ACL stay,
        whatever the transfer method.

        Returns None when that fails (no usable system tmp dir, chown refused, no setfacl
        or no ACL support), and the caller falls back to core's way.
        """
        system_dirs = self.action.get_shell_option("system_tmpdirs", default=["/var/tmp", "/tmp"]) or ["/tmp"]
        candidates = " ".join(shlex.quote(str(directory)) for directory in system_dirs)
        owner = shlex.quote(user)
        directory = f'"$d/longrun-{secrets.token_hex(8)}"'
        request = directory[:-1] + f'/{REQUEST_FILE}"'
        if admin:
            grant = f"chown {owner} {directory} {request}"
        else:
            # Gone after the agent has run, or after HANDOVER_DEADLINE seconds if it never does.
            watcher = (
                f"( i=0; while [ -e {request} ] && [ $i -lt {HANDOVER_DEADLINE} ]; do sleep 1; i=$((i+1)); done; "
                f"rm -rf {directory} ) </dev/null >/dev/null 2>&1 &"
            )
            grant = (
                f"setfacl -m u:{owner}:rwx {directory} && setfacl -m u:{owner}:r {request} && {{ {watcher} }}"
            )
        command = (
            f'umask 77 && for d in {candidates}; do [ -d "$d" ] && [ -w "$d" ] && break; d=; done && '
            f'[ -n "$d" ] && mkdir {directory} && : > {request} && '
            f"{{ {grant} || {{ rm -rf {directory}; false; }}; }} && echo {directory}"
        )
        return _printed_path(self.action._low_level_execute_command(command, sudoable=False))

    def _execute(self, command: str, *, in_data: t.Optional[bytes] = None) -> dict:
        result = self.action._low_level_execute_command(command, sudoable=True, in_data=in_data)
        reply = _parse_reply(result.get("stdout", ""))
        if reply is None:
            stderr = (result.get("stderr") or "").strip()[-2000:]
            raise AnsibleActionFail(
                f"the longrun agent did not answer on the target (rc={result.get('rc')}) using the interpreter "
                f"{self.interpreter!r}: {stderr or 'no output'}; check ansible_python_interpreter "
                "(Python 3.8 or later is needed)"
            )
        _refuse_invalid_utf8(reply)
        return reply


def _printed_path(result: dict) -> t.Optional[str]:
    """The absolute path a successful remote command printed last, or None."""
    lines = (result.get("stdout") or "").strip().splitlines()
    if result.get("rc") != 0 or not lines or not lines[-1].startswith("/"):
        return None
    return lines[-1].strip()


def strict_utf8_results() -> bool:
    """Whether core refuses module results with text that is not UTF-8 (MODULE_STRICT_UTF8_RESPONSE)."""
    try:
        return bool(C.config.get_config_value("MODULE_STRICT_UTF8_RESPONSE"))
    except Exception:  # pylint: disable=broad-except
        return False  # a core without the setting passes such text on


def _refuse_invalid_utf8(value: t.Any) -> None:
    """Refuse text that is not valid UTF-8, as core refuses it in any module's result (MODULE_STRICT_UTF8_RESPONSE)."""
    if strict_utf8_results() and holds_undecodable_text(value):
        jids = _jobs_holding_lone_surrogates(value)
        whose = f"the result of job{'s' if len(jids) > 1 else ''} {', '.join(jids)}" if jids else "the job's result"
        raise AnsibleActionFail(
            f"{whose} holds output that is not valid UTF-8, which ansible-core refuses in module results "
            "as it does for ansible.builtin.command: make the job print UTF-8, or set MODULE_STRICT_UTF8_RESPONSE "
            "(ANSIBLE_MODULE_STRICT_UTF8_RESPONSE=false) to accept it; the job's record stays in the async dir until "
            "its result is read that way or removed with longrun.jobs.async_status mode=cleanup"
        )


def _jobs_holding_lone_surrogates(value: t.Any) -> t.List[str]:
    """The ids of the job entries in a reply whose text is not valid UTF-8, in order, each once."""
    found: t.List[str] = []
    if isinstance(value, dict):
        jid = value.get("ansible_job_id")
        if isinstance(jid, str) and holds_undecodable_text(value):
            return [jid]
        items: t.Iterable[t.Any] = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return found
    for item in items:
        found.extend(jid for jid in _jobs_holding_lone_surrogates(item) if jid not in found)
    return found


def _parse_reply(stdout: str) -> t.Optional[dict]:
    """The agent's reply line, or None; raises AnsibleActionFail when it is of another protocol version."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and _protocol.VERSION_KEY in value:
                if value[_protocol.VERSION_KEY] != _protocol.PROTOCOL_VERSION:
                    raise AnsibleActionFail(_protocol.reply_version_error(value[_protocol.VERSION_KEY]))
                return value
    return None
