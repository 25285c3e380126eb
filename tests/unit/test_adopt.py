"""`flipgitops adopt`'s pure parts: what it makes of a FLIP deployment flipgitops did not set
up (core/adopt.py), how it edits the manifest file (core/manifest_edit.py), and the facts
that let `plan` leave such a world alone (core/facts.py: a FLIP-delivered FL kit, a kit
file without a key).

The worlds are `tests/builders.py`'s in-sync observations with every trace of flipgitops
removed (no ledger, no deploy or delivery record), as FLIP's own procedures leave a host.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flipgitops.adapters import kit_listing
from flipgitops.core import adopt as core
from flipgitops.core.facts import differing
from flipgitops.core.manifest_edit import apply_edits, detect_indent
from flipgitops.core.parse import parse_manifest
from flipgitops.core.planner import plan
from flipgitops.core.world import World
from flipgitops.model import flip
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import (
    AdminTrust,
    IngressRule,
    KitSlice,
    LedgerTrust,
    ObservedAdminApi,
    ObservedFlKit,
    ObservedLedger,
    ObservedState,
    ObservedTrustApi,
)
from flipgitops.reconcilers.ansible.flipgitops_host import flkit
from tests.builders import (
    key_hash,
    manifest,
    observed_matching,
    rule_for,
    slot_fingerprint,
    trust,
    unreachable,
    with_account,
    with_allowlist,
    with_host,
    with_ledger,
    with_secret,
)

# --- a world FLIP's own procedures left --------------------------------------------------------


def flip_way(m: Manifest, *, admin: bool = False) -> ObservedState:
    """``m``'s world with nothing of flipgitops in it: no ledger, FLIP's Terraform rules,
    each host's trust/ recognised by its files and its FL kit by the bucket listing."""
    o = observed_matching(m)
    rules = [rule_for(m, t.name, t.public_ip,
                      description=f"{flip.TERRAFORM_TRUST_RULE_PREFIX} ({t.public_ip})")
             for t in m.trusts if t.is_present]
    o = with_allowlist(o, rules=tuple(rules))
    hosts = {}
    for name, host in o.hosts.items():
        slot = o.ledger.trusts[name].fl_kit_slot or ""
        kit = ObservedFlKit(present=True, content_sha256=host.fl_kit.content_sha256,
                            fqsn=slot, listed_fingerprint=slot_fingerprint(m, slot))
        t = m.trust(name)
        assert t is not None
        hosts[name] = host.model_copy(update={
            "fl_kit": kit, "egress_ip": t.public_ip,
            "release": host.release.model_copy(update={"evidence": "files"})})
    o = o.model_copy(update={"hosts": hosts, "ledger": ObservedLedger()})
    if admin:
        listed = tuple(AdminTrust(name=t.name) for t in m.trusts if t.is_present)
        o = o.model_copy(update={"hub": o.hub.model_copy(update={
            "admin": ObservedAdminApi(queried=True, ok=True, trusts=listed)})})
    return o


def text_of(m: Manifest, **overrides: Any) -> str:
    """The manifest as an operator's YAML file (only what differs from the defaults)."""
    data = m.model_dump(mode="json", exclude_defaults=True)
    data.update(overrides)
    out = io.StringIO()
    out.write("# yaml-language-server: $schema=../schemas/flip-environment.schema.json\n")
    YAML().dump(data, out)
    return out.getvalue()


def starting(m: Manifest) -> Manifest:
    """A starting manifest for ``m``'s deployment: placeholders wherever adopt finds out
    (a tre trust keeps its real public_ip: nothing on a host can tell it)."""
    trusts = [t if t.kind == "tre" else t.model_copy(update={
        "public_ip": f"198.51.100.{i + 100}",
        "fl_kit_slot": None if m.hub.trust_registry == "database" else f"Placeholder_{i}"})
        for i, t in enumerate(m.trusts)]
    hub = m.hub.model_copy(update={
        "trust_registry": "database",
        "images": m.hub.images.model_copy(update={"hub_tag": "v0.0.1", "fl_tag": "v0.0.1"}),
        "fl_kits": m.hub.fl_kits.model_copy(update={"date": "2000-01-01",
                                                   "bucket": "placeholder"}),
        "domain": "placeholder.example.org",
    })
    return m.model_copy(update={"hub": hub, "trusts": trusts,
                                "flip": m.flip.model_copy(update={"ref": "v0.0.0"})})


