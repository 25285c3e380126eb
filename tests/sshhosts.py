"""Trust hosts reached over real SSH with become: one network namespace, sshd and login user
per host (docs/architecture.md §8: trust hosts over real SSH: sshd in network namespaces made
by the tests (`ip netns`, veth, addresses of those namespaces only), with become).

Each host gets
- a namespace `fgtest-<run>-<i>` with loopback up and one end of a veth pair; the pair has a
  private /30 (`10.231.<k>.1` in the root namespace, `10.231.<k>.2` in the namespace), `k`
  free on this machine at creation time (a lock file serialises concurrent test sessions);
- `sshd -D` inside the namespace, listening on the namespace address only, with a host key
  generated for the run (its public half goes into a known_hosts file the controller uses, so
  host-key checking stays strict);
- a non-root login user `fgtrust<i>-<run>` with an ed25519 key generated in memory (only the
  public half is ever on disk) and a password sudo asks for (`Defaults:<user> !lecture,
  timestamp_timeout=0`, no NOPASSWD), so become really needs `host.become_password`.

The namespaces share this machine's filesystem and process table: the stand-in container CLI
and its trust-api processes run inside a namespace but in the same directories. Everything
lives under one 0755 directory in /tmp (the login users must reach their homes and flip
roots; pytest's own tmp dirs are 0700). `close()` removes it all even after a failure, and
`leftovers()` says what is still there (a test asserts nothing is).

Nothing here is flipgitops: it stands for the machines an operator would be given.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = "/usr/sbin/sshd"
PREFIX = "fgtest-"
SUBNET = "10.231"
SUDOERS_DIR = Path("/etc/sudoers.d")
LOCK_FILE = Path(tempfile.gettempdir()) / "fgtest-netns.lock"
READY_SECONDS = 15.0
NUL = b"\0"


class SshHostsError(RuntimeError):
    """A host could not be set up; the message names the command and its error."""


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the SSH tests where they cannot run, except in CI, which must run them."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the SSH trust-host tests must run, but {reason}")
    pytest.skip(reason)


def unavailable() -> str | None:
    """Why this machine cannot make SSH trust hosts (None when it can)."""
    if os.geteuid() != 0:
        return "network namespaces, sshd and login users need root (not running as root)"
    for tool in ("ip", "useradd", "userdel", "chpasswd", "visudo", "sudo"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install -y iproute2 openssh-server sudo)"
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} is missing (apt-get install -y openssh-server)"
    probe = f"{PREFIX}probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=stdin, timeout=60)
    if check and proc.returncode != 0:
        raise SshHostsError(f"{' '.join(argv)} failed ({proc.returncode}): "
                            f"{proc.stderr.strip()[-400:]}")
    return proc


@dataclass
class SshHost:
    """One trust host. `private_key` and `sudo_password` are the test's secrets."""

    index: int
    netns: str
    veth: str  # the root-namespace end (the other end is `<veth>n` inside the namespace)
    gateway: str  # root-namespace side of the /30
    address: str  # the namespace side, where sshd listens
    user: str
    home: Path
    private_key: str = field(repr=False)
    public_key: str
    sudo_password: str = field(repr=False)
    host_key_public: str
    sshd: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def key_env(self) -> str:
        return f"TRUST_{self.index}_SSH_KEY"

    @property
    def sudo_env(self) -> str:
        return f"TRUST_{self.index}_SUDO"

    def manifest_host(self) -> dict[str, Any]:
        """The manifest's `host` fields for this machine (references, never the values)."""
        return {"connection": "ssh", "address": self.address, "user": self.user,
                "ssh_key": f"env:{self.key_env}", "become_password": f"env:{self.sudo_env}"}

    def pids(self) -> list[int]:
        """Every process running inside this host's namespace."""
        proc = _run(["ip", "netns", "pids", self.netns], check=False)
        return [int(p) for p in proc.stdout.split() if p.isdigit()]


