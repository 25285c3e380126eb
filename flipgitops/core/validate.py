"""Document rules of DESIGN.md §2 that a single field cannot check on its own.

They run on plain data (the validated model dumped, or the raw YAML when the model could not
be built), so a file with a misspelled key still gets its private IPs and prod rules
reported in the same run. Every rule reads defensively: a value of the wrong type is the
model's problem to report, not this module's. Messages say what to do and never repeat a
value that may be a secret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from flipgitops.errors import Problem
from flipgitops.model.manifest import Manifest

LocPath = tuple[str | int, ...]
Where = Callable[[LocPath], int]

SCHEMA_COMMENT = "# yaml-language-server: $schema=../schemas/flip-environment.schema.json"

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
RELEASE_TAG_RE = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                            r"(-[0-9A-Za-z][0-9A-Za-z.-]*)?$")
SHA_TAG_RE = re.compile(r"^sha-[0-9a-f]{7}$")
DOCKER_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
FLOATING_TAGS = frozenset({"latest", "prod", "production", "stag", "staging", "main", "master",
                           "dev", "develop", "stable", "edge", "nightly", "release", "current"})

_ENV_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")
_SSM_REF = re.compile(r"^ssm:/[A-Za-z0-9_.\-/]+$")
_SM_REF = re.compile(r"^secretsmanager:[A-Za-z0-9/_+=.@-]+#[A-Za-z0-9_.\-]+$")
_PEM = re.compile(r"-----BEGIN|PRIVATE KEY|ssh-(rsa|ed25519|dss)\s|ecdsa-sha2-", re.I)
_BLOB = re.compile(r"^[A-Za-z0-9+/=_\-\s]{32,}$")

_DOC_RANGES = tuple(ipaddress.IPv4Network(n) for n in
                    ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in
                 ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@dataclass(frozen=True)
class Issue:
    """A rule violation at a path; the parser turns it into a located `Problem`.

    `anchor` "key" points at the key itself (unknown/duplicate keys), "value" at its value
    or, when the path does not exist, at the mapping that should hold it.
    """

    path: LocPath
    message: str
    anchor: str = "value"


def dotted(path: LocPath) -> str:
    """`("trusts", 1, "public_ip")` -> `trusts[1].public_ip`, the location users read."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def manifest_stem(filename: str) -> str | None:
    """The environment a file name implies; None for names that are not manifest files."""
    path = PurePath(filename)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.stem:
        return None
    return path.stem


def check_manifest(manifest: Manifest, filename: str | None = None) -> list[Issue]:
    """The document rules for an already built model (planner inputs made in code)."""
    stem = manifest_stem(filename) if filename else None
    return check_document(manifest.model_dump(mode="python"), stem=stem)


def check_document(data: Any, stem: str | None, where: Where | None = None) -> list[Issue]:
    """Every cross-field rule of DESIGN.md §2 over plain manifest data.

    `where` gives the line of a path so duplicate messages can name the first occurrence.
    """
    if not isinstance(data, Mapping):
        return []
    line_of: Where = where or (lambda _p: 0)
    issues: list[Issue] = []
    environment = data.get("environment")
    prod = environment == "prod"
    issues += _environment_rules(data, stem)
    issues += _trust_rules(data, line_of)
    issues += _tag_rules(data, prod)
    issues += _prod_rules(data, prod)
    issues += _hub_rules(data)
    issues += _secret_scan(data)
    return issues


# -- rules ----------------------------------------------------------------------------------


def _environment_rules(data: Mapping[str, Any], stem: str | None) -> list[Issue]:
    environment = data.get("environment")
    if stem is None or not isinstance(environment, str) or environment == stem:
        return []
    return [Issue(("environment",),
                  f"environment is {_show(environment)} but the file is {stem}.yaml; they must "
                  f"match (set environment: {stem} or rename the file)")]


