"""The stand-in container CLI's fork server: `docker` forwards to `dockerd`, ours to this.

Every stand-in docker command used to be a whole Python process start plus the imports of
what it plays (the compose reader, ruamel.yaml, the daemon's records): ~65 CPU-ms, of which
the command's own work is a fraction. A host step runs about twenty commands, so on a
machine where ten "hosts" share two cores that start-up was the largest per-host cost of an
onboarding — a cost a real host does not have (its `docker` is a Go client talking to a
running daemon). This server imports everything once; each command is then a light client
(`container_cli --server SOCK …`, Python with nothing of ours imported) that hands the
server its argv, working directory, environment and stdin/stdout/stderr (SCM_RIGHTS), and a
fresh fork of the server runs the very same `container_cli.main` with them.

What makes the fork indistinguishable from a process of its own:
- it runs in its own session, with the client's cwd, environment (os.environ replaced) and
  file descriptors 0/1/2, and the server's sockets closed;
- its exit status is the client's (a signal death is re-raised on the client);
- if the client goes away first (killed with its process group, a module timeout), the fork
  is SIGKILLed like the process it stands for, not left finishing a half-watched command;
- only the server's own user, in the server's own namespaces, is served (0600 socket,
  SO_PEERCRED's uid and the peer's /proc/<pid>/ns checked): an ssh host's login user, or
  root on a host in a network namespace of its own, runs the command in its own process,
  as itself and where it is.

Protocol, one command per connection: the client sends an 8-byte length and a NUL-joined
payload [cwd, argc, argv…, KEY=VALUE…] with three fds; the server answers b"S" once the
fork runs (or closes without a byte: not served, the client runs the command itself), then
four bytes of status: the exit code, or 256 + the signal that ended it.
"""

from __future__ import annotations

import array
import contextlib
import gc
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from types import TracebackType

from flipgitops.gc_thresholds import collect_rarely
from flipgitops.sandbox.flip import docker_client, processes

MODULE = "flipgitops.sandbox.flip.cli_server"
_MAX_PAYLOAD = 16 << 20
_FDS = 3


def decode_request(payload: bytes) -> tuple[str, list[str], dict[str, str]]:
    """(cwd, argv, environment) from the client's payload; ValueError when malformed."""
    parts = [os.fsdecode(p) for p in payload.split(b"\0")]
    if len(parts) < 2 or not parts[1].isdigit() or len(parts) < 2 + int(parts[1]):
        raise ValueError("malformed stand-in CLI request")
    argc = int(parts[1])
    env: dict[str, str] = {}
    for entry in parts[2 + argc:]:
        key, eq, value = entry.partition("=")
        if eq:
            env[key] = value
    return parts[0], parts[2:2 + argc], env


def _preload() -> None:
    """Import what any command may use, once, so that no fork pays for it."""
    import secrets  # noqa: F401  (daemon's ids)
    import shutil  # noqa: F401
    import urllib.request  # noqa: F401  (world.resolve)

    import ruamel.yaml.error  # noqa: F401  (compose files)

    from flipgitops.sandbox.flip import (  # noqa: F401
        compose,
        compose_commands,
        compose_up,
        container_cli,
        engine_commands,
        trust_api,
    )