def adopt_file(d: Manifest, o: ObservedState) -> tuple[core.Adoption, Manifest]:
    adoption = core.adopt(d, o)
    assert not adoption.fatal
    adopted = parse_manifest(apply_edits(text_of(d), adoption.edits), "environments/dev.yaml")
    return adoption, adopted


def after(adoption: core.Adoption, o: ObservedState) -> ObservedState:
    return o.model_copy(update={"ledger": core.with_adoption(o.ledger, adoption.trusts)})


@pytest.mark.parametrize("registry", ["database", "secret"])
def test_adopting_a_flip_way_world_describes_it_and_plan_then_does_nothing(
        registry: str) -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2"), trust("Trust_3", kind="tre")],
                 registry=registry)
    o = flip_way(m, admin=registry == "database")
    d = starting(m)
    before = plan(d, o)
    assert before.actions  # the starting manifest alone would act (re-key, register, deploy)

    adoption, adopted = adopt_file(d, o)

    assert adopted.hub.trust_registry == registry
    assert (adopted.hub.images.hub_tag, adopted.hub.images.fl_tag) == (m.hub.images.hub_tag,
                                                                       m.hub.images.fl_tag)
    assert adopted.flip.ref == m.flip.ref
    assert adopted.hub.fl_kits == m.hub.fl_kits
    assert adopted.hub.domain == m.hub.domain
    for t in m.trusts:
        got = adopted.trust(t.name)
        assert got is not None and got.public_ip == t.public_ip and got.settings == {}
        assert got.fl_kit_slot == t.fl_kit_slot or t.kind == "tre"
    verdicts = {t.name: t.verdict for t in adoption.trusts}
    assert verdicts == {"Trust_1": "held", "Trust_2": "held", "Trust_3": "not held"}
    held = adoption.trust("Trust_1")
    assert held is not None and held.ledger is not None and held.ledger.source == "adopt"
    assert held.ledger.api_key_sha256 == key_hash("Trust_1")
    assert set(held.expected_sha256) == {"TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY",
                                         *LOCAL_CREDENTIAL_KEYS}
    tre = adoption.trust("Trust_3")
    assert tre is not None and tre.ledger is not None and not tre.ledger.held
    assert not tre.escrow and "cannot redeliver" in tre.not_held_means

    result = plan(adopted, after(adoption, o))
    assert result.actions == ()
    # Not drift: the hub and the TRE agree; flipgitops only cannot hand the key out again.
    assert result.advisories == () and result.in_sync
    assert any(n.startswith("Trust_3 is registered on the hub but its key is not held by "
                            "flipgitops: it cannot redeliver that key") for n in result.notes)

    # adopting again changes nothing: no edit, the same ledger entries
    again = core.adopt(adopted, after(adoption, o))
    assert again.edits == ()
    assert core.with_adoption(after(adoption, o).ledger, again.trusts) == \
        after(adoption, o).ledger


