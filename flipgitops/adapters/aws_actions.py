"""Write side of the hub in AWS: the executors behind the apply engine's AWS actions.

Every method is idempotent (level-based: it looks first and only changes what differs), so a
rerun after a crash converges. Nothing here can delete the database or turn its protection
off: those operations simply do not exist in this module. Secret values pass through only
as return values to the engine; they are never logged or put into an exception.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters.aws import (
    DATABASE_GENERATIONS,
    GENERATION_TAG,
    REDEPLOY_PENDING,
    app_container,
    db_tags,
    describe_db,
    describe_services,
    find_group,
    get_secret,
    image_tag,
    parse_secret,
    registry,
    registry_database_generations,
    rules_on_port,
    service_names,
    with_tag,
)
from flipgitops.adapters.aws_session import (
    Clients,
    as_clients,
    call,
    error_code,
    must,
    translate,
)
from flipgitops.errors import AwsError, TransientError
from flipgitops.model.manifest import Manifest

log = logging.getLogger(__name__)

RESET_DB_COMMAND = ("uv", "run", "python", "-m", "flip_api.scripts.reset_db")


def escrow_parameter(env: str, trust: str) -> str:
    return f"/flipgitops/{env}/trusts/{trust}/api-key"


@dataclass(frozen=True)
class EscrowedKey:
    """One trust's escrowed key and the generations it was minted for."""

    generation: int
    database_generation: int
    api_key: str = field(repr=False)


def _cidr(value: str) -> str:
    return value if "/" in value else f"{value}/32"