def _trusts(data: Mapping[str, Any]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    trusts = data.get("trusts")
    if isinstance(trusts, list):
        for index, trust in enumerate(trusts):
            if isinstance(trust, Mapping):
                yield index, trust


def _trust_rules(data: Mapping[str, Any], line_of: Where) -> list[Issue]:
    issues: list[Issue] = []
    seen: dict[str, dict[str, int]] = {"name": {}, "fl_kit_slot": {}, "public_ip": {}}
    for index, trust in _trusts(data):
        for key in ("name", "fl_kit_slot"):
            value = trust.get(key)
            if isinstance(value, str) and not NAME_RE.match(value):
                issues.append(Issue(("trusts", index, key),
                                    f"{_show(value)} is not a valid {_label(key)}: start with a "
                                    "letter, then up to 62 letters, digits, '_' or '-'"))
        ip = trust.get("public_ip")
        if isinstance(ip, str):
            problem = public_ip_problem(ip)
            if problem:
                issues.append(Issue(("trusts", index, "public_ip"), problem))
        kind = trust.get("kind")
        if kind in ("on-prem", "aws") and trust.get("host") is None:
            issues.append(Issue(("trusts", index, "host"),
                                f"a {kind} trust needs a host section (connection, address, "
                                "user, ssh_key, flip_root) so flipgitops can provision it; "
                                "only kind tre may omit it"))
        for key, firsts in seen.items():
            value = trust.get(key)
            if not isinstance(value, str):
                continue
            norm = value.strip() if key == "public_ip" else value
            if norm in firsts:
                first = firsts[norm]
                line = line_of(("trusts", first, key))
                at = f"trusts[{first}]" + (f" (line {line})" if line else "")
                issues.append(Issue(("trusts", index, key), _duplicate_message(key, value, at)))
            else:
                firsts[norm] = index
    return issues


def _duplicate_message(key: str, value: str, first: str) -> str:
    if key == "name":
        return (f"duplicate trust name {_show(value)}, already used by {first}; names are the "
                "hub's TRUST_NAMES entries and must be unique, rename one of them")
    if key == "fl_kit_slot":
        return (f"fl_kit_slot {_show(value)} is already used by {first}; every trust needs "
                "its own FL participant kit slot")
    return (f"public IP {_show(value)} is already used by {first}; every trust has its own egress "
            "IP (one /32 allowlist rule each), check which one is wrong")


def _label(key: str) -> str:
    return "trust name" if key == "name" else "fl_kit_slot"


def public_ip_problem(value: str) -> str | None:
    """Why `value` cannot be a trust's allowlisted egress IP, or None when it can."""
    text = value.strip()
    hint = "the NLB allowlist needs the trust's public egress IP"
    if "/" in text:
        return (f"{_show(text)} is a network, not an address; give the trust's single public "
                "egress IP (flipgitops adds the /32)")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return (f"{_show(text)} is not an IPv4 address; give the trust's public egress IP, "
                "e.g. 203.0.113.10")
    if not isinstance(address, ipaddress.IPv4Address):
        return f"{text} is an IPv6 address; the NLB allowlist takes the trust's public IPv4 address"
    if any(address in net for net in _DOC_RANGES):
        return None
    if any(address in net for net in _RFC1918):
        return f"{text} is a private (RFC 1918) address; {hint}"
    if address.is_loopback:
        return f"{text} is a loopback address; {hint}"
    if address.is_link_local:
        return f"{text} is a link-local address; {hint}"
    if address in _CGNAT:
        return f"{text} is a carrier-grade NAT (100.64.0.0/10) address; {hint}"
    if address.is_multicast:
        return f"{text} is a multicast address; {hint}"
    if address.is_unspecified:
        return f"{text} is the unspecified address; {hint}"
    if address.is_reserved or not address.is_global:
        return f"{text} is a reserved, not publicly routable address; {hint}"
    return None


def is_immutable_tag(tag: str) -> bool:
    """`vX.Y.Z[-pre]` or `sha-<7 hex>` (FLIP's immutable deploy tags): names that keep
    pointing at the same image. The one definition both validation and FG005 use."""
    return bool(RELEASE_TAG_RE.match(tag) or SHA_TAG_RE.match(tag))


def _tag_rules(data: Mapping[str, Any], prod: bool) -> list[Issue]:
    images = _get(data, "hub", "images")
    if not isinstance(images, Mapping):
        return []
    policy = data.get("policy")
    immutable = _get(data, "policy", "immutable_tags") if isinstance(policy, Mapping) else True
    required = prod or immutable is not False
    why = "prod always requires immutable tags" if prod else "policy.immutable_tags is on"
    issues: list[Issue] = []
    for key in ("hub_tag", "fl_tag"):
        tag = images.get(key)
        if not isinstance(tag, str):
            continue
        path: LocPath = ("hub", "images", key)
        if not DOCKER_TAG_RE.match(tag):
            issues.append(Issue(path, f"{_show(tag)} is not a valid image tag; use letters, "
                                "digits, '_', '.' or '-', e.g. v2.3.0"))
        elif required and not is_immutable_tag(tag):
            floating = (f"{_show(tag)} is a floating tag: it can point at a different image "
                        "tomorrow, so a plan would not say what runs"
                        if tag.lower() in FLOATING_TAGS else
                        f"{_show(tag)} is not an immutable tag")
            issues.append(Issue(path, f"{floating}; {why}, pin a release like v2.3.0 or a "
                                "commit like sha-1a2b3c4 (FG005)"))
    return issues


def _prod_rules(data: Mapping[str, Any], prod: bool) -> list[Issue]:
    if not prod:
        return []
    issues: list[Issue] = []
    for key in ("deletion_protection", "final_snapshot"):
        if _get(data, "hub", "database", key) is False:
            issues.append(Issue(("hub", "database", key),
                                f"must be true in prod: the production database is never "
                                f"left unprotected (FG002, not overridable); set {key}: true"))
    if _get(data, "policy", "immutable_tags") is False:
        issues.append(Issue(("policy", "immutable_tags"),
                            "prod always uses immutable image tags (FG005); remove this line "
                            "or set it to true"))
    return issues


def _hub_rules(data: Mapping[str, Any]) -> list[Issue]:
    hub = data.get("hub")
    if not isinstance(hub, Mapping):
        return []
    if _get(data, "hub", "fl_server", "allowlist") == "terraform" and hub.get("terraform") is None:
        return [Issue(("hub", "terraform"),
                      "fl_server.allowlist is terraform, so hub.terraform is required: add "
                      "terraform: {dir: <the hub's Terraform root>, backend_config: {...}}")]
    return []


# -- secrets --------------------------------------------------------------------------------


def is_secret_reference(value: str) -> bool:
    """`env:NAME`, `ssm:/path` or `secretsmanager:name#key`."""
    return bool(_ENV_REF.match(value) or _SSM_REF.match(value) or _SM_REF.match(value))


def looks_like_secret(value: str) -> bool:
    """A PEM block, an SSH public/private key line, or a long base64/hex blob."""
    return bool(_PEM.search(value) or "\n" in value.strip() or _BLOB.match(value.strip()))


_SECRET_HELP = ("secrets never go in the manifest (the value is not shown); store it in SSM, "
                "Secrets Manager or an environment variable and write a reference: env:NAME, "
                "ssm:/path or secretsmanager:name#key")


def _secret_scan(data: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for index, trust in _trusts(data):
        host = trust.get("host")
        key = host.get("ssh_key") if isinstance(host, Mapping) else None
        if isinstance(key, str) and not is_secret_reference(key):
            what = ("holds what looks like a key" if looks_like_secret(key)
                    else "is not a reference")
            issues.append(Issue(("trusts", index, "host", "ssh_key"), f"{what}; {_SECRET_HELP}"))
    ssh_paths = {("trusts", i, "host", "ssh_key") for i, _ in _trusts(data)}
    for path, value in _strings(data):
        if path not in ssh_paths and _PEM.search(value):
            issues.append(Issue(path, f"holds what looks like a key; {_SECRET_HELP}"))
    return issues


def _strings(root: Any) -> Iterator[tuple[LocPath, str]]:
    """Every string with its path; each shared (aliased) container is walked once."""
    seen: set[int] = set()
    stack: list[tuple[Any, LocPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, Mapping | list) and id(node) not in seen:
            seen.add(id(node))
            pairs = node.items() if isinstance(node, Mapping) else enumerate(node)
            stack.extend((v, (*path, k)) for k, v in pairs if isinstance(k, str | int))


# -- helpers --------------------------------------------------------------------------------


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def schema_comment_problem(text: str, filename: str) -> Problem | None:
    """The editor-schema comment must open files under environments/ (see engine)."""
    first = text.split("\n", 1)[0].rstrip("\r \t")
    if first == SCHEMA_COMMENT:
        return None
    return Problem(filename, 1, 1, "",
                   f"the first line must be `{SCHEMA_COMMENT}` so editors validate the file "
                   "against the schema; add it")