def test_kit_file_values_become_settings_so_flipgitops_writes_the_same_file() -> None:
    m = manifest(1)
    o = flip_way(m, admin=True)
    host = o.hosts["Trust_1"]
    values = dict(host.kit_file.values)
    values.update({"PACS_UI_PORT": "8142", "BASE_IMAGES_DOWNLOAD_DIR": "./data/trust",
                   "TRUST_LOG_LEVEL": "INFO"})
    for absent in ("OMOP_DATA_DIR", "LOKI_DATA_VOLUME"):
        values.pop(absent)
    o = with_host(o, "Trust_1", kit_file=host.kit_file.model_copy(update={"values": values}))
    assert any(v.fact.id == "host.kit_values" for v in differing(World(
        m, after(core.adopt(m, o), o))))  # without the settings, plan would rewrite the file

    adoption, adopted = adopt_file(m, o)

    assert adopted.trusts[0].settings == {
        "BASE_IMAGES_DOWNLOAD_DIR": "./data/trust", "LOKI_DATA_VOLUME": "",
        "OMOP_DATA_DIR": "", "PACS_UI_PORT": "8142", "TRUST_LOG_LEVEL": "INFO"}
    assert plan(adopted, after(adoption, o)).actions == ()


def test_a_secret_era_key_that_is_not_the_hubs_is_not_held_and_not_escrowed() -> None:
    m = manifest(2, registry="secret")
    o = flip_way(m)
    hashes = dict(o.hub.secret.trust_api_key_hashes or {})
    hashes["Trust_2"] = "0" * 64
    o = with_secret(o, trust_api_key_hashes=hashes)

    adoption, adopted = adopt_file(m, o)

    ta = adoption.trust("Trust_2")
    assert ta is not None and ta.verdict == "not held" and not ta.escrow
    assert ta.expected_sha256 == {}
    assert any("does not match the hub's" in r for r in ta.reasons)
    assert ta.ledger is not None and not ta.ledger.held and ta.ledger.api_key_sha256 is None
    result = plan(adopted, after(adoption, o))
    assert result.actions == ()  # nothing re-keyed, nothing redelivered


@pytest.mark.parametrize(("case", "evidence", "why"), [
    ("401", ObservedTrustApi(unauthorized=True,
                             last_error="Unexpected status 401 polling for tasks"),
     "does not match the hub's"),
    ("other", ObservedTrustApi(authenticated_as="Trust_9", trust_id="x"),
     "another trust's key"),
    ("silent", ObservedTrustApi(), "has not logged"),
])
def test_database_era_keys_are_held_only_on_trust_apis_own_evidence(
        case: str, evidence: ObservedTrustApi, why: str) -> None:
    m = manifest(1)
    o = with_host(flip_way(m, admin=True), "Trust_1", trust_api=evidence)
    ta = core.adopt(m, o).trust("Trust_1")
    assert ta is not None and ta.verdict == "not held" and not ta.escrow
    assert any(why in r for r in ta.reasons), ta.reasons
    assert ta.ledger is not None and not ta.ledger.held  # the admin API lists it


def test_a_trust_api_running_on_an_older_kit_file_proves_nothing_about_the_file() -> None:
    m = manifest(1)
    o = flip_way(m, admin=True)
    host = o.hosts["Trust_1"]
    expected = {**host.expected_config, flip.TRUST_API_SERVICE: "sha256:changed"}
    ta = core.adopt(m, with_host(o, "Trust_1", expected_config=expected)).trust("Trust_1")
    assert ta is not None and ta.verdict == "not held"
    assert any("does not run on the kit file as it is now" in r for r in ta.reasons)


def test_database_era_without_an_admin_token_trust_api_is_the_evidence() -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2", kind="tre")])
    adoption = core.adopt(m, flip_way(m, admin=False))
    held, tre = adoption.trust("Trust_1"), adoption.trust("Trust_2")
    assert held is not None and held.verdict == "held"
    # nothing says the hub has the tre trust: no ledger entry claims it, plan may register
    # it (FLIP answers a known name with a kit without keys; nothing is re-keyed)
    assert tre is not None and tre.verdict == "unconfirmed" and tre.ledger is None
    assert any("hub.admin_token" in r for r in tre.reasons)


def test_the_admin_api_must_list_a_trust_when_it_is_asked() -> None:
    m = manifest(1)
    o = flip_way(m, admin=True)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={
        "admin": ObservedAdminApi(queried=True, ok=True, trusts=())})})
    ta = core.adopt(m, o).trust("Trust_1")
    assert ta is not None and ta.verdict == "unconfirmed" and ta.ledger is None
    assert any("admin API does not list it" in r for r in ta.reasons)


