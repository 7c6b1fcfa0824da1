#!/usr/bin/python3
"""Paramiko (Debian python3-paramiko 2.12) as Ansible's paramiko connection and Fabric
drive it: SSHClient, AutoAddPolicy, one key, no agent, no ~/.ssh keys. scp through
python3-scp's SCPClient over the same transport. Usage: see sshcli.py."""
import logging
import socket
import sys
import threading

import sshcli

PROG = "paramiko_client"
args = sshcli.parse(PROG)

import paramiko  # noqa: E402  (after sshcli silenced the import-time warnings)


class _KexRecorder(logging.Handler):
    """Paramiko keeps the chosen kex only in a DEBUG log line ("Kex: <name>"); the engine
    object is dropped once the exchange ends."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.kex: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Kex: ") and self.kex is None:
            self.kex = msg[5:].strip()


recorder = _KexRecorder()
plog = logging.getLogger("paramiko.transport")
plog.setLevel(logging.DEBUG)
plog.addHandler(recorder)
plog.propagate = False


def connect() -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            args.host,
            port=args.port,
            username=args.user,
            key_filename=args.key,
            look_for_keys=False,
            allow_agent=False,
            timeout=args.timeout,
            banner_timeout=args.timeout,
            auth_timeout=args.timeout,
        )
    except (OSError, socket.timeout, paramiko.SSHException, EOFError) as e:
        client.close()
        sshcli.die(PROG, sshcli.EXIT_CONNECT, f"cannot connect to {sshcli.target(args)}: {type(e).__name__}: {e}")
    t = client.get_transport()
    if args.keepalive:
        t.set_keepalive(int(max(1, args.keepalive)))
    sshcli.write_info(
        args.info,
        {
            "library": "paramiko",
            "version": paramiko.__version__,
            "serverVersion": t.remote_version,
            "kex": recorder.kex,
            "hostKey": t.host_key_type,
            "cipherC2S": t.local_cipher,
            "cipherS2C": t.remote_cipher,
            "macC2S": t.local_mac,
            "macS2C": t.remote_mac,
        },
    )
    return client


def run_exec(client: paramiko.SSHClient, command: str) -> int:
    # exec_command(environment=...) sends one "env" request per variable (want-reply 0),
    # then "exec"; like Ansible's paramiko connection it never sends EOF on stdin.
    # With --pty: pty-req (vt100 80x24) first, as Ansible's paramiko connection with become.
    stdin, stdout, stderr = client.exec_command(command, get_pty=args.pty, environment=args.env or None)
    chan = stdout.channel

    def pump(recv, stream) -> None:
        while True:
            data = recv(32768)
            if not data:
                return
            sshcli.out(stream, data)

    t_err = threading.Thread(target=pump, args=(chan.recv_stderr, sys.stderr.buffer), daemon=True)
    t_err.start()
    pump(chan.recv, sys.stdout.buffer)
    t_err.join()
    status = chan.recv_exit_status()  # -1: closed without exit-status
    if status < 0:
        sshcli.die(PROG, sshcli.EXIT_CONNECT, "no exit-status from the server (channel closed without one)")
    return status & 0xFF


def run_file_op(client: paramiko.SSHClient, op: str, src: str, dst: str) -> int:
    try:
        if op.startswith("sftp-"):
            sftp = client.open_sftp()
            try:
                if op == "sftp-put":
                    sftp.put(src, dst)
                else:
                    sftp.get(src, dst)
            finally:
                sftp.close()
        else:
            try:
                from scp import SCPClient, SCPException
            except ImportError:
                sshcli.die(PROG, sshcli.EXIT_OP_FAILED, "scp needs python3-scp (apt-get install python3-scp)")
            try:
                with SCPClient(client.get_transport(), socket_timeout=args.timeout) as scp:
                    if op == "scp-put":
                        scp.put(src, dst)
                    else:
                        scp.get(src, dst)
            except SCPException as e:
                raise OSError(str(e)) from e
    except (OSError, paramiko.SSHException) as e:
        sshcli.die(PROG, sshcli.EXIT_OP_FAILED, f"{op} failed: {type(e).__name__}: {e}")
    return 0


def main() -> int:
    client = connect()
    try:
        if args.op == "exec":
            return run_exec(client, args.args[0])
        return run_file_op(client, args.op, args.args[0], args.args[1])
    finally:
        client.close()


sys.exit(main())