class SshHosts:
    """`count` SSH trust hosts; use as a context manager (or call `close()`)."""

    def __init__(self, count: int, *, base: Path | None = None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.count = count
        self.run_id = secrets.token_hex(3)
        self.base = base or Path(tempfile.mkdtemp(prefix=f"{PREFIX}{self.run_id}-",
                                                  dir=tempfile.gettempdir()))
        self.hosts: list[SshHost] = []
        self._sudoers: list[Path] = []
        self._created_run_sshd = False

    # -- where things are --------------------------------------------------------------------

    @property
    def hosts_root(self) -> Path:
        """Where the sandbox puts each host's flip_root and container-CLI state."""
        return self.base / "hosts"

    @property
    def controller_home(self) -> Path:
        """HOME of the flipgitops process: its ~/.ssh/known_hosts holds the host keys."""
        return self.base / "controller"

    @property
    def known_hosts(self) -> Path:
        return self.controller_home / ".ssh" / "known_hosts"

    @property
    def hub_address(self) -> str:
        """The root-namespace address every namespace can reach (the stand-in hub binds it)."""
        return self.hosts[0].gateway

    @property
    def env(self) -> dict[str, str]:
        """What the operator's shell holds for flipgitops: the references' values and HOME."""
        out = {"HOME": str(self.controller_home)}
        for host in self.hosts:
            out[host.key_env] = host.private_key
            out[host.sudo_env] = host.sudo_password
        return out

    @property
    def secrets(self) -> list[str]:
        """Values that must never appear in output, artifacts, argv or files."""
        found: list[str] = []
        # Every OpenSSH ed25519 key file begins with the same base64 line (the format's
        # header): only lines another key does not share are this key's.
        shared = set(_private_key().splitlines())
        for host in self.hosts:
            found.append(host.sudo_password)
            body = [line for line in host.private_key.splitlines()
                    if line and not line.startswith("-----")]
            found.append("".join(body))
            found.extend(line for line in body if len(line) >= 40 and line not in shared)
        return found

    def manifest_hosts(self, trusts: Sequence[str]) -> dict[str, dict[str, Any]]:
        """trust name -> manifest host fields, the i-th trust on the i-th host."""
        if len(trusts) > len(self.hosts):
            raise ValueError(f"{len(trusts)} trusts but only {len(self.hosts)} hosts")
        return {name: host.manifest_host() for name, host in zip(trusts, self.hosts,
                                                                 strict=False)}

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> SshHosts:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        os.chmod(self.base, 0o755)
        for sub in ("home", "sshd", "hosts"):
            (self.base / sub).mkdir(mode=0o755, exist_ok=True)
        (self.known_hosts.parent).mkdir(mode=0o700, parents=True, exist_ok=True)
        if not Path("/run/sshd").is_dir():  # sshd's privilege-separation directory
            Path("/run/sshd").mkdir(mode=0o755, parents=True)
        with _locked():
            used = _used_subnets()
            free = (k for k in range(1, 255) if k not in used)
            for i in range(1, self.count + 1):
                self._make_host(i, next(free))
        for host in self.hosts:
            self._start_sshd(host)
        self.known_hosts.write_text("".join(f"{h.address} {h.host_key_public}\n"
                                            for h in self.hosts))
        for host in self.hosts:
            _wait_port(host.address, 22, host)

    def _make_host(self, i: int, k: int) -> None:
        netns = f"{PREFIX}{self.run_id}-{i}"
        veth = f"fg{self.run_id}{i}"
        gateway, address = f"{SUBNET}.{k}.1", f"{SUBNET}.{k}.2"
        user = f"fgtrust{i}-{self.run_id}"
        home = self.base / "home" / user
        private = _private_key()
        public = serialization.load_ssh_private_key(private.encode(), None).public_key(
        ).public_bytes(serialization.Encoding.OpenSSH,
                       serialization.PublicFormat.OpenSSH).decode()
        host = SshHost(index=i, netns=netns, veth=veth, gateway=gateway, address=address,
                       user=user, home=home, private_key=private, public_key=public,
                       sudo_password=secrets.token_urlsafe(18), host_key_public="")
        self.hosts.append(host)  # registered before anything exists, so close() finds it
        _run(["ip", "netns", "add", netns])
        _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}n"])
        _run(["ip", "link", "set", f"{veth}n", "netns", netns])
        _run(["ip", "addr", "add", f"{gateway}/30", "dev", veth])
        _run(["ip", "link", "set", veth, "up"])
        _run(["ip", "-n", netns, "addr", "add", f"{address}/30", "dev", f"{veth}n"])
        _run(["ip", "-n", netns, "link", "set", f"{veth}n", "up"])
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        if i > 1:  # the hub listens on host 1's gateway: one /32 route, no default route
            first = self.hosts[0].gateway
            _run(["ip", "-n", netns, "route", "add", f"{first}/32", "via", gateway])
        _run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
              "--user-group", user])
        _run(["chpasswd"], stdin=f"{user}:{host.sudo_password}\n")
        sudoers = SUDOERS_DIR / f"{PREFIX}{user}"
        text = (f"Defaults:{user} !lecture, timestamp_timeout=0\n"
                f"{user} ALL=(ALL:ALL) ALL\n")
        staged = self.base / "sshd" / f"sudoers-{user}"
        staged.write_text(text)
        _run(["visudo", "-cqf", str(staged)])
        staged.unlink()
        self._sudoers.append(sudoers)
        fd = os.open(sudoers, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)

    def _start_sshd(self, host: SshHost) -> None:
        d = self.base / "sshd" / str(host.index)
        d.mkdir(mode=0o700)
        hostkey = d / "ssh_host_ed25519_key"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.netns, "-f",
              str(hostkey)])
        host.host_key_public = " ".join(
            (d / "ssh_host_ed25519_key.pub").read_text().split()[:2])
        keys = host.home / ".ssh" / "authorized_keys"
        keys.parent.mkdir(mode=0o700, exist_ok=True)
        keys.write_text(host.public_key + "\n")
        keys.chmod(0o600)
        pw = _run(["id", "-u", host.user]).stdout.strip(), _run(["id", "-g", host.user]).stdout
        for path in (keys.parent, keys):
            os.chown(path, int(pw[0]), int(pw[1].strip()))
        config = d / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {host.address}:22",
            f"HostKey {hostkey}",
            f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {keys}",
            f"AllowUsers {host.user}",
            "UsePAM no",
            "StrictModes no",  # the files live under /tmp (world-writable, sticky)
            "PermitRootLogin no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "UseDNS no",
            "MaxStartups 100:30:200",
            "MaxSessions 50",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
        ]) + "\n")
        log = open(d / "sshd.log", "wb")  # noqa: SIM115 - sshd holds it while it runs
        try:
            host.sshd = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, SSHD, "-D", "-f", str(config),
                 "-h", str(hostkey), "-E", str(d / "sshd.log")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()

    def close(self) -> None:
        """Kill everything in the namespaces, then remove them, the users and the files.
        Each step runs even when an earlier one failed."""
        errors: list[str] = []
        for host in self.hosts:
            for step in (self._stop_processes, _drop_netns, _drop_user):
                try:
                    step(host)
                except Exception as exc:  # keep tearing down
                    errors.append(f"{host.netns}: {exc}")
        for path in self._sudoers:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        shutil.rmtree(self.base, ignore_errors=True)
        if errors:
            raise SshHostsError("teardown: " + "; ".join(errors))

    def _stop_processes(self, host: SshHost) -> None:
        if host.sshd is not None and host.sshd.poll() is None:
            host.sshd.terminate()
            try:
                host.sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                host.sshd.kill()
                host.sshd.wait(timeout=5)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = host.pids() if _netns_exists(host.netns) else []
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline:
                pids = [p for p in pids if _alive(p)]
                time.sleep(0.05)

    # -- what is left ------------------------------------------------------------------------

    def leftovers(self) -> list[str]:
        """Anything of this run still on the machine (empty after close())."""
        left: list[str] = []
        namespaces = _run(["ip", "netns", "list"], check=False).stdout
        left += [f"netns {n}" for n in re.findall(rf"^({PREFIX}{self.run_id}-\d+)",
                                                  namespaces, re.M)]
        links = _run(["ip", "-o", "link", "show"], check=False).stdout
        left += [f"link {n}" for n in re.findall(rf"\d+: (fg{self.run_id}\d+n?)[@:]", links)]
        passwd = Path("/etc/passwd").read_text()
        left += [f"user {u}" for u in re.findall(rf"^(fgtrust\d+-{self.run_id}):", passwd,
                                                  re.M)]
        left += [f"sudoers {p}" for p in SUDOERS_DIR.glob(f"{PREFIX}*-{self.run_id}")]
        left += [f"process {h.sshd.pid} (sshd of {h.netns})" for h in self.hosts
                 if h.sshd is not None and h.sshd.poll() is None]
        left += [f"process {pid} ({_comm(pid)})" for pid in _pids_under(self.base)]
        if self.base.exists():
            left.append(f"dir {self.base}")
        return left