def test_an_unreachable_host_is_reported_not_held_and_its_trust_left_alone() -> None:
    m = manifest(2, registry="secret")
    o = unreachable(flip_way(m), "Trust_2")
    adoption, adopted = adopt_file(m, o)
    ta = adoption.trust("Trust_2")
    assert ta is not None and ta.verdict == "not held" and not ta.escrow
    assert any("unreachable" in r for r in ta.reasons)
    assert plan(adopted, after(adoption, o)).actions == ()


def test_the_wrong_account_stops_adoption() -> None:
    m = manifest(1)
    adoption = core.adopt(m, with_account(flip_way(m), "999999999999"))
    assert adoption.fatal and "FG006" in adoption.fatal[0]


def test_a_key_flipgitops_holds_itself_is_never_replaced() -> None:
    m = manifest(1)
    o = flip_way(m)
    own = LedgerTrust(credentials_generation=1, api_key_sha256="f" * 64, held=True,
                      source="flipgitops")
    o = with_ledger(o, "Trust_1", own)
    adoption = core.adopt(m, o)
    ta = adoption.trust("Trust_1")
    assert ta is not None and ta.verdict == "already held" and ta.ledger is None
    assert core.with_adoption(o.ledger, adoption.trusts).trusts["Trust_1"] == own


def test_unmanaged_things_are_listed() -> None:
    m = manifest(2)
    o = flip_way(m, admin=True)
    port = m.hub.fl_server.port
    stranger = IngressRule(cidr="192.0.2.77/32", from_port=port, to_port=port,
                           description=f"{flip.TERRAFORM_TRUST_RULE_PREFIX} (192.0.2.77)")
    rules = tuple(r for r in o.hub.allowlist.rules if r.cidr != "203.0.113.12/32")
    o = with_allowlist(o, rules=(*rules, stranger))
    o = o.model_copy(update={"hub": o.hub.model_copy(update={"admin": ObservedAdminApi(
        queried=True, ok=True, trusts=(AdminTrust(name="Trust_1"), AdminTrust(name="Trust_2"),
                                       AdminTrust(name="Old_Trust")))})})
    listed = core.unmanaged(m, o)
    assert any(u.startswith("ingress rule 192.0.2.77/32") for u in listed)
    assert "Trust_2: no ingress rule opens the FL port to 203.0.113.12" in listed
    assert "Old_Trust: in the hub's admin API, not in the manifest" in listed


def test_a_kit_file_under_another_code_is_found() -> None:
    m = manifest(1)
    o = flip_way(m)
    host = o.hosts["Trust_1"]
    o = with_host(o, "Trust_1", kit_file=host.kit_file.model_copy(update={
        "present": False, "others": (".env.GSTT.development",)}))
    assert core.discover_codes(m, o) == {"Trust_1": "GSTT"}
    two = with_host(o, "Trust_1", kit_file=host.kit_file.model_copy(update={
        "present": False, "others": (".env.GSTT.development", ".env.KCH.development")}))
    assert core.discover_codes(m, two) == {}


# --- the facts that let plan leave FLIP's own delivery alone ------------------------------------


def test_a_flip_delivered_fl_kit_is_in_sync_exactly_when_its_files_are_the_buckets() -> None:
    m = manifest(1)
    o = flip_way(m)
    o = after(core.adopt(m, o), o)
    assert not [v for v in differing(World(m, o)) if v.fact.id.startswith("host.fl_kit")]
    host = o.hosts["Trust_1"]
    edited = with_host(o, "Trust_1", fl_kit=host.fl_kit.model_copy(update={
        "listed_fingerprint": "0" * 64}))
    found = [v for v in differing(World(m, edited)) if v.fact.id == "host.fl_kit"]
    assert found and found[0].have["source"] == "0" * 64 and found[0].have["date"] is None
    assert any(a.kind == "host.deliver_fl_kit" for a in plan(m, edited).actions)