class _Server:
    def __init__(self, path: str) -> None:
        self.path = path
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wake_r, self.wake_w = socket.socketpair()
        # pid -> (client connection, pidfd)
        self.running: dict[int, tuple[socket.socket, int]] = {}
        self.stopping = False

    # -- setup and the loop -----------------------------------------------------------------

    def bind(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        old = os.umask(0o177)  # the socket is 0600: only our own user may connect
        try:
            self.listener.bind(self.path)
        finally:
            os.umask(old)
        self.listener.listen(128)
        self.sel.register(self.listener, selectors.EVENT_READ, ("accept", 0))
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno())
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", 0))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def loop(self) -> None:
        while not self.stopping:
            for key, _ in self.sel.select(timeout=1.0):
                kind, pid = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "exit":
                    self._finished(pid)
                elif kind == "client":
                    self._client_readable(pid)
                else:
                    with contextlib.suppress(BlockingIOError):
                        self.wake_r.recv(4096)

    def close(self) -> None:
        for pid, (conn, pidfd) in list(self.running.items()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            conn.close()
            os.close(pidfd)
        self.running.clear()
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    # -- one command --------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            fds, (cwd, argv, env) = self._read_request(conn)
        except (OSError, ValueError):
            conn.close()  # not served: the client runs the command itself
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child leaves through os._exit
            self._child(conn, fds, cwd, argv, env)
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):  # a client that left: its fork is killed below
            conn.sendall(b"S")
        pidfd = os.pidfd_open(pid)
        self.running[pid] = (conn, pidfd)
        self.sel.register(pidfd, selectors.EVENT_READ, ("exit", pid))
        self.sel.register(conn, selectors.EVENT_READ, ("client", pid))

    def _read_request(self, conn: socket.socket
                      ) -> tuple[list[int], tuple[str, list[str], dict[str, str]]]:
        """The client's fds and (cwd, argv, environment); ValueError (fds closed) when it is
        not served: another uid or namespace, or a malformed request."""
        conn.settimeout(10.0)
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        peer = int.from_bytes(creds[0:4], sys.byteorder)
        uid = int.from_bytes(creds[4:8], sys.byteorder)
        data, ancdata, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(_FDS * 4))
        fds = array.array("i")
        for level, kind, blob in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(blob[:len(blob) - len(blob) % fds.itemsize])
        received = list(fds)
        try:
            if uid != os.getuid() or not _same_namespaces(peer):
                raise ValueError("not this server's user or namespaces")
            if len(received) != _FDS or len(data) < 8:
                raise ValueError("malformed stand-in CLI request")
            size = int.from_bytes(data[:8], "big")
            if size > _MAX_PAYLOAD:
                raise ValueError("stand-in CLI request too large")
            payload = bytearray(data[8:])
            while len(payload) < size:
                chunk = conn.recv(min(1 << 20, size - len(payload)))
                if not chunk:
                    raise ValueError("stand-in CLI request cut short")
                payload += chunk
            return received, decode_request(bytes(payload))
        except (OSError, ValueError):
            for fd in received:
                os.close(fd)
            raise

    def _child(self, conn: socket.socket, fds: list[int], cwd: str, argv: list[str],
               env: dict[str, str]) -> None:  # pragma: no cover - runs in the fork
        code = 1
        try:
            os.setsid()
            # Undo the server's own handlers only: SIGPIPE stays ignored, as in any Python
            # process, so a gone reader is a BrokenPipeError the CLI handles, not a death.
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for other, pidfd in self.running.values():
                other.close()
                os.close(pidfd)
            self.sel.close()
            self.listener.close()
            self.wake_r.close()
            self.wake_w.close()
            conn.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            sys.argv = ["flip-standin-docker", *argv]
            from flipgitops.sandbox.flip import container_cli

            code = container_cli.main(argv, env, forward=False)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
        except BaseException:  # what an uncaught exception does to a process: trace, 1
            traceback.print_exc()
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code & 0xFF)

    def _finished(self, pid: int) -> None:
        conn, pidfd = self.running.pop(pid)
        self.sel.unregister(pidfd)
        with contextlib.suppress(KeyError):  # already unregistered if the client left
            self.sel.unregister(conn)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        code = 256 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        with contextlib.suppress(OSError):
            conn.sendall(code.to_bytes(4, "big"))
        conn.close()

    def _client_readable(self, pid: int) -> None:
        conn, _ = self.running[pid]
        try:
            data = conn.recv(1)
        except OSError:
            data = b""
        if not data:  # the client is gone: its command dies with it, as a process would
            self.sel.unregister(conn)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


_NAMESPACES = ("net", "mnt", "pid", "uts")


def _same_namespaces(pid: int) -> bool:
    """True when the peer lives in our network, mount, pid and uts namespaces. A fork runs
    where the server is: a client on a host in a network namespace of its own (the ssh
    hosts) must run its command there, so it is not served."""
    try:
        return all(os.stat(f"/proc/{pid}/ns/{ns}").st_ino == os.stat(f"/proc/self/ns/{ns}").st_ino
                   for ns in _NAMESPACES)
    except OSError:
        return False


def serve(path: str) -> int:
    _preload()
    # What the forks inherit stays shared: a collection in a fork writes to the header of
    # every object it walks, copying the server's pages one by one (gc.freeze's docs), and
    # a command is too short to need one (flipgitops/gc_thresholds.py).
    gc.freeze()
    collect_rarely()
    server = _Server(path)
    server.bind()
    print("ready", flush=True)
    try:
        server.loop()
    finally:
        server.close()
    return 0


class CliServer:
    """Runs the fork server as a subprocess for one sandbox; `socket` is its address.

    The socket lives in a short private directory of its own: a unix socket's path is
    limited to 107 bytes, and a test's tmp_path alone can be longer than that."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fsd-", dir="/tmp"))
        self.socket = self._dir / "cli.sock"
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> CliServer:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, str(self.socket)], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if line.strip() != "ready":
            self.__exit__(None, None, None)
            raise RuntimeError(f"the stand-in CLI server did not start: {line!r}")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc = self._proc
        if proc is not None:
            processes.stop_child(proc, grace=10)
            if proc.stdout is not None:
                proc.stdout.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        with contextlib.suppress(OSError):
            self._dir.rmdir()

    def client_command(self) -> list[str]:
        """A host's `docker` through this server, before its --daemon-dir/--world flags:
        the thin client (docker_client.py) run with no site-packages."""
        return [sys.executable, "-I", "-S", docker_client.__file__, "--server",
                str(self.socket)]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def cpu_seconds(self) -> float:
        """CPU the server and its finished forks used so far (for benchmarks: the commands'
        work is no longer in their caller's process tree)."""
        return processes.cpu_seconds(self._proc.pid) if self._proc is not None else 0.0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(f"usage: python -m {MODULE} SOCKET", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(sys.argv[1]))
