"""Action ids: stable, deterministic, one function or constant each (a typo is a NameError,
never a silently missing ordering edge).

    registry.register:<trust>     registry.delete:<trust>     credentials.mint:<trust>
    registry.secret_write         ledger.migrate              hub.deploy_images
    hub.redeploy:<role>           hub.rotate_internal_key
    allowlist.update              allowlist.revoke            terraform.apply
    terraform.apply:revoke        host.<step>:<trust>
    database.snapshot  database.reset_schema  database.restore_protection

``allowlist.revoke`` / ``terraform.apply:revoke`` exist only when one plan both removes
trusts (revoke before deregistering) and adds rules (after registering); one batch could
not satisfy both orders.
"""

from __future__ import annotations

from flipgitops.model.actions import ActionKind

K = ActionKind

LEDGER_MIGRATE = str(K.LEDGER_MIGRATE)
SECRET_WRITE = str(K.REGISTRY_SECRET_WRITE)
DEPLOY_IMAGES = str(K.HUB_DEPLOY_IMAGES)
ROTATE_INTERNAL_KEY = str(K.HUB_ROTATE_INTERNAL_KEY)
ALLOWLIST = str(K.ALLOWLIST_UPDATE)
ALLOWLIST_REVOKE = "allowlist.revoke"
TERRAFORM = str(K.TERRAFORM_APPLY)
TERRAFORM_REVOKE = "terraform.apply:revoke"
SNAPSHOT = str(K.DATABASE_SNAPSHOT)
RESET_SCHEMA = str(K.DATABASE_RESET_SCHEMA)
RESTORE_PROTECTION = str(K.DATABASE_RESTORE_PROTECTION)


def of(kind: ActionKind, target: str) -> str:
    return f"{kind}:{target}"


def register(trust: str) -> str:
    return of(K.REGISTRY_REGISTER, trust)


def delete(trust: str) -> str:
    return of(K.REGISTRY_DELETE, trust)


def mint(trust: str) -> str:
    return of(K.CREDENTIALS_MINT, trust)


def redeploy(role: str) -> str:
    return of(K.HUB_REDEPLOY, role)


def host(kind: ActionKind, trust: str) -> str:
    return of(kind, trust)