# --- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _used_subnets() -> set[int]:
    out = _run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
    return {int(k) for k in re.findall(rf"inet {re.escape(SUBNET)}\.(\d+)\.", out)}


def _netns_exists(name: str) -> bool:
    return name in _run(["ip", "netns", "list"], check=False).stdout.split()


def _drop_netns(host: SshHost) -> None:
    if _netns_exists(host.netns):
        _run(["ip", "netns", "del", host.netns])
    # Deleting the namespace destroys its veth end and so the pair (asynchronously).
    deadline = time.monotonic() + 5
    while _link_exists(host.veth) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _link_exists(host.veth):
        _run(["ip", "link", "del", host.veth], check=False)
        if _link_exists(host.veth):
            raise SshHostsError(f"the veth {host.veth} is still there")


def _link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", name], check=False).returncode == 0


def _drop_user(host: SshHost) -> None:
    if f"\n{host.user}:" in "\n" + Path("/etc/passwd").read_text():
        _run(["userdel", "--force", "--remove", host.user], check=False)
        if f"\n{host.user}:" in "\n" + Path("/etc/passwd").read_text():
            raise SshHostsError(f"userdel {host.user} left the user in /etc/passwd")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _private_key() -> str:
    """A new ed25519 key in OpenSSH's format, made in memory (never written to a file)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()).decode()


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _pids_under(base: Path) -> list[int]:
    """Live processes whose argv names a path under base (sshd, a stand-in trust-api)."""
    found: list[int] = []
    needle = str(base).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in argv and _alive(int(entry)):
            found.append(int(entry))
    return found


def _wait_port(address: str, port: int, host: SshHost) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        if host.sshd is not None and host.sshd.poll() is not None:
            raise SshHostsError(f"sshd in {host.netns} exited ({host.sshd.returncode})")
        if time.monotonic() >= deadline:
            raise SshHostsError(f"sshd in {host.netns} did not listen on {address}:{port}")
        time.sleep(0.05)


def argv_of_all() -> Mapping[int, bytes]:
    """Every process's argv right now (a sample for the no-secret-in-argv checks)."""
    out: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                out[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes()
    return out


# --- looking for secrets ---------------------------------------------------------------------


def fingerprint(secret: str) -> str:
    """How a test names a secret it found (never the value)."""
    import hashlib

    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def secrets_in(data: bytes, secrets: Sequence[str]) -> list[str]:
    """Fingerprints of the secrets `data` holds."""
    return [fingerprint(s) for s in secrets if s and s.encode() in data]


def scan_tree(root: Path, secrets: Sequence[str], *, skip: Sequence[Path] = (),
              max_bytes: int = 32 * 1024 * 1024) -> list[str]:
    """`<path>: <fingerprint>` for every regular file under root holding a secret."""
    found: list[str] = []
    skipped = {str(p) for p in skip}
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if os.path.join(directory, d) not in skipped]
        for name in files:
            path = os.path.join(directory, name)
            if path in skipped:
                continue
            try:
                st = os.lstat(path)
                if not stat_is_regular(st.st_mode) or st.st_size > max_bytes:
                    continue
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            found += [f"{path}: {fp}" for fp in secrets_in(data, secrets)]
    return found


