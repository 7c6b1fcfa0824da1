"""Command line shared by the Python SSH test clients (paramiko_client.py, asyncssh_client.py).

Each client connects to HOST:PORT as USER with one private key, trusts any host key (as
Rundeck, Ansible's paramiko connection with host_key_checking off, and Fabric's
AutoAddPolicy do), runs ONE operation, and exits like OpenSSH's ssh:

  exec CMD              remote stdout -> stdout, remote stderr -> stderr (bytes, unchanged),
                        exit code = the remote exit-status
  sftp-put LOCAL REMOTE / sftp-get REMOTE LOCAL
  scp-put LOCAL REMOTE  / scp-get REMOTE LOCAL
                        exit 0, or 1 with "<prog>: <op> failed: ..." on stderr

Exit 255 with "<prog>: cannot connect ..." when the connection or authentication fails,
and 255 with "<prog>: no exit-status ..." when the server closed the channel without one.
--env NAME=VALUE (repeatable) is sent as SSH "env" channel requests before exec.
--pty asks for a vt100 80x24 pty before exec (Ansible's paramiko connection does with become).
--keepalive SECONDS sends the library's keepalive global request that often (paramiko:
keepalive@lag.net without reply; AsyncSSH: keepalive@openssh.com, want-reply, gives up
after 3 unanswered).
--info FILE writes what the library negotiated (kex, host key, ciphers, MACs) as JSON.

Run them with Debian's /usr/bin/python3 (python3-paramiko, python3-asyncssh, python3-scp).
"""
import argparse
import json
import sys
import warnings

# Debian's cryptography 38 warns about Blowfish/CAST5/TripleDES on import: keep stderr
# for what the remote command writes.
warnings.filterwarnings("ignore")

EXIT_CONNECT = 255
EXIT_OP_FAILED = 1


def parse(prog: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="root")
    p.add_argument("--key", required=True, help="private key file (OpenSSH or PEM)")
    p.add_argument("--timeout", type=float, default=15.0, help="connect/auth timeout, seconds")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--info", metavar="FILE", help="write the negotiated algorithms here as JSON")
    p.add_argument("--pty", action="store_true", help="request a vt100 80x24 pty before exec")
    p.add_argument("--keepalive", type=float, default=0, metavar="SECONDS")
    p.add_argument("op", choices=["exec", "sftp-put", "sftp-get", "scp-put", "scp-get"])
    p.add_argument("args", nargs="+")
    a = p.parse_args()
    want = 1 if a.op == "exec" else 2
    if len(a.args) != want:
        p.error(f"{a.op} takes {want} argument(s), got {len(a.args)}")
    env = {}
    for item in a.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            p.error(f"--env wants NAME=VALUE, got {item!r}")
        env[name] = value
    a.env = env
    return a


def target(a: argparse.Namespace) -> str:
    return f"{a.user}@{a.host}:{a.port}"


def die(prog: str, code: int, message: str) -> "NoReturn":  # noqa: F821
    sys.stdout.flush()
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def write_info(path: str | None, info: dict) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(info, f)
            f.write("\n")


def out(stream, data: bytes) -> None:
    """Writes remote bytes through unchanged; a closed local pipe is not the remote's fault."""
    try:
        stream.write(data)
        stream.flush()
    except BrokenPipeError:
        pass
