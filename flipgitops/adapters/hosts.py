"""Trust hosts through Ansible: gather facts and run host actions (DESIGN §4, §5).

Each call is ONE ansible-runner run over every host it is given (one inventory host per
trust, forks = hosts, capped), so ten trusts cost about the wall time of one, and a host that
fails or cannot be reached only fails itself.

Secrets: keys for ``host.deliver`` go into a 0600 ``host_vars`` file inside a fresh 0700
private data dir; tasks that use them are ``no_log``. Events are read in memory and never
written to disk, output files are suppressed, and the whole private data dir (which also records
the process environment) is deleted when the run ends. Facts come back as sha256 hex computed on
the host by ``reconcilers/ansible/library/flip_host_facts.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from flipgitops.adapters.secret_refs import SecretRefs
from flipgitops.errors import AdapterError, HostError
from flipgitops.model.manifest import Host
from flipgitops.model.observed import ObservedContainer, ObservedHost
from flipgitops.model.plan import ActionKind

log = logging.getLogger(__name__)

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "reconcilers" / "ansible"
MAX_FORKS = 20
RUN_TIMEOUT_SECONDS = 1800
SSH_CONNECT_TIMEOUT_SECONDS = 10

PLAYBOOKS = {
    ActionKind.HOST_PROVISION: "provision.yml",
    ActionKind.HOST_DELIVER: "deliver.yml",
    ActionKind.HOST_START_STACK: "start_stack.yml",
    ActionKind.HOST_STOP_STACK: "stop_stack.yml",
    ActionKind.HOST_RESTART_TRUST_API: "restart_trust_api.yml",
    ActionKind.HOST_VERIFY_POLLING: "verify_polling.yml",
}
FACTS_PLAYBOOK = "facts.yml"
FACTS_TASK = "flipgitops facts"

# Non-secret vars each kind's playbook reads (kinds not listed need none).
_SETTINGS = ("trust_name", "hub_url", "registry", "docker_tag", "docker_fl_tag", "fl_backend")
REQUIRED_VARS: dict[str, tuple[str, ...]] = {
    ActionKind.HOST_DELIVER: _SETTINGS,
    ActionKind.HOST_START_STACK: (*_SETTINGS, "services"),
}
SECRET_KEYS = frozenset({"trust_api_key", "aes_key_base64"})


@dataclass(frozen=True)
class HostTarget:
    """One trust's host, as the manifest declares it."""

    trust: str
    host: Host
    fl_kit_slot: str
    region: str | None = None  # where ssm:/secretsmanager: ssh_key references live


@dataclass(frozen=True)
class HostTask:
    """One host's share of an action. ``secrets`` (trust_api_key, aes_key_base64) is only
    used by host.deliver and is never logged, returned or left on disk."""

    target: HostTarget
    vars: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class HostResult:
    trust: str
    ok: bool
    changed: bool
    message: str  # never contains a secret


# -- public API ------------------------------------------------------------------------------


def gather_facts(targets: list[HostTarget], *, base_dir: Path) -> dict[str, ObservedHost]:
    """Facts of every target host, keyed by trust; an unreachable host is ``reachable=False``.

    ``base_dir`` (the manifest's directory) anchors relative ``flip_root``/``docker`` paths of
    local hosts and relative ssh key paths.
    """
    tasks = [HostTask(target=t, vars={}) for t in targets]
    outcomes = _run(
        FACTS_PLAYBOOK, tasks, base_dir=base_dir, check=False, wanted={FACTS_TASK}, secrets=False
    )
    return {trust: _observed(trust, outcome) for trust, outcome in outcomes.items()}


def run_host_action(
    kind: str, tasks: list[HostTask], *, base_dir: Path, check: bool = False
) -> dict[str, HostResult]:
    """Run one ``host.*`` action on every task's host at once; one result per trust.

    ``check=True`` is Ansible check mode: it reports what would change and changes nothing.
    """
    if kind not in PLAYBOOKS:
        raise HostError(f"{kind!r} is not a host action (expected one of {sorted(PLAYBOOKS)})")
    results: dict[str, HostResult] = {}
    runnable: list[HostTask] = []
    for task in tasks:
        problem = _task_problem(kind, task)
        if problem:
            results[task.target.trust] = HostResult(task.target.trust, False, False, problem)
        else:
            runnable.append(task)
    secrets = [v for t in tasks for v in t.secrets.values() if v]
    # Only host.deliver needs the keys; other kinds never get them onto disk at all.
    with_secrets = kind == ActionKind.HOST_DELIVER
    outcomes = _run(
        PLAYBOOKS[kind], runnable, base_dir=base_dir, check=check, wanted=set(),
        secrets=with_secrets,
    )
    for trust, outcome in outcomes.items():
        results[trust] = _result(kind, trust, outcome, check=check, secrets=secrets)
    return results


