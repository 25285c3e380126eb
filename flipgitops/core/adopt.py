"""adopt: the manifest and ledger that describe a FLIP deployment flipgitops did not set up.

Pure. Given the manifest as it stands (perhaps a *starting* manifest with placeholders, see
docs/adopt.md) and one observation of the live hub and of the hosts it names, `adopt()`
works out:

- the edits that make the manifest describe what runs, each with its evidence: the
  registry era and image tags from the hub's services, the database and Cognito settings
  from AWS, the FLIP ref from the hosts' files, the hub-shared values (domain, header, FL
  endpoint, kit bucket and date) from the kit files FLIP's scripts wrote, and per trust its
  code, region, slot, public IP and the kit-file values that differ from flipgitops'
  defaults (`settings`), so the kit file flipgitops renders later equals what runs;
- per trust, whether flipgitops can hold its keys: the kit file's key is the one the hub
  accepts (secret era: its sha256 is FLIP_API's `trust_api_key_hashes[name]`; database era,
  whose hub exposes no hashes: trust-api on that host authenticated as the trust since its
  start with no 401 after, runs on the kit file as it is now, and, when an admin token is
  configured, the admin API lists the trust), and the ledger entry to write (`held=True`
  with the hashes, `held=False` for a trust the hub has whose key flipgitops cannot hold).

Nothing here rotates, registers or redelivers anything; `unmanaged()` lists what the
adopted manifest does not describe (rules without a trust, trusts without a rule, registry
names without a manifest trust), and the engine predicts the plan with the real planner.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from flipgitops.core import kitfile
from flipgitops.core.allowlist import cidr_of, ip_of
from flipgitops.core.world import World
from flipgitops.model import flip
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, local_credentials_fingerprint
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import LedgerTrust, ObservedHost, ObservedLedger, ObservedState


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Final = _Remove()
Path = tuple[str | int, ...]
Verdict = Literal["held", "already held", "not held", "unconfirmed", "skipped"]
# The kit-file keys adopt reads from a host for the escrow (never shown, never logged).
KEY_FIELDS: Final = ("TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY")

_NOT_HELD_MEANS = ("flipgitops cannot redeliver that key (it never rewrites the trust's kit "
                   "file or restarts its stack); rotating it is a separate, explicit decision "
                   "(bump credentials_generation)")


@dataclass(frozen=True)
class Edit:
    """One change to the manifest file: ``value`` is a scalar, ``REMOVE``, or a mapping
    (merged: keys that stay keep their place and comments, others are removed or added)."""

    path: Path
    value: Any
    why: str


@dataclass(frozen=True)
class TrustAdoption:
    name: str
    kind: str
    verdict: Verdict
    reasons: tuple[str, ...] = ()  # the evidence, or why not
    notes: tuple[str, ...] = ()  # what the manifest cannot describe exactly
    ledger: LedgerTrust | None = None  # the entry to write (None: none)
    code: str | None = None
    slot: str | None = None
    slot_number: int | None = None
    trust_id: str | None = None  # EXPECTED_TRUST_ID, when the kit file sets it
    release: str | None = None  # the FLIP ref its host's trust/ holds
    # For the escrow (held trusts): the keys to read and the sha256 each must have.
    expected_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def escrow(self) -> bool:
        return self.verdict == "held"

    @property
    def not_held_means(self) -> str:
        return _NOT_HELD_MEANS


@dataclass(frozen=True)
class Adoption:
    edits: tuple[Edit, ...]
    trusts: tuple[TrustAdoption, ...]
    problems: tuple[str, ...] = ()  # hub-wide things the manifest cannot describe exactly
    fatal: tuple[str, ...] = ()  # nothing may be written (the wrong account, ...)

    def trust(self, name: str) -> TrustAdoption | None:
        return next((t for t in self.trusts if t.name == name), None)


# --- kit files ------------------------------------------------------------------------------


def discover_codes(d: Manifest, o: ObservedState) -> dict[str, str]:
    """Trusts whose kit file is not under the manifest's code while their host holds exactly
    one kit file for the environment's token: that file's code (`.env.<CODE>.<token>`)."""
    token = "." + flip.env_token(d.environment)
    out: dict[str, str] = {}
    for t in d.trusts:
        host = o.hosts.get(t.name)
        if not t.has_host or host is None or not host.reachable or host.kit_file.present:
            continue
        if len(host.kit_file.others) != 1:
            continue
        name = host.kit_file.others[0]
        code = name.removeprefix(".env.").removesuffix(token)
        if name.startswith(".env.") and name.endswith(token) and flip.TRUST_CODE_RE.fullmatch(code):
            out[t.name] = code
    return out


def _kits(d: Manifest, o: ObservedState) -> list[tuple[str, dict[str, str]]]:
    """(trust, non-secret kit-file values) of every reachable host whose kit file is there."""
    out = []
    for t in d.trusts:
        host = o.hosts.get(t.name)
        if t.has_host and host is not None and host.reachable and host.kit_file.present:
            out.append((t.name, dict(host.kit_file.values)))
    return out


def _consensus(found: Sequence[tuple[str, str | None]]) -> tuple[str | None, list[str]]:
    """The most common value and the trusts whose value is another."""
    values = [v for _, v in found if v is not None]
    if not values:
        return None, []
    best = Counter(values).most_common(1)[0][0]
    return best, [n for n, v in found if v is not None and v != best]


# --- the whole ------------------------------------------------------------------------------


def adopt(d: Manifest, o: ObservedState, *, codes: Mapping[str, str] | None = None) -> Adoption:
    """The edits and per-trust verdicts for manifest ``d`` over observation ``o``. ``codes``
    are trusts whose kit file was found under another code (`discover_codes`): their facts
    in ``o`` were gathered with it."""
    codes = dict(codes or {})
    edits: list[Edit] = []
    problems: list[str] = []
    fatal: list[str] = []
    hub = o.hub

    def edit(path: Path, current: Any, value: Any, why: str) -> None:
        if value is not REMOVE and value == current:
            return
        if value is REMOVE and current is None:
            return
        edits.append(Edit(path, value, why))

    if hub.account_id is not None and hub.account_id != d.aws.account_id:
        fatal.append(f"the AWS credentials are for account {hub.account_id}, the manifest for "
                     f"{d.aws.account_id} (FG006): adopt the deployment with credentials for "
                     "its own account, or fix aws.account_id")
    if hub.region is not None and hub.region != d.aws.region:
        fatal.append(f"the AWS region is {hub.region}, the manifest's {d.aws.region} (FG006)")

    era = hub.registry.era
    edit(("hub", "trust_registry"), d.hub.trust_registry, era,
         f"the live hub keeps a {era} registry ({hub.registry.evidence})")
    adopted = d.model_copy(update={"hub": d.hub.model_copy(update={"trust_registry": era})})
    world = World(adopted, o)

    _hub_images(d, o, edit, problems)
    kits = _kits(d, o)
    _hub_shared(d, o, kits, edit, problems)
    _database(d, o, edit, problems)
    _release(d, o, edit, problems)
    db_target = (o.hub.database.generation or 1) if o.hub.database.exists else \
        d.hub.database.generation

    trusts = []
    for index, t in enumerate(d.trusts):
        ta = _trust(d, o, world, index, t, codes.get(t.name), db_target, edit)
        trusts.append(ta)
    return Adoption(tuple(edits), tuple(trusts), tuple(problems), tuple(fatal))


def _hub_images(d: Manifest, o: ObservedState, edit: Any, problems: list[str]) -> None:
    services = o.hub.services
    api, fl_api, fl_server = (services.get(r) for r in flip.HUB_ROLES)
    names = d.hub.ecs.services
    if api is not None and api.exists and api.tag:
        edit(("hub", "images", "hub_tag"), d.hub.images.hub_tag, api.tag,
             f"{names.flip_api} runs {api.image}")
        if api.image and "/" in api.image:
            registry = flip.image_repository(api.image).rpartition("/")[0]
            edit(("hub", "images", "registry"), d.hub.images.registry, registry,
                 f"{names.flip_api}'s image is {api.image}")
    else:
        problems.append(f"ECS service {names.flip_api} was not found (or has no image tag): "
                        "hub.images.hub_tag is left as it is")
    fl = [(s.name, s.tag) for s in (fl_api, fl_server) if s is not None and s.exists and s.tag]
    if fl:
        tag = fl[0][1]
        if len({t for _, t in fl}) > 1:
            problems.append(f"{' and '.join(f'{n} runs {t}' for n, t in fl)}: fl_tag is set to "
                            f"{tag}; plan will move the other one to it")
        edit(("hub", "images", "fl_tag"), d.hub.images.fl_tag, tag,
             f"{fl[0][0]} runs {tag}")
    image = fl_api.image if fl_api is not None and fl_api.exists else None
    backend = _backend_of(image)
    if backend is not None:
        edit(("hub", "fl_backend"), d.hub.fl_backend, backend, f"{names.fl_api} runs {image}")


def _backend_of(image: str | None) -> flip.FlBackend | None:
    """fl_backend.mk's image names: flare-fl-api (nvflare), flower-fl-api (flower)."""
    if not image:
        return None
    repo = flip.image_repository(image).rpartition("/")[2]
    return "flower" if repo.startswith("flower-") else "nvflare" if repo.startswith(
        "flare-") else None