def test_a_kit_whose_etags_are_not_md5s_is_reported_never_redelivered() -> None:
    m = manifest(1)
    o = flip_way(m)
    o = after(core.adopt(m, o), o)
    kits = o.hub.kits
    assert kits is not None
    slices = {k: v.model_copy(update={"etag_md5": False}) for k, v in kits.slices.items()}
    host = o.hosts["Trust_1"]
    o = with_host(o, "Trust_1", fl_kit=host.fl_kit.model_copy(update={
        "listed_fingerprint": None}))
    o = o.model_copy(update={"hub": o.hub.model_copy(update={
        "kits": kits.model_copy(update={"slices": slices})})})
    result = plan(m, o)
    assert result.actions == ()
    assert any("are not MD5s" in a for a in result.advisories)


def test_the_host_recomputes_the_bucket_listings_fingerprint_from_its_files(
        tmp_path: Path) -> None:
    files = {"net-1/services/Trust_1/startup/fed_client.json": b'{"client": {}}',
             "net-1/services/Trust_1/startup/client.key": b"key bytes",
             "net-1/services/Trust_1/local/log_config.json.default": b"{}"}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    (tmp_path / "net-1/services/Trust_1/transfer").mkdir()
    entries = [(k, hashlib.md5(v).hexdigest(), len(v)) for k, v in files.items()]
    marker = ("net-1/services/Trust_1/transfer/", hashlib.md5(b"").hexdigest(), 0)
    keys = [*files, marker[0]]
    assert kit_listing.fingerprint([*entries, marker]) == \
        flkit.listed_fingerprint(str(tmp_path), keys)
    assert kit_listing.fingerprint is not None and kit_listing.etag_md5(entries)
    assert not kit_listing.etag_md5([("k", "0" * 32 + "-2", 10)])
    (tmp_path / "net-1/services/Trust_1/startup/client.key").write_bytes(b"key byteZ")
    assert kit_listing.fingerprint([*entries, marker]) != \
        flkit.listed_fingerprint(str(tmp_path), keys)
    assert flkit.listed_fingerprint(str(tmp_path), ["../../etc/passwd"]) != \
        kit_listing.fingerprint([("../../etc/passwd", "", 0)])
    slices, _ = kit_listing.slices("nvflare", "2025-06-01", [
        {"Key": f"fl-flare-participant-kits/2025-06-01/{k}", "ETag": f'"{e}"', "Size": s}
        for k, e, s in entries], ["Trust_1"])
    assert slices["Trust_1"] == KitSlice(slot="Trust_1", keys=tuple(sorted(files)),
                                         fingerprint=kit_listing.fingerprint(entries),
                                         etag_md5=True)


# --- the manifest file ----------------------------------------------------------------------------

FILE = """\
# yaml-language-server: $schema=../schemas/flip-environment.schema.json
# the team's notes stay
version: 1
environment: dev   # must be the stem
hub:
  domain: placeholder.example.org  # adopt finds the real one
  images: {registry: ghcr.io/londonaicentre, hub_tag: v0.0.1, fl_tag: v0.0.1}
  fl_kits:
    bucket: placeholder
    date: "2000-01-01"
trusts:
  - name: Trust_1   # the first hospital
    code: GSTT
    kind: on-prem
    public_ip: 198.51.100.10
    host:
      connection: local
    settings:
      POLL_INTERVAL_SECONDS: "1"  # fast polls
      MIN_CLIENTS: "1"
"""