# -- one ansible-runner run ------------------------------------------------------------------


@dataclass
class _Outcome:
    """What the events said about one host."""

    unreachable: str | None = None
    failed: str | None = None
    changed: bool = False
    finished: bool = False
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def _run(
    playbook: str,
    tasks: list[HostTask],
    *,
    base_dir: Path,
    check: bool,
    wanted: set[str],
    secrets: bool,
) -> dict[str, _Outcome]:
    trusts = [t.target.trust for t in tasks]
    if len(set(trusts)) != len(trusts):
        raise HostError("two host tasks name the same trust; one run handles each host once")
    outcomes = {trust: _Outcome() for trust in trusts}
    if not tasks:
        return outcomes
    pdd = Path(tempfile.mkdtemp(prefix="flipgitops-ansible-"))
    control_dir = Path(tempfile.mkdtemp(prefix="fg-ssh-", dir=_short_tmp()))
    try:
        inventory = _write_inventory(pdd, tasks, base_dir, outcomes, secrets=secrets)
        hosts = [t for t in trusts if outcomes[t].unreachable is None]
        if hosts:
            _execute(pdd, control_dir, playbook, inventory, len(hosts), check, wanted, outcomes)
    finally:
        shutil.rmtree(pdd, ignore_errors=True)
        shutil.rmtree(control_dir, ignore_errors=True)
    return outcomes


def _short_tmp() -> str:
    """ssh control sockets need a path under 108 bytes; a deep TMPDIR would break ssh."""
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) <= 40 or not os.path.isdir("/tmp") else "/tmp"


def _execute(
    pdd: Path,
    control_dir: Path,
    playbook: str,
    inventory: Path,
    host_count: int,
    check: bool,
    wanted: set[str],
    outcomes: dict[str, _Outcome],
) -> None:
    log.debug("ansible: %s on %d host(s)%s", playbook, host_count, " (check mode)" if check else "")

    def on_event(event: dict[str, Any]) -> bool:
        _record_event(event, wanted, outcomes)
        return False  # keep events in memory only: never write them into the artifacts dir

    try:
        runner = ansible_runner.run(
            private_data_dir=str(pdd),
            project_dir=str(ANSIBLE_DIR),
            playbook=str(ANSIBLE_DIR / playbook),
            inventory=str(inventory),
            envvars=_envvars(pdd, control_dir),
            forks=min(host_count, MAX_FORKS),
            cmdline="--check" if check else None,
            quiet=True,
            suppress_env_files=True,
            suppress_output_file=True,
            timeout=RUN_TIMEOUT_SECONDS,
            event_handler=on_event,
        )
    except Exception as exc:  # ansible-runner raises bare exceptions for setup problems
        raise HostError(f"ansible-runner could not run {playbook}: {type(exc).__name__}") from None
    for outcome in outcomes.values():
        if outcome.unreachable is None and outcome.failed is None and not outcome.finished:
            outcome.failed = (
                f"the Ansible run ended ({runner.status}, rc={runner.rc}) before this host finished"
            )


def _record_event(event: dict[str, Any], wanted: set[str], outcomes: dict[str, _Outcome]) -> None:
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    if kind == "playbook_on_stats":
        # The stats count changes of no_log tasks too, whose censored results do not say.
        changed = data.get("changed") or {}
        for trust in data.get("processed") or {}:
            if trust in outcomes:
                outcomes[trust].finished = True
                outcomes[trust].changed = outcomes[trust].changed or bool(changed.get(trust))
        return
    outcome = outcomes.get(str(data.get("host", "")))
    if outcome is None:
        return
    res = data.get("res") or {}
    task = str(data.get("task", ""))
    if kind == "runner_on_unreachable":
        outcome.unreachable = _reason(res) or "host unreachable"
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        outcome.failed = outcome.failed or f"{task}: {_reason(res) or 'failed'}"
    elif kind == "runner_on_ok":
        outcome.changed = outcome.changed or bool(res.get("changed"))
        if task in wanted or task.rsplit(" : ", 1)[-1] in wanted:
            task = task.rsplit(" : ", 1)[-1]
            outcome.results[task] = res