def stat_is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


class Sampler:
    """While a CLI command this process started runs: every process's argv, and every file
    of that command's Ansible private dirs (inventory, env, artifacts), sampled every
    `interval` seconds."""

    PRIVATE_RE = re.compile(r"flipgitops-ansible-(\d+)-")

    def __init__(self, interval: float = 0.1) -> None:
        import threading

        self.interval = interval
        self.argv: set[bytes] = set()
        self.files: dict[str, set[bytes]] = {}
        self.private_dirs: set[str] = set()
        self.children: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="argv-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        me = os.getpid()
        for pid, argv in argv_of_all().items():
            self.argv.add(argv)
            if _ppid(pid) == me:
                self.children.add(pid)
        tmp = Path(tempfile.gettempdir())
        for entry in os.listdir(tmp):
            match = self.PRIVATE_RE.match(entry)
            if not match or int(match.group(1)) not in self.children:
                continue
            pdd = tmp / entry
            self.private_dirs.add(str(pdd))
            for directory, _dirs, files in os.walk(pdd):
                for name in files:
                    path = os.path.join(directory, name)
                    with contextlib.suppress(OSError):
                        if stat_is_regular(os.lstat(path).st_mode):
                            self.files.setdefault(path, set()).add(Path(path).read_bytes())

    def leaks(self, secrets: Sequence[str]) -> list[str]:
        found = [f"argv of {a.split(NUL)[0]!r}: {fp}" for a in self.argv
                 for fp in secrets_in(a, secrets)]
        found += [f"{path}: {fp}" for path, versions in self.files.items()
                  for data in versions for fp in secrets_in(data, secrets)]
        return found
