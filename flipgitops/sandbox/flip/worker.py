"""The hub worker: plays the containers and the scheduler ECS would run, against moto.

moto records ECS tasks but runs nothing, so a background thread polls it (every ~0.1 s,
every 0.3 s after three idle seconds). When moto runs in this process (the sandbox, the
tests) the worker also hears of every ECS write moto serves (`moto_server.listen`) and wakes
at once, so it polls every second once idle instead: the polls cost CPU the sandbox's
trust hosts and flipgitops share:

- **One-off tasks** (``run_task`` of the flip-api task definition, as FLIP's
  register-trusts.sh@03bb6813 and delete-trust.sh@05600a0d start them): the container
  command is played by `scripts.run_command`, its output lines are written to the awslogs
  stream the task definition names (``/ecs/flip-api``, ``flip-api/flip-api/<task id>``),
  and only then is the task stopped. moto's ``ecs::task`` transition is set to manual with a
  huge count, so a task stays RUNNING until this worker stops it: a waiter never sees
  STOPPED before the work is done. moto reports ``exitCode`` 0 for every container whatever
  the process did; like Fargate's, the exit code is not evidence (register-trusts.sh judges
  by the kit).
- **The service scheduler** (moto launches no service tasks): when a service's primary
  deployment id, task definition or desired count changes (``update_service`` with
  ``forceNewDeployment=True`` gives moto's deployment a new ``ecs-svc/…`` id), the worker
  starts ``desiredCount`` tasks of the service's current task definition with
  ``startedBy=<deployment id>`` and ``group="service:<name>"``. A task whose image the
  stand-in registry lacks is stopped with ``CannotPullContainerError``; while the new
  deployment has no running task the previous deployment's tasks keep serving. Once it has,
  they are stopped, and for flip-api the hub "boots": it re-creates dropped tables, re-seeds
  the slot pool from SSM, and in the secret era reloads ``TRUST_NAMES`` and the
  ``FLIP_API`` hashes as they are at that moment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from flipgitops.sandbox.flip import flipnames as fn
from flipgitops.sandbox.flip.aws import client
from flipgitops.sandbox.flip.httpbase import THREAD_PREFIX
from flipgitops.sandbox.flip.hub import BootError, HubState, Loaded
from flipgitops.sandbox.flip.registry import ImageRegistry
from flipgitops.sandbox.flip.scripts import Run, run_command
from flipgitops.sandbox.moto_server import listen

ESSENTIAL_EXITED = "Essential container in task exited"
SCALING = "Scaling activity initiated by (deployment {id})"
SERVICE_EVERY = 3
DISCOVER_EVERY = 5
# After this long with nothing to do, poll more slowly (moto calls cost CPU the tests share).
IDLE_AFTER = 3.0
IDLE_INTERVAL = 0.3
# When it hears of moto's ECS writes (moto_server.listen): what a poll can still find is
# only what the worker itself started, so it idles sooner and polls less.
HEARD_IDLE_AFTER = 1.0
HEARD_IDLE_INTERVAL = 1.0
# The ECS writes that give the worker work: a one-off task, a service changed or removed.
WAKE_ON = frozenset(f"AmazonEC2ContainerServiceV20141113.{a}" for a in (
    "RunTask", "StartTask", "StopTask", "CreateService", "UpdateService", "DeleteService"))


def pull_error(image: str, failure: str = "not found") -> str:
    """Fargate's stoppedReason when a manifest is missing, or has no entry for the task's
    platform (``image Manifest does not contain descriptor matching platform``)."""
    if failure != "not found":
        return (f"CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                f"image Manifest does not contain descriptor matching platform "
                f"'linux/amd64' ({image})")
    return (f"CannotPullContainerError: pull image manifest has been retried 1 time(s): "
            f"failed to resolve ref {image}: {image}: not found")


def image_tag(image: str) -> str | None:
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def aes_fingerprint(aes_key: Any) -> str | None:
    """trust-api's fingerprint of the hub's AES key: sha256 of the decoded key, 12 hex."""
    if not isinstance(aes_key, str):
        return None
    try:
        raw = base64.b64decode(aes_key, validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(raw).hexdigest()[:12]


@dataclass
class _Deployment:
    key: tuple[str, str, int]  # (deployment id, task definition, desired count)
    serving: list[str] = field(default_factory=list)  # the task ARNs that serve now


class HubWorker:
    """Polls moto in a named background thread; `stop()` joins it."""

    def __init__(self, state: HubState, registry: ImageRegistry, moto_url: str, region: str,
                 *, interval: float = 0.1) -> None:
        self.state = state
        self.registry = registry
        self.interval = interval
        self._ecs: Any = client("ecs", moto_url, region)
        self._logs: Any = client("logs", moto_url, region)
        self._ssm: Any = client("ssm", moto_url, region)
        self._secrets: Any = client("secretsmanager", moto_url, region)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._discover = False
        self._last_activity = time.monotonic()
        self._running = threading.Event()
        self._running.set()
        self._tick_lock = threading.Lock()
        self._handled: set[str] = set()
        self._scheduled: set[str] = set()
        self._deployments: dict[str, _Deployment] = {}
        self._task_definitions: dict[str, dict[str, Any]] = {}
        self._clusters: dict[str, list[str]] = {}
        self.errors: list[str] = []
        self.ticks = 0
        self.passes = 0
        self._thread = threading.Thread(target=self._loop, name=f"{THREAD_PREFIX}-worker",
                                         daemon=True)
        self._moto_url = moto_url
        self._unlisten: Callable[[], None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._unlisten = listen(self._moto_url, self._heard)
        self._thread.start()

    def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        self._stop.set()
        self._wake.set()
        self._running.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No tick runs inside the block (a tick in progress finishes first)."""
        self._running.clear()
        with self._tick_lock:
            pass
        try:
            yield
        finally:
            self._running.set()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until two more full passes (tasks and services) have run, so everything
        changed in moto before the call has been acted on."""
        target = self.passes + 2
        deadline = time.monotonic() + timeout
        while self.passes < target:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            self._wake.set()  # an idle worker polls slowly: ask for the passes now
            time.sleep(self.interval / 4)
        return True

    def _heard(self, target: str) -> None:
        if target in WAKE_ON:
            self._last_activity = time.monotonic()
            self._wake.set()

    def poke(self) -> None:
        """Rediscover clusters and services on the next tick, and run it now."""
        self._discover = True
        self._last_activity = time.monotonic()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._running.is_set():
                with self._tick_lock:
                    if not self._running.is_set() or self._stop.is_set():
                        continue
                    try:
                        self.tick()
                    except Exception as e:  # keep serving; tests read errors
                        self.errors.append(f"{type(e).__name__}: {e}")
                    self.ticks += 1
            heard = self._unlisten is not None
            quiet = time.monotonic() - self._last_activity
            idle = quiet > (HEARD_IDLE_AFTER if heard else IDLE_AFTER)
            slow = HEARD_IDLE_INTERVAL if heard else IDLE_INTERVAL
            self._wake.wait(max(self.interval, slow) if idle else self.interval)
            self._wake.clear()

    def tick(self) -> None:
        """One-off tasks every tick; services every `SERVICE_EVERY` ticks; the cluster and
        service lists every `DISCOVER_EVERY` (moto calls cost CPU the tests share)."""
        discover = self._discover or self.ticks % DISCOVER_EVERY == 0 or not self._clusters
        self._discover = False
        if discover:
            self._clusters = {
                cluster: self._pages(self._ecs.list_services, "serviceArns", cluster=cluster)
                for cluster in self._pages(self._ecs.list_clusters, "clusterArns")
            }
        schedule = discover or self.ticks % SERVICE_EVERY == 0
        for cluster, services in self._clusters.items():
            self._one_off_tasks(cluster)
            if schedule:
                self._schedule(cluster, services)
        if schedule:
            self.passes += 1

    @staticmethod
    def _pages(call: Any, key: str, **kwargs: Any) -> list[Any]:
        out: list[Any] = []
        token: str | None = None
        while True:
            page = call(**kwargs, **({"nextToken": token} if token else {}))
            out.extend(page.get(key, []))
            token = page.get("nextToken")
            if not token:
                return out

    def _task_definition(self, arn: str) -> dict[str, Any]:
        if arn not in self._task_definitions:
            td = self._ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            self._task_definitions[arn] = td
        return self._task_definitions[arn]

    @staticmethod
    def _container(td: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((c for c in td.get("containerDefinitions", []) if c.get("name") == name),
                    None)

    @staticmethod
    def _env(container: dict[str, Any]) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in container.get("environment") or []}

    def _stop_task(self, cluster: str, arn: str, reason: str) -> None:
        self._ecs.stop_task(cluster=cluster, task=arn, reason=reason)

    # --- one-off tasks ----------------------------------------------------------------

    def _one_off_tasks(self, cluster: str) -> None:
        arns = self._pages(self._ecs.list_tasks, "taskArns", cluster=cluster,
                           desiredStatus="RUNNING")
        fresh = [a for a in arns if a not in self._handled and a not in self._scheduled]
        for i in range(0, len(fresh), 100):
            for task in self._ecs.describe_tasks(cluster=cluster,
                                                 tasks=fresh[i : i + 100])["tasks"]:
                arn = task["taskArn"]
                if task.get("group", "").startswith("service:"):
                    self._scheduled.add(arn)
                    continue
                self._handled.add(arn)
                self._last_activity = time.monotonic()
                try:
                    self._execute(cluster, task)
                except Exception as e:
                    # Never leave a waiter hanging on a task the stand-in failed to play.
                    self.errors.append(f"{type(e).__name__}: {e}")
                    self._stop_task(cluster, arn, f"stand-in error: {type(e).__name__}")

    def _execute(self, cluster: str, task: dict[str, Any]) -> None:
        td = self._task_definition(task["taskDefinitionArn"])
        container = self._container(td, fn.FLIP_API_CONTAINER)
        if container is None:
            self._stop_task(cluster, task["taskArn"], ESSENTIAL_EXITED)
            return
        stream = self._log_target(container, task["taskArn"])
        if stream is not None and not self._log_group_exists(stream[0]):
            self._stop_task(cluster, task["taskArn"], (
                "ResourceInitializationError: failed to validate logger args: The specified "
                f"log group does not exist. : signal: killed ({stream[0]})"))
            return
        overrides = (task.get("overrides") or {}).get("containerOverrides", [])
        override: dict[str, Any] = next(
            (o for o in overrides if o.get("name") == fn.FLIP_API_CONTAINER), {})
        env = self._env(container)
        env.update({e["name"]: e.get("value", "") for e in override.get("environment") or []})
        command = list(override.get("command") or container.get("command") or [])
        run = run_command(command, env, self.state,
                          put_parameter=self._put_parameter,
                          slot_names=lambda r: self._slot_names(r.env, r))
        self.state.record("task", task["taskArn"].rsplit("/", 1)[-1], run.exit_code)
        if stream is not None:
            self._write_logs(stream, run.lines)
        self._stop_task(cluster, task["taskArn"], ESSENTIAL_EXITED)

    @staticmethod
    def _log_target(container: dict[str, Any], task_arn: str) -> tuple[str, str] | None:
        """awslogs: group from the options, stream `<prefix>/<container>/<task id>`."""
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        if config.get("logDriver") != "awslogs" or "awslogs-group" not in options:
            return None
        task_id = task_arn.rsplit("/", 1)[-1]
        prefix = options.get("awslogs-stream-prefix")
        name = f"{prefix}/{container['name']}/{task_id}" if prefix else task_id
        return options["awslogs-group"], name

    def _log_group_exists(self, group: str) -> bool:
        found = self._logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        return any(g["logGroupName"] == group for g in found)

    def _write_logs(self, target: tuple[str, str], lines: list[str]) -> None:
        group, stream = target
        with suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        if not lines:
            return
        stamp = int(time.time() * 1000)
        events = [{"timestamp": stamp, "message": line} for line in lines]
        self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def _put_parameter(self, name: str, value: str) -> None:
        self._ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True,
                                Description=fn.SSM_KIT_DESCRIPTION)

    def _slot_names(self, env: Mapping[str, str], run: Run | None) -> list[str]:
        """resolve_fl_kit_slot_names (fl_kit_slots.py@315baf08): SSM in production, the
        FL_KIT_SLOT_NAMES setting otherwise; any failure is an empty list."""
        if env.get("ENV") != "production":
            try:
                names = json.loads(env.get("FL_KIT_SLOT_NAMES", "[]"))
            except ValueError:
                return []
            return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
        try:
            value = self._ssm.get_parameter(Name=fn.SLOT_POOL_PARAMETER)["Parameter"]["Value"]
            names = json.loads(value)
        except self._ssm.exceptions.ParameterNotFound:
            if run is not None:
                run.log("WARNING", "SSM parameter '%s' not found; the FL kit slot pool is empty.",
                        fn.SLOT_POOL_PARAMETER)
            return []
        except Exception as e:  # FLIP: any other failure is an ERROR and []
            if run is not None:
                run.log("ERROR", "Could not read SSM parameter '%s' (%s)",
                        fn.SLOT_POOL_PARAMETER, type(e).__name__)
            return []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return []
        return names

    # --- the service scheduler --------------------------------------------------------

    def _schedule(self, cluster: str, arns: list[str]) -> None:
        for i in range(0, len(arns), 10):
            described = self._ecs.describe_services(cluster=cluster, services=arns[i : i + 10])
            for service in described["services"]:
                if service.get("status") == "ACTIVE":
                    self._reconcile_service(cluster, service)

    def _reconcile_service(self, cluster: str, service: dict[str, Any]) -> None:
        deployments = service.get("deployments") or []
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"),
                       deployments[0] if deployments else None)
        deployment_id = primary["id"] if primary else f"ecs-svc/{service['serviceName']}"
        desired = int(service.get("desiredCount") or 0)
        key = (deployment_id, service["taskDefinition"], desired)
        current = self._deployments.get(service["serviceArn"])
        if current is not None and current.key == key:
            return
        self._last_activity = time.monotonic()
        td = self._task_definition(service["taskDefinition"])
        started = self._launch(cluster, service, td, deployment_id, desired)
        previous = current.serving if current else []
        if desired and not started:
            self._deployments[service["serviceArn"]] = _Deployment(key, previous)
            return
        flip_api = self._container(td, fn.FLIP_API_CONTAINER)
        if flip_api is not None and not started:
            self.state.halt()  # scaled to zero: the load balancer has no target
        if flip_api is not None and started:
            try:
                self._boot(td, flip_api, started)
            except BootError as e:
                for arn in started:
                    self._stop_task(cluster, arn, ESSENTIAL_EXITED)
                self.state.record("boot_failed", image_tag(flip_api.get("image", "")), str(e))
                self._deployments[service["serviceArn"]] = _Deployment(key, previous)
                return
        for arn in previous:
            self._stop_task(cluster, arn, SCALING.format(id=deployment_id))
        self._deployments[service["serviceArn"]] = _Deployment(key, started)

    def _launch(self, cluster: str, service: dict[str, Any], td: dict[str, Any],
                deployment_id: str, desired: int) -> list[str]:
        """Start the deployment's tasks; those whose image cannot be pulled stop at once."""
        if desired == 0:
            return []
        kwargs: dict[str, Any] = {
            "cluster": cluster, "taskDefinition": service["taskDefinition"], "count": desired,
            "launchType": service.get("launchType") or "FARGATE",
            "startedBy": deployment_id, "group": f"service:{service['serviceName']}",
        }
        if service.get("networkConfiguration"):
            kwargs["networkConfiguration"] = service["networkConfiguration"]
        tasks = self._ecs.run_task(**kwargs)["tasks"]
        missing = next(((c["image"], why) for c in td.get("containerDefinitions", [])
                        if (why := self.registry.pull_failure(c.get("image", ""))) is not None),
                       None)
        running: list[str] = []
        for task in tasks:
            self._scheduled.add(task["taskArn"])
            if missing is not None:
                self._stop_task(cluster, task["taskArn"], pull_error(*missing))
            else:
                running.append(task["taskArn"])
        return running

    def _boot(self, td: dict[str, Any], container: dict[str, Any], tasks: list[str]) -> None:
        """flip-api's entrypoint (flip-api/entrypoint.sh): migrations, the seed, then the
        server, whose settings are read once per process: read them as they are now. Its
        lines go to the first new task's log stream. One-off tasks never run this: their
        command override replaces the image's CMD, which is the entrypoint (Dockerfile)."""
        env = self._env(container)
        lines = ["🚀 Starting flip-api entrypoint script...",
                 f"🌍 Environment: {env.get('ENV', 'development')}",
                 "Postgres is up - applying Alembic migrations"]
        try:
            self._boot_settings(container, env, lines)
        except BootError as e:
            lines.append(f"ERROR - {e}")
            lines.append("Alembic migration failed - exiting" if "schema" in str(e)
                         else "Seeding database failed - exiting")
            raise
        finally:
            target = self._log_target(container, tasks[0])
            if target is not None and self._log_group_exists(target[0]):
                self._write_logs(target, lines)

    def _boot_settings(self, container: dict[str, Any], env: dict[str, str],
                       lines: list[str]) -> None:
        header = env.get("TRUST_API_KEY_HEADER")
        if not header:
            raise BootError("TRUST_API_KEY_HEADER: Field required")
        names: tuple[str, ...] = ()
        hashes: dict[str, str] | None = None
        secret = self._secret(env.get("AWS_SECRET_NAME", fn.SECRET_NAME))
        if self.state.era == "secret":
            try:
                raw = json.loads(env.get("TRUST_NAMES", "[]"))
            except ValueError as e:
                raise BootError(f"TRUST_NAMES: {e}") from e
            if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
                raise BootError("TRUST_NAMES: Input should be a valid list of strings")
            names = tuple(raw)
            hashes = self._hashes(secret.get(fn.SECRET_TRUST_HASHES) if secret else None)
        slot_names = self._slot_names(env, None) if self.state.era == "database" else []
        loaded = Loaded(image_tag=image_tag(container.get("image", "")), api_key_header=header,
                        trust_names=names, trust_api_key_hashes=hashes,
                        aes_key_fingerprint=aes_fingerprint(secret.get("aes_key")
                                                            if secret else None))
        self.state.boot(loaded, slot_names)
        lines += ["Migrations applied - executing seeding command",
                  f"INFO - {fn.LOG_SEEDED_SLOTS.format(n=len(slot_names))}",
                  "Seeding database complete - starting FastAPI server",
                  "🚢 Starting API in normal mode... "]

    def _secret(self, name: str) -> dict[str, Any] | None:
        try:
            value = self._secrets.get_secret_value(SecretId=name)["SecretString"]
            doc = json.loads(value)
        except Exception:  # a missing or broken secret is "nothing loaded"
            return None
        return doc if isinstance(doc, dict) else None

    @staticmethod
    def _hashes(value: Any) -> dict[str, str] | None:
        """FLIP's Terraform jsonencodes a JSON string into the secret; accept an object too."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            return {str(k): v for k, v in value.items()}
        return None
