"""The stand-in `docker` client: hands one command to the fork server (cli_server.py).

    python -I -S docker_client.py --server SOCK --daemon-dir DIR [--world FILE] <docker args…>

This file is what a sandbox host's manifest names as its `docker`, run as a plain script
with `-I -S`: no site-packages, nothing of ours, only the C modules below. That is the
point of it: a real host's `docker` is a small Go client of a running daemon; ours costs a
Python start, so the least Python start (~15 CPU-ms) instead of the whole stand-in's
imports (~65). When no server takes the command (none listening, another user's socket: an
ssh host's login user), it becomes the full stand-in CLI in this same process (exec), so
the command still runs, as that user.

Protocol (cli_server.py's docstring): 8-byte length + NUL-joined [cwd, argc, argv…,
KEY=VALUE…] with fds 0, 1, 2 as SCM_RIGHTS; the server answers b"S" when a fork runs it,
then 4 bytes of status (exit code, or 256 + the signal that ended it).
"""

# _socket, not socket: the wrapper module imports enum, selectors and more, several times
# what the connection itself costs; the C module has everything this needs.
import _socket
import os
import sys


def forward(path: str, args: list[str]) -> int | None:
    """Run ``args`` (all the docker arguments, global flags included) in the server at
    ``path``: its exit status, or None when no server takes it and the caller must run it."""
    try:
        cwd = os.getcwd()
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    except OSError:
        return None
    try:
        try:
            conn.connect(path)
        except OSError:
            return None
        fields = [cwd, str(len(args)), *args, *(f"{k}={v}" for k, v in os.environ.items())]
        payload = b"\0".join(os.fsencode(f) for f in fields)
        message = len(payload).to_bytes(8, "big") + payload
        try:
            sent = conn.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                             _stdio_fds())])
            if sent < len(message):  # a stream may take a long request in parts
                conn.sendall(message[sent:])
            started = conn.recv(1)
        except OSError:
            return None
        if started != b"S":
            return None
        status = b""
        while len(status) < 4:
            chunk = conn.recv(4 - len(status))
            if not chunk:
                print("flip-standin-docker: the stand-in CLI server went away while it ran "
                      "this command; its outcome is unknown", file=sys.stderr)
                return 1
            status += chunk
    finally:
        conn.close()
    code = int.from_bytes(status, "big")
    if code > 255:  # the command died of a signal: so do we, as its process would have
        import signal

        signal.signal(code - 256, signal.SIG_DFL)
        os.kill(os.getpid(), code - 256)
        return 128 + code - 256
    return code


def _stdio_fds() -> bytes:
    """stdin, stdout, stderr as SCM_RIGHTS data (/dev/null in place of a closed one); C ints
    packed by hand, because importing `array` loads collections.abc."""
    packed = b""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            fd = os.open(os.devnull, os.O_RDWR)
        packed += fd.to_bytes(4, sys.byteorder, signed=True)
    return packed


GLOBAL_FLAGS = ("--daemon-dir", "--world", "--server")


def global_flags(args: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The stand-in's leading global flags (`--flag V` or `--flag=V`) and the docker
    arguments after them; None when the last flag has no value. The one parser of them:
    container_cli uses it too (this module imports nothing, so it can)."""
    flags: dict[str, str] = {}
    while args and args[0].startswith("--"):
        flag, eq, value = args[0].partition("=")
        if flag not in GLOBAL_FLAGS:
            break
        if not eq:
            if len(args) < 2:
                return None
            value, args = args[1], args[2:]
        else:
            args = args[1:]
        flags[flag] = value
    return flags, args


def server_flag(args: list[str]) -> str | None:
    """The value of `--server` among the stand-in's global flags, if given."""
    parsed = global_flags(args)
    return parsed[0].get("--server") if parsed is not None else None


def main() -> int:
    args = sys.argv[1:]
    path = server_flag(args)
    if path:
        code = forward(path, args)
        if code is not None:
            return code
    # No server took it: be the whole stand-in CLI, here (site and all, as its script is).
    os.execv(sys.executable, [sys.executable, "-m", "flipgitops.sandbox.flip.container_cli",
                              *args])
    return 127  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
