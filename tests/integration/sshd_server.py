"""A private sshd on 127.0.0.1 for tests and benchmarks: keys, config, start-up check, stop.

Free of pytest, so that ``benchmarks/bench.py`` can load it too.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

STOP_GRACE = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def generate_key(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "longrun-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


def write_sshd_config(workdir: Path, port: int) -> Path:
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {workdir / 'host_ed25519'}",
                # sshd reads these as the user logging in: the second lets test users other than the
                # runner log in with keys placed in their own home.
                f"AuthorizedKeysFile {workdir / 'authorized_keys'} .ssh/authorized_keys",
                f"PidFile {workdir / 'sshd.pid'}",
                "UsePAM no",
                # The keys live in a temp dir whose ownership sshd would otherwise reject.
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UseDNS no",
                # The scale benchmark (B6) opens one connection per inventory alias, up to 50 at once.
                "MaxStartups 200",
                "MaxSessions 200",
                "PrintMotd no",
                "PrintLastLog no",
                "X11Forwarding no",
                "LogLevel VERBOSE",
                # Ansible's "smart" transfer tries sftp first; internal-sftp needs no external binary.
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    return config


def wait_for_ssh_banner(process: subprocess.Popen[bytes], port: int, timeout: float) -> str | None:
    """Return None once sshd answers with a banner, else why it did not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"sshd exited with rc {process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return None
        except OSError:
            pass
        time.sleep(0.1)
    return f"sshd did not answer on 127.0.0.1:{port} within {timeout:g}s"


def stop_process(process: subprocess.Popen[bytes], *, stop_grace: float = STOP_GRACE) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=stop_grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