def test_edits_keep_comments_order_and_indentation() -> None:
    assert detect_indent(FILE) == (2, 4, 2)
    out = apply_edits(FILE, [
        core.Edit(("hub", "domain"), "dev.flip.example.org", ""),
        core.Edit(("hub", "trust_registry"), "secret", ""),
        core.Edit(("hub", "fl_kits", "date"), "2025-06-01", ""),
        core.Edit(("hub", "database", "generation"), 2, ""),
        core.Edit(("trusts", 0, "region"), "London", ""),
        core.Edit(("trusts", 0, "fl_kit_slot"), "Trust_1", ""),
        core.Edit(("trusts", 0, "settings"), {"POLL_INTERVAL_SECONDS": "1",
                                              "NUM_AVAILABLE_GPUS": "0"}, ""),
        core.Edit(("hub", "fl_server", "hostname"), core.REMOVE, ""),
    ])
    lines = out.splitlines()
    assert lines[:2] == FILE.splitlines()[:2]
    assert "environment: dev   # must be the stem" in lines
    assert "  - name: Trust_1   # the first hospital" in lines
    assert '      POLL_INTERVAL_SECONDS: "1"  # fast polls' in lines
    assert "MIN_CLIENTS" not in out
    assert "      NUM_AVAILABLE_GPUS: '0'" in lines
    assert "  trust_registry: secret" in lines
    assert lines.index("  trust_registry: secret") < lines.index("  images: {registry: "
                                                                  "ghcr.io/londonaicentre, "
                                                                  "hub_tag: v0.0.1, fl_tag: "
                                                                  "v0.0.1}")
    assert lines.index("    code: GSTT") < lines.index("    region: London") < \
        lines.index("    kind: on-prem")
    assert lines.index("    public_ip: 198.51.100.10") < lines.index("    fl_kit_slot: Trust_1")
    assert "    date: '2025-06-01'" in lines or '    date: "2025-06-01"' in lines
    assert "  database:" in lines and "    generation: 2" in lines
    assert apply_edits(FILE, []) == FILE


def test_an_empty_setting_provisions_what_compose_defaults_to() -> None:
    from flipgitops.adapters import hosts_build

    dirs = [d[0] for d in hosts_build.provision_dirs("/srv/flip", {
        "OBSERVABILITY_CONFIG_DIR": "", "LOKI_DATA_VOLUME": "", "OMOP_DATA_DIR": "",
        "FL_KIT_DIR": "/srv/flip/fl-kit"}, "nvflare", None)]
    assert "" not in dirs and "/srv/flip/config/observability" in dirs


# --- the report ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_the_report_names_what_is_not_held_and_shows_no_hash_in_full(fmt: str) -> None:
    import re

    from flipgitops.engine.adopt import AdoptionResult, Written
    from flipgitops.ui.report import render_adoption

    m = manifest([trust("Trust_1"), trust("Trust_2", kind="tre")], registry="secret")
    o = flip_way(m)
    d = starting(m)
    adoption = core.adopt(d, o)
    text = text_of(d)
    result = AdoptionResult(m.environment, "environments/dev.yaml", True,
                            diff="--- a\n+++ b\n-x\n+y\n", edits=adoption.edits,
                            trusts=adoption.trusts, predicted=plan(m, after(adoption, o)),
                            unmanaged=("ingress rule 192.0.2.7/32 on TCP 8002: no manifest "
                                       "trust has that IP",),
                            written=Written(escrow=("/flipgitops/dev/trusts/Trust_1/kit",),
                                            ledger=("Trust_1", "Trust_2"), manifest=True))
    out = render_adoption(result, fmt)
    from flipgitops.core.render import md

    shown = md.text if fmt == "markdown" else str
    assert shown("Trust_2") in out and "192.0.2.7/32" in out
    assert "cannot redeliver" in out
    assert not re.search(r"[0-9a-f]{64}", out)  # never a whole sha256
    if fmt == "json":
        data = json.loads(out)
        assert {t["name"]: t["verdict"] for t in data["trusts"]} == {
            "Trust_1": "held", "Trust_2": "not held"}
        assert data["written"]["escrow"] == ["/flipgitops/dev/trusts/Trust_1/kit"]
    else:
        assert shown("NOT HELD by flipgitops") in out
        assert shown("nothing in AWS but the escrow") in out
    assert text  # the manifest text the diff came from was renderable
