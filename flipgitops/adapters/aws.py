"""Read side of the hub: one `ObservedHub` per observation (docs/architecture.md §4).

The number of AWS calls is fixed whatever the number of trusts (about twenty): the security
group is two filtered lookups, FLIP_API one read, the three services one describe plus one
task-definition read each and one task listing per deployment, the kits one prefix listing.
Missing resources are facts (``exists=False``), never exceptions; secret values are reduced
to hashes before anything else can see them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr

from flipgitops.adapters import hub_secret
from flipgitops.adapters.allowlist import observe_allowlist
from flipgitops.adapters.aws_session import Clients, call, must
from flipgitops.adapters.ecs import (
    Stability,
    active_revisions,
    app_container,
    describe_services,
    describe_task_definition,
    env_value,
    family_and_revision,
    parse_trust_names,
    service_names,
    stabilities,
)
from flipgitops.adapters.endpoints import Endpoints, endpoints_from_env
from flipgitops.adapters.hub_api import admin_trusts
from flipgitops.adapters.kit_listing import observe_kits
from flipgitops.adapters.secret_refs import SecretRefError, SecretRefs
from flipgitops.errors import AdapterError
from flipgitops.model.flip import (
    SECRET_TRUST_HASHES,
    SLOT_POOL_PARAMETER,
    TASK_ENV_TRUST_NAMES,
    HubRole,
    image_tag,
)
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import (
    ObservedAdminApi,
    ObservedCognito,
    ObservedDatabase,
    ObservedHub,
    ObservedRegistryEra,
    ObservedService,
)

GENERATION_TAG = "flipgitops:generation"


# --- ECS ----------------------------------------------------------------------------------


def _network(svc: dict[str, Any]) -> dict[str, tuple[str, ...] | str]:
    vpc = svc.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    out: dict[str, tuple[str, ...] | str] = {}
    for key in ("subnets", "securityGroups"):
        if vpc.get(key):
            out[key] = tuple(sorted(str(v) for v in vpc[key]))
    if vpc.get("assignPublicIp"):
        out["assignPublicIp"] = str(vpc["assignPublicIp"])
    return out


def counts_after(moment: datetime) -> datetime:
    """What a later event must pass to be known to follow ``moment``. A time given to the
    second only (Secrets Manager's CreatedDate may be) may be up to a second later than it
    says, so only a moment past that second counts."""
    return moment + timedelta(seconds=1) if moment.microsecond == 0 else moment


def _after(moment: datetime | None, *others: datetime | None) -> bool | None:
    """Whether ``moment`` is later than every other time (`counts_after`), so "loaded" is
    never claimed on a same-second tie (a needless redeploy is safe; a missed one locks
    trusts out). The redeploy executor waits such a tie out before it deploys."""
    if moment is None:
        return None
    return all(other is None or moment > counts_after(other) for other in others)


def observe_services(clients: Clients, manifest: Manifest, secret: hub_secret.SecretDoc | None
                     ) -> dict[str, ObservedService]:
    cluster = manifest.hub.ecs.cluster
    names = service_names(manifest)
    live = describe_services(clients, cluster, list(names.values()))
    stable = stabilities(clients, cluster, {role: live[n] for role, n in names.items()
                                            if n in live})
    out: dict[str, ObservedService] = {}
    for role, name in names.items():
        svc = live.get(name)
        if svc is None:
            out[role] = ObservedService(role=role, name=name, exists=False)
            continue
        out[role] = _service(clients, role, name, svc, stable[role], secret)
    return out


def _service(clients: Clients, role: HubRole, name: str, svc: dict[str, Any],
             stability: Stability, secret: hub_secret.SecretDoc | None) -> ObservedService:
    arn = str(svc.get("taskDefinition") or "")
    task_def = describe_task_definition(clients, arn) if arn else None
    container = app_container(task_def, name) if task_def else None
    image = container.get("image") if container else None
    # The registry as written is in the family's newest revision, which the next flip-api
    # deployment runs (hub.redeploy moves the service onto it): a run stopped between
    # registry.secret_write and hub.redeploy left it there, and reading the service's
    # current revision would write it again instead of only redeploying.
    pending = _pending_revision(clients, arn) if role == "flip_api" and task_def else None
    written = container
    if pending is not None:
        newest = describe_task_definition(clients, pending)
        written = (app_container(newest, name) if newest else None) or container
    names, names_bad = (parse_trust_names(env_value(written, TASK_ENV_TRUST_NAMES))
                        if written and role == "flip_api" else (None, False))
    registered = (task_def or {}).get("registeredAt")
    loaded = None
    if role == "flip_api" and task_def is not None:
        # E2 reads TRUST_NAMES and the hashes once per process: a deployment that started
        # before the last change, or that runs an older revision, has the old registry.
        loaded = False if pending is not None else _after(
            stability.primary_created, secret.changed if secret else None,
            registered if isinstance(registered, datetime) else None)
    return ObservedService(
        role=role, name=name, exists=True, image=image, tag=image_tag(image),
        trust_names=names, trust_names_malformed=names_bad, stable=stability.stable,
        loaded_current=loaded, task_definition_exists=task_def is not None,
        network=_network(svc), task_definition_arn=arn or None,
        revision=int(task_def["revision"]) if task_def and "revision" in task_def else None,
    )


def _pending_revision(clients: Clients, arn: str) -> str | None:
    """The family's highest ACTIVE revision when it is newer than ``arn`` (one listing)."""
    try:
        family, number = family_and_revision(arn)
    except AdapterError:
        return None
    found = active_revisions(clients, family)
    return found[0][1] if found and found[0][0] > number else None


def registry_era(secret: hub_secret.SecretDoc | None,
                 services: dict[str, ObservedService]) -> ObservedRegistryEra:
    """FG011's evidence: the E2 markers FLIP's files name (main.tf@01328ab0, locals.tf)."""
    evidence = []
    if secret is not None and SECRET_TRUST_HASHES in secret.data:
        evidence.append(f"{secret.name} has {SECRET_TRUST_HASHES}")
    api = services.get("flip_api")
    if api is not None and (api.trust_names is not None or api.trust_names_malformed):
        evidence.append(f"flip-api's container environment has {TASK_ENV_TRUST_NAMES}")
    if evidence:
        return ObservedRegistryEra(era="secret", evidence="; ".join(evidence))
    return ObservedRegistryEra(era="database", evidence=(
        f"neither {SECRET_TRUST_HASHES} in the hub secret nor {TASK_ENV_TRUST_NAMES} in "
        "flip-api's environment: the trust table in the hub database"))


# --- SSM slot pool --------------------------------------------------------------------------


def observe_slot_pool(clients: Clients) -> tuple[str, ...] | None:
    """`/flip/fl_kit_slot_names` as FLIP's seed reads it (fl_kit_slots.py@315baf08): a JSON
    list of strings; anything else FLIP reads as an empty pool, and so do we."""
    resp = call(lambda: clients.ssm.get_parameter(Name=SLOT_POOL_PARAMETER,
                                                  WithDecryption=True),
                doing=f"reading SSM parameter {SLOT_POOL_PARAMETER}",
                missing=("ParameterNotFound",))
    if resp is None:
        return None
    try:
        data = json.loads(resp["Parameter"].get("Value", ""))
    except ValueError:
        return ()
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        return ()
    return tuple(data)


# --- RDS ----------------------------------------------------------------------------------


def describe_db(clients: Clients, identifier: str) -> dict[str, Any] | None:
    resp = call(
        lambda: clients.rds.describe_db_instances(DBInstanceIdentifier=identifier),
        doing=f"describing RDS instance {identifier}",
        missing=("DBInstanceNotFound", "DBInstanceNotFoundFault"),
    )
    dbs = resp["DBInstances"] if resp else []
    return dict(dbs[0]) if dbs else None


def db_tags(clients: Clients, db: dict[str, Any]) -> dict[str, str]:
    """Tags from the describe response; one extra call only when it carries none."""
    tags = db.get("TagList")
    if tags is None and db.get("DBInstanceArn"):
        resp = must(
            lambda: clients.rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"]),
            doing=f"reading tags of RDS instance {db.get('DBInstanceIdentifier')}",
        )
        tags = resp.get("TagList", [])
    return {t["Key"]: t["Value"] for t in tags or [] if "Key" in t and "Value" in t}


def database_from(clients: Clients, identifier: str, db: dict[str, Any] | None
                  ) -> ObservedDatabase:
    if db is None:
        return ObservedDatabase(exists=False, identifier=identifier)
    generation = db_tags(clients, db).get(GENERATION_TAG, "")
    return ObservedDatabase(
        exists=True, identifier=identifier, status=db.get("DBInstanceStatus"),
        deletion_protection=db.get("DeletionProtection"),
        instance_class=db.get("DBInstanceClass"), engine_version=db.get("EngineVersion"),
        backup_retention_days=db.get("BackupRetentionPeriod"),
        generation=int(generation) if generation.isdigit() else None,
        arn=db.get("DBInstanceArn"),
    )


def observe_database(clients: Clients, identifier: str) -> ObservedDatabase:
    return database_from(clients, identifier, describe_db(clients, identifier))


# --- Cognito ------------------------------------------------------------------------------

_MFA = {"ON": "required", "OPTIONAL": "optional", "OFF": "off"}


def observe_cognito(clients: Clients, name: str) -> ObservedCognito:
    pages = must(lambda: list(clients.cognito.get_paginator("list_user_pools").paginate(
        PaginationConfig={"PageSize": 60})), doing=f"listing Cognito user pools ({name})")
    ids = sorted(p["Id"] for page in pages for p in page.get("UserPools", [])
                 if p.get("Name") == name)
    if not ids:
        return ObservedCognito(exists=False, name=name)
    resp = call(lambda: clients.cognito.get_user_pool_mfa_config(UserPoolId=ids[0]),
                doing=f"reading MFA configuration of Cognito user pool {name}",
                missing=("ResourceNotFoundException",))
    if resp is None:
        return ObservedCognito(exists=False, name=name)
    raw = str(resp.get("MfaConfiguration", "OFF"))
    return ObservedCognito(exists=True, name=name, user_pool_id=ids[0],
                           mfa=_MFA.get(raw, raw.lower()))


# --- the hub's admin API ----------------------------------------------------------------


def observe_admin(manifest: Manifest, clients: Clients, endpoints: Endpoints
                  ) -> ObservedAdminApi:
    ref = manifest.hub.admin_token
    if not ref:
        return ObservedAdminApi()
    try:
        token = SecretStr(SecretRefs(clients.region, clients).resolve(ref))
    except (SecretRefError, AdapterError) as exc:
        return ObservedAdminApi(queried=True, ok=False,
                                error=f"hub.admin_token could not be resolved: {exc}")
    return admin_trusts(endpoints, manifest.hub.domain, token)


# --- the hub ------------------------------------------------------------------------------


def observe_account(clients: Clients) -> str | None:
    resp = must(lambda: clients.sts.get_caller_identity(),
                doing="identifying the AWS account (STS)")
    return resp.get("Account")


def observe_hub(manifest: Manifest, clients: Clients, endpoints: Endpoints | None = None,
                *, known_slots: Iterable[str] = ()) -> ObservedHub:
    """Everything architecture.md §4 lists, in a call count independent of the trusts.

    ``known_slots`` (e.g. the ledger's) name the flower kit slices to pick out besides the
    slot pool and the manifest's slots; nvflare lists every slot's directory anyway.
    """
    hub = manifest.hub
    ep = endpoints if endpoints is not None else endpoints_from_env()

    def registry_side() -> tuple[Any, dict[Any, Any], Any]:
        secret, doc = hub_secret.observe_secret(clients, hub.secret)
        services = observe_services(clients, manifest, doc)
        era = registry_era(doc, services)
        if era.era != "secret":
            services = {r: s.model_copy(update={"loaded_current": None})
                        for r, s in services.items()}
        return secret, services, era

    def kit_side() -> tuple[Any, Any]:
        pool = observe_slot_pool(clients)
        slots = {*(pool or ()), *(t.fl_kit_slot for t in manifest.trusts if t.fl_kit_slot),
                 *known_slots}
        return pool, observe_kits(clients, hub.fl_kits.bucket, hub.fl_kits.date,
                                  hub.fl_backend, slots)

    # The reads are independent (two short chains and five single reads), so they run at
    # once: an observation costs about its slowest chain, not the sum of every round trip.
    # boto3 clients are thread-safe; `Clients` creates them under a lock. Results are taken
    # in the order the reads used to run, so the first error reported is the same one.
    with ThreadPoolExecutor(max_workers=7, thread_name_prefix="observe-hub") as pool:
        account = pool.submit(observe_account, clients)
        registry = pool.submit(registry_side)
        kits = pool.submit(kit_side)
        allowlist = pool.submit(observe_allowlist, clients, hub.fl_server.security_group,
                                hub.fl_server.port, hub.fl_server.rule_quota)
        database = pool.submit(observe_database, clients, hub.database.identifier)
        cognito = pool.submit(observe_cognito, clients, hub.cognito.user_pool)
        admin = pool.submit(observe_admin, manifest, clients, ep)
        account_id = account.result()
        secret, services, era = registry.result()
        slot_pool, kit_listing = kits.result()
        return ObservedHub(
            account_id=account_id,
            region=clients.region,
            allowlist=allowlist.result(),
            secret=secret,
            services=services,
            database=database.result(),
            cognito=cognito.result(),
            registry=era,
            slot_pool=slot_pool,
            kits=kit_listing,
            admin=admin.result(),
        )


class AwsHubReader:
    """The read-side object the engine holds; a thin wrapper for injection."""

    def __init__(self, clients: Clients, endpoints: Endpoints | None = None) -> None:
        self.clients = clients
        self.endpoints = endpoints

    def observe_hub(self, manifest: Manifest, *, known_slots: Iterable[str] = ()
                    ) -> ObservedHub:
        return observe_hub(manifest, self.clients, self.endpoints, known_slots=known_slots)
