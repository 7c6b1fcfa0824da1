#!/usr/bin/python3
"""AsyncSSH (Debian python3-asyncssh 2.10.1): asyncssh.connect with known_hosts=None, one
client key, no agent, no ~/.ssh/config; exec through create_process (env= sends "env"
requests), SFTP through start_sftp_client, scp through asyncssh.scp. Usage: see sshcli.py."""
import asyncio
import sys

import sshcli

PROG = "asyncssh_client"
args = sshcli.parse(PROG)

import asyncssh  # noqa: E402  (after sshcli silenced the import-time warnings)
import asyncssh.connection  # noqa: E402

# AsyncSSH drops its kex object when the exchange ends and get_extra_info has no kex
# entry: note the name it hands to get_kex (the algorithm it actually runs).
_negotiated: dict = {}
_get_kex = asyncssh.connection.get_kex


def _recording_get_kex(conn, alg):
    _negotiated.setdefault("kex", alg.decode("ascii"))
    return _get_kex(conn, alg)


asyncssh.connection.get_kex = _recording_get_kex


async def connect() -> asyncssh.SSHClientConnection:
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                args.host,
                args.port,
                username=args.user,
                client_keys=[args.key],
                known_hosts=None,
                agent_path=None,
                config=[],
                login_timeout=args.timeout,
                keepalive_interval=args.keepalive,  # 0: none (the default)
            ),
            args.timeout,
        )
    except (OSError, asyncssh.Error, asyncio.TimeoutError) as e:
        sshcli.die(PROG, sshcli.EXIT_CONNECT, f"cannot connect to {sshcli.target(args)}: {type(e).__name__}: {e}")
    host_key = conn.get_server_host_key()
    sshcli.write_info(
        args.info,
        {
            "library": "asyncssh",
            "version": asyncssh.__version__,
            "serverVersion": conn.get_extra_info("server_version"),
            "kex": _negotiated.get("kex"),
            "hostKey": host_key.get_algorithm() if host_key else None,
            "cipherC2S": conn.get_extra_info("send_cipher"),
            "cipherS2C": conn.get_extra_info("recv_cipher"),
            "macC2S": conn.get_extra_info("send_mac"),
            "macS2C": conn.get_extra_info("recv_mac"),
        },
    )
    return conn


async def run_exec(conn: asyncssh.SSHClientConnection, command: str) -> int:
    # Like conn.run() without input: env requests, exec, no EOF on stdin; streamed.
    pty = {"term_type": "vt100", "term_size": (80, 24)} if args.pty else {}
    proc = await conn.create_process(command, env=args.env or (), encoding=None, **pty)

    async def pump(reader, stream) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            sshcli.out(stream, data)

    await asyncio.gather(pump(proc.stdout, sys.stdout.buffer), pump(proc.stderr, sys.stderr.buffer))
    done = await proc.wait(check=False)
    if done.exit_status is None or done.exit_status < 0:
        signal = f" (exit-signal {done.exit_signal[0]})" if done.exit_signal else ""
        sshcli.die(PROG, sshcli.EXIT_CONNECT, f"no exit-status from the server{signal}")
    return done.exit_status & 0xFF


async def run_file_op(conn: asyncssh.SSHClientConnection, op: str, src: str, dst: str) -> int:
    try:
        if op == "sftp-put" or op == "sftp-get":
            async with conn.start_sftp_client() as sftp:
                if op == "sftp-put":
                    await sftp.put(src, dst)
                else:
                    await sftp.get(src, dst)
        elif op == "scp-put":
            await asyncssh.scp(src, (conn, dst))
        else:
            await asyncssh.scp((conn, src), dst)
    except (OSError, asyncssh.Error) as e:
        sshcli.die(PROG, sshcli.EXIT_OP_FAILED, f"{op} failed: {type(e).__name__}: {e}")
    return 0


async def main() -> int:
    conn = await connect()
    try:
        if args.op == "exec":
            return await run_exec(conn, args.args[0])
        return await run_file_op(conn, args.op, args.args[0], args.args[1])
    finally:
        conn.close()
        await conn.wait_closed()


sys.exit(asyncio.run(main()))