def _hub_shared(d: Manifest, o: ObservedState, kits: list[tuple[str, dict[str, str]]],
                edit: Any, problems: list[str]) -> None:
    """The hub-shared block and FL kit bucket every kit file carries (FLIP's sync-trust-kit
    writes the same values into each), by consensus."""
    if not kits:
        problems.append("no host's kit file could be read: the hub's domain, FL endpoint and "
                        "FL kit bucket/date are left as the manifest has them")
        return

    def agreed(key: str) -> str | None:
        value, others = _consensus([(n, v.get(key)) for n, v in kits])
        if others:
            problems.append(f"{key} differs between kit files ({', '.join(others)} hold "
                            f"another value than {value!r}): plan will rewrite theirs")
        return value

    url = agreed("CENTRAL_HUB_API_URL")
    domain = url.removeprefix("https://").removesuffix("/api") if url else None
    if url and (not url.startswith("https://") or not url.endswith("/api") or not domain
                or "/" in domain):
        problems.append(f"CENTRAL_HUB_API_URL {url!r} is not https://<domain>/api: hub.domain "
                        "is left as it is and plan will rewrite the kit files")
        domain = None
    if domain:
        edit(("hub", "domain"), d.hub.domain, domain, f"the kit files' CENTRAL_HUB_API_URL {url}")
    header = agreed("TRUST_API_KEY_HEADER")
    if header:
        edit(("hub", "trust_api_key_header"), d.hub.trust_api_key_header, header,
             "the kit files' TRUST_API_KEY_HEADER")
    backend = o.hub.services.get("fl_api")
    if backend is None or _backend_of(backend.image) is None:
        value = agreed("FL_BACKEND")
        if value in ("nvflare", "flower"):
            edit(("hub", "fl_backend"), d.hub.fl_backend, value, "the kit files' FL_BACKEND")
    port = agreed("FL_SERVER_PORT")
    if port and port.isdigit():
        edit(("hub", "fl_server", "port"), d.hub.fl_server.port, int(port),
             "the kit files' FL_SERVER_PORT")
    nlb = agreed("NLB_SUBDOMAIN")
    base = domain or d.hub.domain
    if nlb:
        hostname = REMOVE if nlb == f"fl.{base}" else nlb
        edit(("hub", "fl_server", "hostname"), d.hub.fl_server.hostname, hostname,
             f"the kit files' NLB_SUBDOMAIN {nlb}")
    bucket = agreed("AICENTRE_BUCKET_NAME")
    if bucket:
        edit(("hub", "fl_kits", "bucket"), d.hub.fl_kits.bucket, bucket,
             "the kit files' AICENTRE_BUCKET_NAME")
    backend_name = _backend_of(backend.image if backend else None) or d.hub.fl_backend
    key = flip.kit_date_key(backend_name)
    date = agreed(key)
    if date:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date):
            edit(("hub", "fl_kits", "date"), d.hub.fl_kits.date, date, f"the kit files' {key}")
        else:
            problems.append(f"{key} {date!r} is not YYYY-MM-DD, as fl_kits.date must be: it is "
                            "left as it is and plan will rewrite the kit files")