def _reason(res: dict[str, Any]) -> str:
    if res.get("censored"):
        return "a task handling secrets failed (its output is hidden)"
    parts = [str(res.get("msg") or "").strip()]
    stderr = str(res.get("stderr") or "").strip()
    if stderr:
        parts.append(stderr.splitlines()[-1])
    return "; ".join(p for p in parts if p)[:500]


# -- inventory -------------------------------------------------------------------------------


def _write_inventory(
    pdd: Path,
    tasks: list[HostTask],
    base_dir: Path,
    outcomes: dict[str, _Outcome],
    *,
    secrets: bool,
) -> Path:
    inv_dir = pdd / "inventory"
    (inv_dir / "host_vars").mkdir(parents=True, mode=0o700)
    hosts: dict[str, dict[str, Any]] = {}
    refs = SecretRefs(region=next((t.target.region for t in tasks if t.target.region), None))
    for task in tasks:
        trust = task.target.trust
        try:
            hosts[trust] = _host_vars(pdd, task.target, base_dir, refs)
        except HostError as exc:
            outcomes[trust].unreachable = str(exc)
            continue
        hosts[trust]["flip"] = task.vars
        if secrets and task.secrets:
            _write_private(inv_dir / "host_vars" / f"{trust}.json", json.dumps(
                {"flip_secret": task.secrets}))
    path = inv_dir / "hosts.json"
    _write_private(path, json.dumps({"all": {"hosts": hosts}}, default=_jsonable))
    return path


def _jsonable(value: Any) -> Any:
    """Task vars may carry manifest models (e.g. TrustServices); Ansible needs plain data."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else str(value)


def _host_vars(
    pdd: Path, target: HostTarget, base_dir: Path, refs: SecretRefs
) -> dict[str, Any]:
    host = target.host
    hv: dict[str, Any] = {
        "flip_trust": target.trust,
        "flip_kit_slot": target.fl_kit_slot,
        "flip_connection": host.connection,
        "flip_user": host.user,
        "flip_root": host.flip_root,
        "flip_docker": host.docker,
    }
    if host.connection == "local":
        hv.update(
            ansible_connection="local",
            ansible_python_interpreter=sys.executable,
            ansible_remote_tmp=str(pdd / "remote_tmp"),
            flip_root=str(_anchor(host.flip_root, base_dir)),
            flip_docker=_anchor_command(host.docker, base_dir),
        )
        return hv
    address, _, port = host.address.partition(":") if host.address.count(":") == 1 else (
        host.address, "", "")
    hv.update(
        ansible_connection="ssh",
        ansible_host=address,
        ansible_user=host.user,
        ansible_ssh_common_args=(
            f"-o StrictHostKeyChecking=accept-new -o BatchMode=yes "
            f"-o ConnectTimeout={SSH_CONNECT_TIMEOUT_SECONDS}"
        ),
    )
    if port:
        hv["ansible_port"] = int(port) if port.isdigit() else port
    if host.ssh_key:
        hv["ansible_ssh_private_key_file"] = str(_ssh_key_file(pdd, target, base_dir, refs))
    return hv


def _anchor(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base_dir / p).resolve()


def _anchor_command(command: str, base_dir: Path) -> str:
    """A relative path as the command's first word is relative to the manifest, like paths."""
    words = command.split()
    if words and "/" in words[0] and not words[0].startswith("/"):
        words[0] = str(_anchor(words[0], base_dir))
    return " ".join(words)