class AwsActions:
    """The AWS executors for one environment. Clients are injected (moto in tests)."""

    def __init__(
        self,
        manifest: Manifest,
        clients: Clients | None = None,
        *,
        session: boto3.Session | None = None,
        wait_delay: int = 15,
        wait_max_attempts: int = 240,
        reset_command: tuple[str, ...] = RESET_DB_COMMAND,
    ) -> None:
        self.manifest = manifest
        self.clients = clients if clients is not None else as_clients(session, manifest.aws.region)
        self.env = manifest.environment
        self.wait_delay = wait_delay
        self.wait_max_attempts = wait_max_attempts
        self.reset_command = reset_command

    # --- credentials escrow (SSM) ---------------------------------------------------------

    def escrow_record(self, trust: str) -> EscrowedKey | None:
        """What is escrowed for ``trust``, or None when nothing is escrowed."""
        name = escrow_parameter(self.env, trust)
        resp = call(
            lambda: self.clients.ssm.get_parameter(Name=name, WithDecryption=True),
            doing=f"reading escrowed credentials {name}",
            missing=("ParameterNotFound",),
        )
        if resp is None:
            return None
        try:
            data = json.loads(resp["Parameter"].get("Value", ""))
            return EscrowedKey(
                int(data["generation"]),
                int(data.get("database_generation", 1)),
                str(data["api_key"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AwsError(
                f"escrowed credentials {name} are not flipgitops JSON "
                '({"generation": N, "api_key": ...}); fix or delete the parameter'
            ) from None

    def escrowed_key(self, trust: str) -> tuple[int, str] | None:
        """(credentials generation, key) escrowed for ``trust``, or None."""
        found = self.escrow_record(trust)
        return None if found is None else (found.generation, found.api_key)

    def ensure_escrowed_key(
        self, trust: str, generation: int, database_generation: int = 1
    ) -> str:
        """The trust's key for (``generation``, ``database_generation``): the escrowed one,
        or a fresh one escrowed first. A recreated database gets new keys for every trust
        at the same credentials generation, hence both numbers must match to reuse a key.

        Escrow happens before the hub learns the hash, so a crash between the two never
        leaves the hub accepting a key nobody holds.
        """
        current = self.escrow_record(trust)
        if current is not None and (current.generation, current.database_generation) == (
            generation, database_generation
        ):
            return current.api_key
        key = secrets.token_urlsafe(32)
        name = escrow_parameter(self.env, trust)
        value = {"generation": generation, "database_generation": database_generation,
                 "api_key": key}
        must(
            lambda: self.clients.ssm.put_parameter(
                Name=name,
                Type="SecureString",
                Value=json.dumps(value),
                Overwrite=True,
                Description=f"flipgitops: TRUST_API_KEY of {trust} ({self.env})",
            ),
            doing=f"escrowing credentials of trust {trust} in SSM {name}",
        )
        log.info("escrowed a new key for %s (generation %d, database generation %d)",
                 trust, generation, database_generation)
        return key

    # --- hub secret (Secrets Manager) -----------------------------------------------------

    def _read_secret(self, version_id: str | None = None) -> tuple[str, dict[str, Any]]:
        name = self.manifest.hub.secret
        resp = get_secret(self.clients, name, version_id)
        if resp is None:
            raise AwsError(
                f"hub secret {name} does not exist: flipgitops never creates it; deploy the "
                "hub (FLIP's Terraform) first or fix hub.secret in the manifest"
            )
        return resp["VersionId"], parse_secret(resp.get("SecretString"), name)

    def _stages(self) -> dict[str, list[str]]:
        name = self.manifest.hub.secret
        resp = must(
            lambda: self.clients.secretsmanager.describe_secret(SecretId=name),
            doing=f"describing hub secret {name}",
        )
        return {k: list(v) for k, v in resp.get("VersionIdsToStages", {}).items()}

    @staticmethod
    def _version_with(stages: dict[str, list[str]], stage: str) -> str | None:
        return next((v for v, s in stages.items() if stage in s), None)

    def _write_secret(self, read_version: str, data: dict[str, Any]) -> str:
        """Compare-and-swap: write only if AWSCURRENT is still the version we read."""
        name = self.manifest.hub.secret
        if self._version_with(self._stages(), "AWSCURRENT") != read_version:
            raise TransientError(
                f"hub secret {name} changed while flipgitops was editing it (someone else "
                "wrote it); nothing was written; rerun to re-read and re-apply"
            )
        resp = must(
            lambda: self.clients.secretsmanager.put_secret_value(
                SecretId=name,
                SecretString=json.dumps(data),
                ClientRequestToken=str(uuid.uuid4()),
            ),
            doing=f"writing hub secret {name}",
        )
        return resp["VersionId"]

    def update_hub_secret(
        self,
        register: dict[str, tuple[str, int]],
        deregister: list[str],
        drop_previous: list[str],
        *,
        database_generations: Mapping[str, int] | None = None,
        mark_redeploy_pending: bool = True,
    ) -> bool:
        """One read-modify-write of the trust registry; every other key is kept untouched.

        ``register`` maps trust name -> (sha256 hex of its key, credentials generation);
        ``database_generations`` the database generation each registered key was minted for
        (1 when not given). A registry change also sets ``flipgitops_redeploy_pending`` in
        the same write, so a crash before flip-api is redeployed stays visible; only
        :meth:`clear_redeploy_pending` removes it. Returns whether anything was written.
        """
        db_gens = dict(database_generations or {})

        def mutate(data: dict[str, Any]) -> dict[str, Any]:
            new = self._mutate_registry(data, register, deregister, drop_previous, db_gens)
            if new != data and mark_redeploy_pending:
                new[REDEPLOY_PENDING] = True
            return new

        changed = self._read_modify_write(mutate)
        if changed:
            log.info("hub secret %s updated", self.manifest.hub.secret)
        return changed

    def clear_redeploy_pending(self) -> bool:
        """Drop the redeploy marker once flip-api was redeployed; a no-op when it is not set.

        flip-api ignores the key, so this write needs no redeploy of its own.
        """
        if get_secret(self.clients, self.manifest.hub.secret) is None:
            return False

        def mutate(data: dict[str, Any]) -> dict[str, Any]:
            if REDEPLOY_PENDING not in data:
                return data
            return {k: v for k, v in data.items() if k != REDEPLOY_PENDING}

        return self._read_modify_write(mutate)

    def _read_modify_write(self, mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
        """A concurrent edit is never lost: before the write the version read must still be
        current; after it, the version read must be the one our write displaced. If another
        writer slipped in between, their version is re-read, our change re-applied on top of
        it, and TransientError tells the engine to stop and rerun (which re-observes).
        """
        name = self.manifest.hub.secret
        read_version, data = self._read_secret()
        new = mutate(data)
        if new == data:
            return False
        written = self._write_secret(read_version, new)
        stages = self._stages()
        displaced = self._version_with(stages, "AWSPREVIOUS")
        if displaced != read_version:
            self._merge_after_race(written, displaced, stages, mutate)
            raise TransientError(
                f"hub secret {name} was written by someone else at the same time; their "
                "change was kept and flipgitops' change re-applied on top; rerun to confirm"
            )
        return True

    def _merge_after_race(
        self,
        written: str,
        displaced: str | None,
        stages: dict[str, list[str]],
        mutate: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        """Our write displaced a concurrent one: put theirs back with our change applied."""
        if displaced is None or self._version_with(stages, "AWSCURRENT") != written:
            return  # someone wrote after us as well; the rerun re-reads whatever is current
        _, theirs = self._read_secret(displaced)
        self._write_secret(written, mutate(theirs))

    @staticmethod
    def _mutate_registry(
        data: dict[str, Any],
        register: dict[str, tuple[str, int]],
        deregister: list[str],
        drop_previous: list[str],
        database_generations: Mapping[str, int],
    ) -> dict[str, Any]:
        names, hashes, previous, generations = registry(data)
        db_gens = registry_database_generations(data)
        before = (set(names), dict(hashes), dict(previous), dict(generations), dict(db_gens))
        for trust, (digest, generation) in register.items():
            old = hashes.get(trust)
            if old is not None and old != digest:
                previous[trust] = old  # both keys accepted until the host has the new one
            hashes[trust] = digest
            generations[trust] = generation
            db_gens[trust] = database_generations.get(trust, 1)
            names.append(trust)
        for trust in drop_previous:
            previous.pop(trust, None)
        for trust in deregister:
            names = [n for n in names if n != trust]
            for mapping in (hashes, previous, generations, db_gens):
                mapping.pop(trust, None)
        after = (set(names), hashes, previous, generations, db_gens)
        out = dict(data)
        # Only fields whose meaning changed are rewritten; the rest keep their encoding, and
        # an empty field that was absent stays absent.
        fields = (
            ("trust_names", sorted(set(names))),
            ("trust_api_key_hashes", dict(sorted(hashes.items()))),
            ("trust_api_key_hashes_previous", dict(sorted(previous.items()))),
            ("flipgitops_credentials_generations", dict(sorted(generations.items()))),
            (DATABASE_GENERATIONS, dict(sorted(db_gens.items()))),
        )
        for (key, value), old_part, new_part in zip(fields, before, after, strict=True):
            if old_part != new_part:
                # FLIP has stored these as JSON-encoded strings; keep whichever form it uses.
                out[key] = json.dumps(value) if isinstance(data.get(key), str) else value
        return out

    def hub_aes_key(self) -> str | None:
        """The hub's shared payload key, for delivery into trust env files only."""
        _, data = self._read_secret()
        value = data.get("aes_key")
        return value if isinstance(value, str) else None

    # --- ECS ------------------------------------------------------------------------------

    def _service(self, role: str) -> tuple[str, dict[str, Any]]:
        names = service_names(self.manifest)
        if role not in names:
            raise ValueError(f"unknown hub service role {role!r}; expected one of {list(names)}")
        name = names[role]
        cluster = self.manifest.hub.ecs.cluster
        svc = describe_services(self.clients, cluster, [name]).get(name)
        if svc is None:
            raise AwsError(
                f"ECS service {name} not found in cluster {cluster}: deploy the hub first or "
                "fix hub.ecs in the manifest"
            )
        return name, svc

    def _task_definition(self, arn: str) -> dict[str, Any]:
        resp = must(
            lambda: self.clients.ecs.describe_task_definition(
                taskDefinition=arn, include=["TAGS"]
            ),
            doing=f"reading task definition {arn}",
        )
        task_def = dict(resp["taskDefinition"])
        if resp.get("tags"):
            task_def["tags"] = resp["tags"]
        return task_def

    def deploy_image(self, role: str, tag: str) -> bool:
        """New task-definition revision with only the app container's tag changed, then
        ``update_service`` to it (what FLIP's deploy-centralhub does). False if already there.
        """
        name, svc = self._service(role)
        cluster = self.manifest.hub.ecs.cluster
        task_def = self._task_definition(svc["taskDefinition"])
        container = app_container(task_def, name)
        if container is None or not container.get("image"):
            raise AwsError(
                f"task definition {svc['taskDefinition']} has no container named {name}; "
                "flipgitops only deploys the container named like the service"
            )
        if image_tag(container["image"]) == tag:
            return False
        shape = self.clients.ecs.meta.service_model.operation_model(
            "RegisterTaskDefinition"
        ).input_shape
        accepted = shape.members if shape is not None else {}
        args = {k: v for k, v in task_def.items() if k in accepted}
        args["containerDefinitions"] = [
            {**c, "image": with_tag(c["image"], tag)} if c.get("name") == container["name"]
            else c
            for c in task_def["containerDefinitions"]
        ]
        new_arn = must(
            lambda: self.clients.ecs.register_task_definition(**args),
            doing=f"registering a task definition for {name} at tag {tag}",
        )["taskDefinition"]["taskDefinitionArn"]
        must(
            lambda: self.clients.ecs.update_service(
                cluster=cluster, service=name, taskDefinition=new_arn
            ),
            doing=f"updating ECS service {name} to {new_arn}",
        )
        log.info("deployed %s at %s (%s)", name, tag, new_arn)
        return True

    def redeploy_flip_api(self) -> None:
        """flip-api reads the hub secret at start-up; a new deployment makes it reload."""
        name, _ = self._service("flip_api")
        cluster = self.manifest.hub.ecs.cluster
        must(
            lambda: self.clients.ecs.update_service(
                cluster=cluster, service=name, forceNewDeployment=True
            ),
            doing=f"redeploying ECS service {name}",
        )

    # --- allowlist (EC2 security group) ---------------------------------------------------

    def _group(self) -> tuple[str, dict[str, Any]]:
        group_name = self.manifest.hub.fl_server.security_group
        group = find_group(self.clients, group_name)
        if group is None:
            raise AwsError(
                f"security group {group_name} not found: deploy the hub's FL server NLB first "
                "or fix hub.fl_server.security_group in the manifest"
            )
        return group["GroupId"], group

    def update_allowlist(self, add: list[tuple[str, str]], revoke: list[str]) -> bool:
        """Authorize new /32s first, then revoke old ones, on the FL port only. Rules that
        already exist are skipped, so a rerun is a no-op. Returns whether anything changed.
        """
        port = self.manifest.hub.fl_server.port
        group_id, group = self._group()
        exact = {
            r.cidr: r for r in rules_on_port(group, port)
            if r.protocol == "tcp" and r.from_port == port and r.to_port == port
        }
        changed = False
        wanted = {_cidr(cidr): trust for trust, cidr in add}
        new = [(c, t) for c, t in wanted.items() if c not in exact]
        for cidr, trust in wanted.items():
            rule = exact.get(cidr)
            if rule is not None and rule.description != f"flipgitops:{trust}":
                self._describe_rule(group_id, port, cidr, trust)
                changed = True
        if new:
            self._authorize(group_id, port, new)
            changed = True
        revoked = dict.fromkeys(_cidr(c) for c in revoke)
        gone = [c for c in revoked if c in exact and c not in wanted]
        if gone:
            self._revoke(group_id, port, gone)
            changed = True
        return changed

    def _permission(self, port: int, ranges: list[dict[str, str]]) -> Any:
        return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": ranges}

    def _authorize(self, group_id: str, port: int, rules: list[tuple[str, str]]) -> None:
        def one_call(batch: list[tuple[str, str]]) -> None:
            perm = self._permission(
                port, [{"CidrIp": c, "Description": f"flipgitops:{t}"} for c, t in batch]
            )
            self.clients.ec2.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=[perm]
            )

        doing = f"adding ingress rules to security group {group_id} on port {port}"
        try:
            one_call(rules)
            return
        except ClientError as exc:
            if error_code(exc) != "InvalidPermission.Duplicate":
                raise translate(exc, doing=doing) from None
        except BotoCoreError as exc:
            raise translate(exc, doing=doing) from None
        # Someone added one of them meanwhile; the batch failed as a whole, so go one by one
        # and take a duplicate as done.
        for rule in rules:
            self._authorize_one(one_call, rule, doing)

    @staticmethod
    def _authorize_one(
        one_call: Callable[[list[tuple[str, str]]], None], rule: tuple[str, str], doing: str
    ) -> None:
        call(lambda: one_call([rule]), doing=doing, missing=("InvalidPermission.Duplicate",))

    def _describe_rule(self, group_id: str, port: int, cidr: str, trust: str) -> None:
        perm = self._permission(port, [{"CidrIp": cidr, "Description": f"flipgitops:{trust}"}])
        must(
            lambda: self.clients.ec2.update_security_group_rule_descriptions_ingress(
                GroupId=group_id, IpPermissions=[perm]
            ),
            doing=f"labelling ingress rule {cidr} of {group_id} as flipgitops:{trust}",
        )

    def _revoke(self, group_id: str, port: int, cidrs: list[str]) -> None:
        perm = self._permission(port, [{"CidrIp": c} for c in cidrs])
        call(
            lambda: self.clients.ec2.revoke_security_group_ingress(
                GroupId=group_id, IpPermissions=[perm]
            ),
            doing=f"revoking ingress rules {', '.join(cidrs)} from {group_id}",
            missing=("InvalidPermission.NotFound",),
        )

    # --- database (RDS) -------------------------------------------------------------------

    def _db(self) -> dict[str, Any]:
        identifier = self.manifest.hub.database.identifier
        db = describe_db(self.clients, identifier)
        if db is None:
            raise AwsError(
                f"RDS instance {identifier} not found: flipgitops does not create the "
                "database; deploy the hub first or fix hub.database.identifier"
            )
        return db

    def _snapshot_prefix(self, generation: int) -> str:
        env = re.sub(r"[^a-z0-9-]+", "-", self.env.lower()).strip("-") or "env"
        return f"flipgitops-{env}-gen{generation}-"

    def snapshot_database(self, generation: int) -> str:
        """A manual snapshot ``flipgitops-<env>-gen<N>-<time>``, waited on until available.
        A snapshot of that generation that already exists is reused, not duplicated.
        """
        identifier = self.manifest.hub.database.identifier
        prefix = self._snapshot_prefix(generation)
        doing = f"listing manual snapshots of RDS instance {identifier}"
        pages = must(
            lambda: list(
                self.clients.rds.get_paginator("describe_db_snapshots").paginate(
                    DBInstanceIdentifier=identifier, SnapshotType="manual"
                )
            ),
            doing=doing,
        )
        mine = sorted(
            (s for p in pages for s in p.get("DBSnapshots", [])
             if s.get("DBSnapshotIdentifier", "").startswith(prefix)
             and s.get("Status") in ("available", "creating")),
            key=lambda s: (s.get("Status") != "available", s["DBSnapshotIdentifier"]),
        )
        if mine:
            snapshot_id = mine[0]["DBSnapshotIdentifier"]
        else:
            self._db()
            snapshot_id = prefix + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
            must(
                lambda: self.clients.rds.create_db_snapshot(
                    DBSnapshotIdentifier=snapshot_id,
                    DBInstanceIdentifier=identifier,
                    Tags=[{"Key": GENERATION_TAG, "Value": str(generation)},
                          {"Key": "flipgitops:environment", "Value": self.env}],
                ),
                doing=f"creating snapshot {snapshot_id} of RDS instance {identifier}",
            )
        must(
            lambda: self.clients.rds.get_waiter("db_snapshot_available").wait(
                DBSnapshotIdentifier=snapshot_id,
                WaiterConfig={"Delay": self.wait_delay, "MaxAttempts": self.wait_max_attempts},
            ),
            doing=f"waiting for snapshot {snapshot_id} to become available",
        )
        return snapshot_id

    def reset_schema(self, generation: int) -> bool:
        """Reset the schema with a one-off task of flip-api's task definition, then tag the
        instance with the new generation. The tag makes it idempotent: False if already done.
        """
        db = self._db()
        identifier = self.manifest.hub.database.identifier
        if db_tags(self.clients, db).get(GENERATION_TAG) == str(generation):
            return False
        name, svc = self._service("flip_api")
        cluster = self.manifest.hub.ecs.cluster
        task_def = self._task_definition(svc["taskDefinition"])
        container = app_container(task_def, name)
        if container is None:
            raise AwsError(f"task definition of {name} has no container named {name}")
        args: dict[str, Any] = {
            "cluster": cluster,
            "taskDefinition": svc["taskDefinition"],
            "count": 1,
            "startedBy": "flipgitops",
            "overrides": {
                "containerOverrides": [
                    {"name": container["name"], "command": list(self.reset_command)}
                ]
            },
        }
        if svc.get("launchType"):
            args["launchType"] = svc["launchType"]
        if svc.get("networkConfiguration"):
            args["networkConfiguration"] = svc["networkConfiguration"]
        resp = must(
            lambda: self.clients.ecs.run_task(**args),
            doing=f"starting the schema reset task for {identifier} in cluster {cluster}",
        )
        if resp.get("failures") or not resp.get("tasks"):
            reasons = ", ".join(str(f.get("reason")) for f in resp.get("failures", []))
            raise AwsError(f"the schema reset task did not start: {reasons or 'no task'}")
        self._wait_task(cluster, resp["tasks"][0]["taskArn"], container["name"])
        must(
            lambda: self.clients.rds.add_tags_to_resource(
                ResourceName=db["DBInstanceArn"],
                Tags=[{"Key": GENERATION_TAG, "Value": str(generation)}],
            ),
            doing=f"tagging RDS instance {identifier} with generation {generation}",
        )
        return True

    def _wait_task(self, cluster: str, task_arn: str, container: str) -> None:
        must(
            lambda: self.clients.ecs.get_waiter("tasks_stopped").wait(
                cluster=cluster, tasks=[task_arn],
                WaiterConfig={"Delay": self.wait_delay, "MaxAttempts": self.wait_max_attempts},
            ),
            doing=f"waiting for the schema reset task {task_arn} to finish",
        )
        task = must(
            lambda: self.clients.ecs.describe_tasks(cluster=cluster, tasks=[task_arn]),
            doing=f"reading the result of task {task_arn}",
        )["tasks"][0]
        codes = [
            c.get("exitCode") for c in task.get("containers", []) if c.get("name") == container
        ]
        if task.get("stopCode") == "TaskFailedToStart" or any(
            code not in (None, 0) for code in codes
        ):
            raise AwsError(
                f"the schema reset task {task_arn} failed (stop code {task.get('stopCode')}, "
                f"exit codes {codes}); see its CloudWatch logs; the database was not re-tagged"
            )

    def restore_protection(self) -> bool:
        """Deletion protection back on. Only ever turns it on."""
        db = self._db()
        if db.get("DeletionProtection"):
            return False
        identifier = self.manifest.hub.database.identifier
        must(
            lambda: self.clients.rds.modify_db_instance(
                DBInstanceIdentifier=identifier, DeletionProtection=True, ApplyImmediately=True
            ),
            doing=f"turning deletion protection on for RDS instance {identifier}",
        )
        return True