def _database(d: Manifest, o: ObservedState, edit: Any, problems: list[str]) -> None:
    db, want = o.hub.database, d.hub.database
    if db.exists:
        path = ("hub", "database")
        edit((*path, "generation"), want.generation, db.generation or 1,
             "RDS tag flipgitops:generation" if db.generation else "no generation tag: 1")
        for name in ("instance_class", "engine_version", "backup_retention_days"):
            value = getattr(db, name)
            if value is not None:
                edit((*path, name), getattr(want, name), value, f"RDS {db.identifier}")
        if db.deletion_protection is not None:
            if d.is_prod and not db.deletion_protection:
                problems.append(f"deletion protection of {db.identifier} is off: a prod manifest "
                                "keeps deletion_protection: true, so plan will turn it back on "
                                "(FG002), the one AWS change it will make")
            elif not d.is_prod:
                edit((*path, "deletion_protection"), want.deletion_protection,
                     db.deletion_protection, f"RDS {db.identifier}")
    else:
        problems.append(f"RDS instance {d.hub.database.identifier} was not found: "
                        "hub.database is left as it is")
    cog = o.hub.cognito
    if cog.exists and cog.mfa in ("off", "optional", "required"):
        edit(("hub", "cognito", "mfa"), d.hub.cognito.mfa, cog.mfa,
             f"Cognito {cog.name}'s MFA configuration")