def _ssh_key_file(pdd: Path, target: HostTarget, base_dir: Path, refs: SecretRefs) -> Path:
    """The private key as a 0600 file inside this run's private dir (deleted with it).

    An ``env:`` variable may also hold the path of a key file (as on an operator's laptop).
    """
    ref = target.host.ssh_key or ""
    try:
        value = refs.resolve(ref)
    except AdapterError as exc:
        raise HostError(f"host.ssh_key of {target.trust} ({ref}): {exc}") from None
    if "PRIVATE KEY" not in value:
        path = _anchor(value.strip(), base_dir) if ref.startswith("env:") else None
        if path is None or not path.is_file():
            raise HostError(
                f"host.ssh_key of {target.trust}: {ref} holds neither a private key nor "
                "(env: only) the path of a key file"
            )
        return path
    key_dir = pdd / "keys"
    key_dir.mkdir(mode=0o700, exist_ok=True)
    path = key_dir / f"{target.trust}.key"
    _write_private(path, value.strip() + "\n")
    return path


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _path_with_interpreter_bin() -> str:
    """PATH with this interpreter's bin dir first, so ansible-runner finds the
    ansible-playbook installed beside flipgitops even when it is run as
    ``.venv/bin/python -m flipgitops`` without the venv on PATH."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _envvars(pdd: Path, control_dir: Path) -> dict[str, str]:
    """Pin Ansible's behaviour: our config only, all its scratch space inside ``pdd``."""
    return {
        "PATH": _path_with_interpreter_bin(),
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_LIBRARY": str(ANSIBLE_DIR / "library"),
        "ANSIBLE_ROLES_PATH": str(ANSIBLE_DIR / "roles"),
        "ANSIBLE_HOME": str(pdd / "ansible_home"),
        "ANSIBLE_LOCAL_TEMP": str(pdd / "local_tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_LOG_PATH": os.devnull,
        "ANSIBLE_DEBUG": "False",
        "ANSIBLE_VERBOSITY": "0",
        "ANSIBLE_KEEP_REMOTE_FILES": "False",
        "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "False",
        "ANSIBLE_DIFF_ALWAYS": "False",
        "ANSIBLE_NO_TARGET_SYSLOG": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_TIMEOUT": str(SSH_CONNECT_TIMEOUT_SECONDS),
    }


# -- results ---------------------------------------------------------------------------------


def _task_problem(kind: str, task: HostTask) -> str | None:
    missing = [k for k in REQUIRED_VARS.get(kind, ()) if task.vars.get(k) in (None, "")]
    if missing:
        return f"{kind}: missing vars {', '.join(missing)}"
    if kind != ActionKind.HOST_DELIVER:
        return None  # other kinds never use secrets; they are not even written to disk
    unknown = set(task.secrets) - SECRET_KEYS
    if unknown:
        return f"{kind}: unknown secret names {', '.join(sorted(unknown))}"
    if task.secrets and set(task.secrets) != SECRET_KEYS:
        return f"{kind}: secrets must carry both {' and '.join(sorted(SECRET_KEYS))}"
    return None


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _result(
    kind: str, trust: str, outcome: _Outcome, *, check: bool, secrets: list[str]
) -> HostResult:
    if outcome.unreachable is not None:
        message = _mask(f"unreachable: {outcome.unreachable}", secrets)
        return HostResult(trust, False, False, message)
    if outcome.failed is not None:
        message = _mask(f"failed: {outcome.failed}", secrets)
        return HostResult(trust, False, outcome.changed, message)
    if outcome.changed:
        message = f"{kind}: would change" if check else f"{kind}: changed"
    else:
        message = f"{kind}: already as desired"
    return HostResult(trust, True, outcome.changed, message)


def _image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def _observed(trust: str, outcome: _Outcome) -> ObservedHost:
    if outcome.unreachable is not None:
        return ObservedHost(trust=trust, reachable=False, reason=outcome.unreachable)
    res = outcome.results.get(FACTS_TASK)
    if outcome.failed is not None or res is None:
        # Facts we could not read are unknown, never "absent": the planner must not act on them.
        reason = outcome.failed or "no facts returned"
        return ObservedHost(trust=trust, reachable=False, reason=f"facts failed: {reason}")
    facts: dict[str, Any] = dict(res.get("flip") or {})
    containers = tuple(
        ObservedContainer(
            service=str(c.get("service", "")),
            image=str(c.get("image", "")),
            tag=_image_tag(str(c.get("image", ""))),
            state=str(c.get("state", "")),
        )
        for c in facts.pop("containers", None) or []
    )
    known = set(ObservedHost.model_fields) - {"trust", "reachable", "containers"}
    return ObservedHost(
        trust=trust,
        reachable=True,
        containers=containers,
        **{k: v for k, v in facts.items() if k in known},
    )