def _release(d: Manifest, o: ObservedState, edit: Any, problems: list[str]) -> str | None:
    found = []
    for t in d.trusts:
        host = o.hosts.get(t.name)
        if t.has_host and host is not None and host.reachable:
            rel = host.release
            found.append((t.name, rel.ref if rel.ref and rel.intact else None))
    ref, others = _consensus(found)
    if ref is None:
        if found:
            problems.append("no host's trust/ directory holds a release of flip.checkout as git "
                            "has it: flip.ref is left as it is, and plan will deploy it")
        return None
    if others:
        problems.append(f"the hosts run different FLIP releases ({', '.join(others)} not "
                        f"{ref}): plan will deploy {ref} to them")
    missing = [n for n, r in found if r is None]
    if missing:
        problems.append(f"{', '.join(missing)}: trust/ is no release of flip.checkout as git "
                        f"has it (edited files?): plan will deploy {ref} there")
    edit(("flip", "ref"), d.flip.ref, ref, "the hosts' trust/ files are that release's")
    return ref


# --- one trust ------------------------------------------------------------------------------


def _trust(d: Manifest, o: ObservedState, world: World, index: int, t: Trust,
           new_code: str | None, db_target: int, edit: Any) -> TrustAdoption:
    path: Path = ("trusts", index)
    era = world.registry
    held_entry = o.ledger.trusts.get(t.name)
    if t.state == "decommissioned":
        return TrustAdoption(t.name, t.kind, "skipped",
                             ("decommissioned in the manifest: adopt leaves it to plan",))
    notes: list[str] = []
    reasons: list[str] = []
    host = o.hosts.get(t.name) if t.has_host else None
    code = new_code or t.code
    if new_code:
        edit((*path, "code"), t.code, new_code,
             f"its host's only kit file is {flip.kit_file_name(new_code, d.environment)}")
    values: dict[str, str] = {}
    hashes: dict[str, str] = {}
    if host is not None and host.reachable and host.kit_file.present:
        values = dict(host.kit_file.values)
        hashes = dict(host.kit_file.secret_sha256)

    ip = _public_ip(d, world, t, host, notes)
    edit((*path, "public_ip"), t.public_ip, ip.value, ip.why)

    slot = values.get("FL_KIT_SLOT") or None
    number = _int(values.get("FL_KIT_SLOT_NUMBER"))
    if slot:
        edit((*path, "fl_kit_slot"), t.fl_kit_slot, slot, "the kit file's FL_KIT_SLOT")
        if number is not None and number != flip.slot_number(slot):
            notes.append(f"FL_KIT_SLOT_NUMBER {number} is not FLIP's number of {slot} "
                         f"({flip.slot_number(slot)})")
    elif t.fl_kit_slot:
        slot, number = t.fl_kit_slot, flip.slot_number(t.fl_kit_slot)
    trust_id = values.get("EXPECTED_TRUST_ID") or None
    release = host.release.ref if host is not None and host.reachable and host.release.intact \
        else None

    if values:
        region = values.get("TRUST_REGION") or None
        edit((*path, "region"), t.region, region if region else REMOVE,
             "the kit file's TRUST_REGION" if region else "the kit file has no TRUST_REGION")
        adopted = t.model_copy(update={"code": code, "region": region, "settings": {}})
        fl_dir: str | None = None
        try:
            settings = adopted_settings(d, adopted, values, slot_number=number or 0)
            fl_dir = kitfile.host_profile(d, adopted, slot_number=number).get("FL_KIT_DIR")
        except kitfile.KitFileError as exc:
            notes.append(f"its settings cannot be worked out: {exc}")
            settings = dict(t.settings)
        extra = sorted(set(values) - set(kitfile.ALL_KEYS))
        if extra:
            notes.append("kit-file keys flipgitops does not write: " + ", ".join(extra[:8])
                         + (" …" if len(extra) > 8 else "") + " (a kit file flipgitops "
                         "writes later will not have them)")
        if fl_dir is not None and values.get("FL_KIT_DIR") not in (None, fl_dir):
            notes.append(f"FL_KIT_DIR is {values['FL_KIT_DIR']}, flipgitops keeps the FL kit "
                         f"in {fl_dir} (not a setting): plan will rewrite the kit file and "
                         "deliver the FL kit there")
        if settings != dict(t.settings):
            edit((*path, "settings"), dict(t.settings) or None, settings or REMOVE,
                 "the kit file's values that differ from flipgitops' defaults")
        if values.get("TRUST_NAME") not in (None, t.name):
            notes.append(f"the kit file's TRUST_NAME is {values['TRUST_NAME']!r}; flipgitops "
                         f"writes the trust's name {t.name!r} there")
        if values.get("TRUST_CODE") not in (None, code):
            notes.append(f"the kit file's TRUST_CODE is {values['TRUST_CODE']!r}, its file "
                         f"name says {code!r}")

    # -- the keys ------------------------------------------------------------------------
    already = (f"flipgitops' ledger already holds its key (source "
               f"{held_entry.source}): plan compares the host with it",) \
        if held_entry is not None and held_entry.held else ()
    if already and held_entry is not None and held_entry.source != "adopt":
        return TrustAdoption(t.name, t.kind, "already held", already, tuple(notes), None,
                             code, slot, number, trust_id, release)
    in_hub = _in_hub(world, t.name, host)
    checks, expected = _key_evidence(d, o, world, t, host, values, hashes)
    if already and not checks.ok:
        # an earlier adoption holds a key this observation cannot confirm: kept, not undone
        return TrustAdoption(t.name, t.kind, "already held", (*already, *checks.reasons),
                             tuple(notes), None, code, slot, number, trust_id, release)
    local = {k: v for k, v in hashes.items() if k in LOCAL_CREDENTIAL_KEYS}
    if checks.ok:
        missing = [k for k in LOCAL_CREDENTIAL_KEYS if k not in local]
        if missing:
            notes.append("trust-local credentials not in the kit file: " + ", ".join(missing)
                         + " (flipgitops mints them when it next writes the kit file)")
        entry = LedgerTrust(
            credentials_generation=t.credentials_generation, database_generation=db_target,
            registry=era, trust_id=trust_id, fl_kit_slot=slot, fl_kit_slot_number=number,
            api_key_sha256=hashes["TRUST_API_KEY"],
            internal_key_sha256=hashes["TRUST_INTERNAL_SERVICE_KEY"],
            local_credentials_sha256=local_credentials_fingerprint(local) if local else None,
            held=True, source="adopt")
        expected.update(local)
        return TrustAdoption(t.name, t.kind, "held", tuple(checks.reasons), tuple(notes), entry,
                             code, slot, number, trust_id, release, expected)
    reasons = list(checks.reasons)
    record: LedgerTrust | None = None
    if in_hub.known:
        reasons.append(in_hub.why)
        record = LedgerTrust(credentials_generation=t.credentials_generation,
                            database_generation=db_target, registry=era, trust_id=trust_id,
                            fl_kit_slot=slot, fl_kit_slot_number=number, held=False,
                            source="adopt")
    else:
        reasons.append(in_hub.why)
    return TrustAdoption(t.name, t.kind, "not held" if record is not None else "unconfirmed",
                         tuple(reasons), tuple(notes), record, code, slot, number, trust_id,
                         release)


def adopted_settings(d: Manifest, trust: Trust, values: Mapping[str, str], *,
                     slot_number: int) -> dict[str, str]:
    """The `settings` under which flipgitops' kit file has the host's values: every settings
    key whose value differs from flipgitops' default; a key the file leaves out is `""`
    (FLIP's readers treat the two alike) unless the default is empty too."""
    defaults = kitfile.public_values(d, trust.model_copy(update={"settings": {}}), slot="",
                                     slot_number=slot_number, trust_id="")
    out: dict[str, str] = {}
    for key in sorted(kitfile.SETTINGS_KEYS):
        default = defaults.get(key, "")
        have = values.get(key)
        if have is None:
            if default != "":
                out[key] = ""
        elif have != default:
            out[key] = have
    return out


@dataclass(frozen=True)
class _Ip:
    value: str
    why: str


def _public_ip(d: Manifest, world: World, t: Trust, host: ObservedHost | None,
               notes: list[str]) -> _Ip:
    rules = world.o.hub.allowlist.rules
    cidrs = {r.cidr for r in rules}
    managed = sorted(r.cidr for r in rules if r.managed_trust == t.name)
    egress = host.egress_ip if host is not None and host.reachable else None
    if managed:
        if egress and cidr_of(egress) not in managed:
            notes.append(f"it egresses from {egress}, its flipgitops rule is {managed[0]}")
        return _Ip(ip_of(managed[0]), f"the ingress rule flipgitops:{t.name}")
    if egress:
        if cidr_of(egress) not in cidrs:
            notes.append(f"no ingress rule opens the FL port to its egress IP {egress}: plan "
                         "will add one")
        return _Ip(egress, f"its host egresses from {egress}"
                   + (" and an ingress rule opens the FL port to it"
                      if cidr_of(egress) in cidrs else ""))
    if cidr_of(t.public_ip) not in cidrs:
        notes.append(f"no ingress rule opens the FL port to public_ip {t.public_ip} and its "
                     "egress IP is unknown: check the IP (plan will add a rule for it)")
    return _Ip(t.public_ip, "the manifest's")


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True)
class _Known:
    known: bool
    why: str


def _in_hub(world: World, name: str, host: ObservedHost | None) -> _Known:
    """Does the hub itself know ``name`` (evidence of the hub, not of flipgitops)?"""
    if world.registry == "secret":
        if name in world.secret_names:
            return _Known(True, "the hub has it (TRUST_NAMES and trust_api_key_hashes)")
        return _Known(False, "the hub's TRUST_NAMES / trust_api_key_hashes do not list it")
    admin = world.admin_names
    if admin is not None:
        return (_Known(True, "the hub's admin API lists it") if name in admin else
                _Known(False, "the hub's admin API does not list it"))
    if host is not None and host.reachable and host.trust_api.authenticated_as == name:
        return _Known(True, "its trust-api authenticated to the hub as it")
    return _Known(False, "whether the hub has it cannot be read (database registry; set "
                  "hub.admin_token so the admin API can say): no ledger entry is written, so "
                  "plan offers to register it (FLIP returns a kit without keys for a name it "
                  "has, nothing is re-keyed)")


@dataclass
class _Checks:
    ok: bool = False
    reasons: list[str] = field(default_factory=list)


def _key_evidence(d: Manifest, o: ObservedState, world: World, t: Trust,
                  host: ObservedHost | None, values: Mapping[str, str],
                  hashes: Mapping[str, str]) -> tuple[_Checks, dict[str, str]]:
    """Whether the key in ``t``'s kit file is the one the hub accepts."""
    out = _Checks()
    if not t.has_host:
        out.reasons.append("a tre trust: its kit went out of band, flipgitops never sees a key")
        return out, {}
    if host is None or not host.reachable:
        why = host.reason if host is not None else "no facts gathered"
        out.reasons.append(f"its host is unreachable ({why})")
        return out, {}
    if not host.kit_file.present:
        out.reasons.append(f"its host has no kit file "
                           f"{flip.kit_file_name(t.code, d.environment)}")
        return out, {}
    api, internal = hashes.get("TRUST_API_KEY"), hashes.get("TRUST_INTERNAL_SERVICE_KEY")
    if not api:
        out.reasons.append("its kit file has no TRUST_API_KEY")
        return out, {}
    if not internal:
        out.reasons.append("its kit file has no TRUST_INTERNAL_SERVICE_KEY, so flipgitops "
                           "could not hold a whole kit")
        return out, {}
    aes = o.hub.secret.aes_key_sha256
    if aes and hashes.get("AES_KEY_BASE64") not in (None, aes):
        out.reasons.append("(its AES_KEY_BASE64 is not the hub's: FLIP's stale-kit case; plan "
                           "will rewrite its kit file with the hub's)")
    if world.registry == "secret":
        want = (o.hub.secret.trust_api_key_hashes or {}).get(t.name)
        if want is None or t.name not in world.secret_names:
            out.reasons.append("FLIP_API's trust_api_key_hashes / TRUST_NAMES do not list it")
            return out, {}
        if want != api:
            out.reasons.append(f"its kit file's key does not match the hub's: sha256 of the key "
                               f"is {api[:12]}, trust_api_key_hashes[{t.name}] is {want[:12]}")
            return out, {}
        out.reasons.append("sha256 of its kit file's TRUST_API_KEY is FLIP_API's "
                           f"trust_api_key_hashes[{t.name}]")
    else:
        ev = host.trust_api
        api_c = host.container(flip.TRUST_API_SERVICE)
        if ev.authenticated_as is not None and ev.authenticated_as != t.name:
            out.reasons.append(f"its trust-api authenticated as {ev.authenticated_as!r}: the "
                               "kit file holds another trust's key")
            return out, {}
        if ev.unauthorized or ev.heartbeat_rejected:
            out.reasons.append("its kit file's key does not match the hub's: trust-api is "
                               f"rejected ({ev.last_error or '401'})")
            return out, {}
        if ev.authenticated_as != t.name:
            out.reasons.append("its trust-api has not logged `Authenticated to hub as trust "
                               f"'{t.name}'` since it started (is it running?)")
            return out, {}
        expected = host.expected_config.get(flip.TRUST_API_SERVICE)
        if api_c is None or not expected or api_c.config_hash != expected:
            out.reasons.append("its trust-api does not run on the kit file as it is now (the "
                               "file changed after trust-api started), so the key it "
                               "authenticated with may not be the file's")
            return out, {}
        if values.get("EXPECTED_TRUST_ID") and ev.trust_id and \
                values["EXPECTED_TRUST_ID"] != ev.trust_id:
            out.reasons.append(f"the hub identifies it as {ev.trust_id}, its kit file's "
                               f"EXPECTED_TRUST_ID is {values['EXPECTED_TRUST_ID']}")
            return out, {}
        out.reasons.append(f"its trust-api authenticated to the hub as {t.name!r} since it "
                           "started, with no 401 after, on the kit file as it is")
        admin = world.admin_names
        if admin is not None:
            if t.name not in admin:
                out.reasons.append("but the hub's admin API does not list it")
                return out, {}
            out.reasons.append("the hub's admin API lists it")
    out.ok = True
    return out, {"TRUST_API_KEY": api, "TRUST_INTERNAL_SERVICE_KEY": internal}


# --- after adoption ---------------------------------------------------------------------------


def with_adoption(ledger: ObservedLedger, trusts: Sequence[TrustAdoption]) -> ObservedLedger:
    """The ledger with the adoption's entries: an entry flipgitops itself holds a key for
    is never replaced; an adopted entry is replaced by a newer adoption of the same trust."""
    entries = dict(ledger.trusts)
    for ta in trusts:
        if ta.ledger is None:
            continue
        current = entries.get(ta.name)
        if current is not None and current.held and current.source != "adopt":
            continue
        entries[ta.name] = ta.ledger
    return ledger.model_copy(update={"trusts": entries, "exists": True})


def not_held(ta: TrustAdoption, reason: str, *, hub_has_it: bool) -> TrustAdoption:
    """``ta`` when its key could not be escrowed after all (the host changed since its facts
    were read, the read failed): held by nobody; the ledger says so only if the hub has it."""
    entry = None
    if hub_has_it and ta.ledger is not None:
        entry = ta.ledger.model_copy(update={
            "held": False, "api_key_sha256": None, "internal_key_sha256": None,
            "local_credentials_sha256": None})
    return TrustAdoption(ta.name, ta.kind, "not held" if entry else "unconfirmed",
                         (*ta.reasons, reason), ta.notes, entry, ta.code, ta.slot,
                         ta.slot_number, ta.trust_id, ta.release)


def unmanaged(d: Manifest, o: ObservedState) -> tuple[str, ...]:
    """What the (adopted) manifest does not describe: listed, never fixed by adopt."""
    w = World(d, o)
    port = d.hub.fl_server.port
    out = [f"ingress rule {r.cidr} on TCP {port}"
           + (f" ({r.description})" if r.description else "") + ": no manifest trust has "
           "that IP" for r in w.attribution.orphans]
    for t in w.present:
        if o.hub.allowlist.exists and not w.attribution.cidrs(t.name):
            out.append(f"{t.name}: no ingress rule opens the FL port to {t.public_ip}")
    for name in sorted(w.unmanaged_names):
        if w.registry == "secret" and name in w.secret_listed:
            where = "the hub's TRUST_NAMES / trust_api_key_hashes"
        elif w.admin_names is not None and name in w.admin_names:
            where = "the hub's admin API"
        elif name in o.ledger.trusts:
            where = "flipgitops' ledger"
        else:
            where = "an ingress rule's description"
        out.append(f"{name}: in {where}, not in the manifest")
    for t in d.trusts:
        host = o.hosts.get(t.name)
        if host is not None and host.reachable and host.kit_file.others:
            out.append(f"{t.name}'s host also holds " + ", ".join(host.kit_file.others)
                       + " (another trust's kit file for this environment)")
    return tuple(out)
