"""Document rules of docs/architecture.md §3 that a single field cannot check on its own.

They run on plain data (the validated model dumped, or the raw YAML when the model could not
be built), so a file with a misspelled key still gets its private IPs and prod rules
reported in the same run. Every rule reads defensively: a value of the wrong type is the
model's problem to report, not this module's. Messages say what to do and never repeat a
value that may be a secret.

Manifest text is data, never code. Values travel into Ansible (which evaluates `{{ }}`),
argv lists (where a leading `-` is an option), FLIP's kit file (one `KEY=value` per line)
and PR comments, so every string of the document, keys included, must be one line of
visible text without template syntax, and the fields that name hosts, paths, refs and
headers must have their plain form. Patterns always match whole values (`re.fullmatch`):
a trailing newline is not part of a valid name.
"""

from __future__ import annotations

import difflib
import ipaddress
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from flipgitops.errors import Problem
from flipgitops.model import flip
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, SECRET_KIT_KEYS
from flipgitops.model.manifest import Host, Hub, Manifest

LocPath = tuple[str | int, ...]
Where = Callable[[LocPath], int]
IssueKind = Literal["secret", "template", "text", "rule"]

SCHEMA_COMMENT = "# yaml-language-server: $schema=../schemas/flip-environment.schema.json"

# Whole-value patterns (always used with fullmatch; no anchors needed or wanted).
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")  # trust names, fl_kit_slots, environment
CODE_RE = re.compile(r"[A-Z0-9]{2,16}")  # FLIP trust codes: trust/.env.<CODE>.<env token>
COMMIT_RE = re.compile(r"[0-9a-f]{7,40}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_SSH_HOST_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")  # also ssh_config aliases
_PORT_RE = re.compile(r"[0-9]{1,5}")
_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_HEADER_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")  # an HTTP header name (token)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?(?:/{_PATH_COMPONENT})*/?")
_GIT_REF_RE = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._/+-]{0,254}")
_FLIP_ROOT_RE = re.compile(r"[A-Za-z0-9._@+/-]+")

_ENV_REF = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*")
_SSM_REF = re.compile(r"ssm:/[A-Za-z0-9_.\-/]+")
_SM_REF = re.compile(r"secretsmanager:[A-Za-z0-9/_+=.@-]+#[A-Za-z0-9_.\-]+")
REFERENCE_RES = (_ENV_REF, _SSM_REF, _SM_REF)  # env:NAME, ssm:/path, secretsmanager:name#key
_PEM = re.compile(r"-----BEGIN|PRIVATE KEY|ssh-(rsa|ed25519|dss)\s|ecdsa-sha2-", re.I)
_HEX_BLOB = re.compile(r"[0-9a-fA-F]{32,}")
_TOKEN_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
TEMPLATE_MARKERS = ("{{", "{%", "{#")

_DOC_RANGES = tuple(ipaddress.IPv4Network(n) for n in
                    ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in
                 ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# Kit-file keys flipgitops derives from other manifest fields, and where they come from.
_DERIVED_KIT_KEYS = {
    "FL_KIT_DIR": "host.flip_root (FL_KIT_DIR is <flip_root>/fl-kit)",
    "AICENTRE_BUCKET_NAME": "hub.fl_kits.bucket",
}
_RANK: dict[IssueKind, int] = {"secret": 0, "template": 1, "text": 2, "rule": 3}


@dataclass(frozen=True)
class Issue:
    """A rule violation at a path; the parser turns it into a located `Problem`.

    `anchor` "key" points at the key itself (unknown/duplicate keys), "value" at its value
    or, when the path does not exist, at the mapping that should hold it. `kind` orders
    what one location reports: a pasted secret, template syntax or an invisible character
    says more than any rule about the value's shape, so it is the only problem shown there.
    """

    path: LocPath
    message: str
    anchor: str = "value"
    kind: IssueKind = "rule"


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
    """Every cross-field rule of docs/architecture.md §3 over plain manifest data.

    `where` gives the line of a path so duplicate messages can name the first occurrence.
    """
    if not isinstance(data, Mapping):
        return []
    line_of: Where = where or (lambda _p: 0)
    prod = data.get("environment") == "prod"
    issues: list[Issue] = []
    issues += _text_rules(data)
    issues += _environment_rules(data, stem)
    issues += _trust_rules(data, line_of)
    issues += _host_rules(data, line_of)
    issues += _tag_rules(data, prod)
    issues += _prod_rules(data, prod)
    issues += _hub_rules(data)
    issues += _reference_rules(data)
    issues += _settings_rules(data)
    return _one_per_location(issues)


def _one_per_location(issues: list[Issue]) -> list[Issue]:
    """Where a secret/template/text issue fires, it is the only one reported there."""
    best: dict[LocPath, int] = {}
    for issue in issues:
        best[issue.path] = min(best.get(issue.path, 9), _RANK[issue.kind])
    kept: list[Issue] = []
    shown: set[LocPath] = set()
    for issue in issues:
        rank = _RANK[issue.kind]
        if rank != best[issue.path]:
            continue
        if rank < _RANK["rule"]:
            if issue.path in shown:
                continue
            shown.add(issue.path)
        kept.append(issue)
    return kept


# -- text: every string is data ----------------------------------------------------------------


def text_problem(value: str) -> str | None:
    """Why a manifest string is not one line of visible text, or None.

    `str.isprintable` is False for exactly what must not hide in a reviewed file: control
    characters and line breaks, format characters (zero-width, bidi overrides), lone
    surrogates, separators other than the plain space, private-use and unassigned points.
    """
    if value.isprintable():
        return None
    char = next(c for c in value if not c.isprintable())
    code = f"U+{ord(char):04X}"
    if char in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
        what = f"a line break ({code})"
        extra = " (a `|` block adds a trailing one)"
    elif unicodedata.category(char) == "Cs":
        what = f"a lone surrogate escape ({code}), which is not a character"
        extra = ""
    else:
        name = unicodedata.name(char, "")
        what = f"the invisible character {code}" + (f" {name}" if name else "")
        extra = ""
    return (f"contains {what}{extra}; a manifest value is one line of visible text (it is "
            "written into FLIP's kit file and shown in reviews), remove it")


def template_marker(value: str) -> str | None:
    """The first template opener (`{{`, `{%`, `{#`) in `value`, or None."""
    found = [(value.index(m), m) for m in TEMPLATE_MARKERS if m in value]
    return min(found)[1] if found else None


_TEMPLATE_HELP = ("values reach Ansible, which would evaluate it as a Jinja2 template, and "
                  "manifest text is data, never code; write the literal value instead")


def _text_rules(data: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    # References and settings values get their own secret checks, with better messages.
    own_check = set(_reference_paths(data)) | set(_settings_paths(data))
    for path, value, is_key in _strings(data):
        anchor = "key" if is_key else "value"
        what = "this key" if is_key else "the value"
        marker = template_marker(value)
        text = text_problem(value)
        if not is_key and path not in own_check and _PEM.search(value):
            issues.append(Issue(path, f"holds what looks like a key; {_SECRET_HELP}",
                                kind="secret"))
        elif marker is not None:
            issues.append(Issue(path, f"{what} contains template syntax ({marker!r}): "
                                f"{_TEMPLATE_HELP}", anchor=anchor, kind="template"))
        elif text is not None:
            issues.append(Issue(path, text if not is_key else "this key " + text, anchor=anchor,
                                kind="text"))
    return issues


# -- environment ---------------------------------------------------------------------------


def _environment_rules(data: Mapping[str, Any], stem: str | None) -> list[Issue]:
    environment = data.get("environment")
    if not isinstance(environment, str):
        return []
    path: LocPath = ("environment",)
    if not environment:
        hint = f"set environment: {stem}" if stem else \
            "set it to the environment's name (the manifest file's name without .yaml)"
        return [Issue(path, f"environment is empty: it names the lock, journal and SSM paths "
                            f"of this environment; {hint}")]
    if stem is not None and environment != stem:
        return [Issue(path, f"environment is {_show(environment)} but the file is {stem}.yaml; "
                            f"they must match (set environment: {stem} or rename the file)")]
    if not NAME_RE.fullmatch(environment):
        return [Issue(path, f"{_show(environment)} is not a valid environment name (it names "
                            "S3 keys, SSM paths and kit files): start with a letter, then up "
                            "to 62 letters, digits, '_' or '-'")]
    return []


# -- trusts --------------------------------------------------------------------------------


def _trusts(data: Mapping[str, Any]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    trusts = data.get("trusts")
    if isinstance(trusts, list):
        for index, trust in enumerate(trusts):
            if isinstance(trust, Mapping):
                yield index, trust


_NAME_HELP = "start with a letter, then up to 62 letters, digits, '_' or '-'"


def _trust_rules(data: Mapping[str, Any], line_of: Where) -> list[Issue]:
    issues: list[Issue] = []
    registry = _get(data, "hub", "trust_registry")
    secret_registry = registry == "secret"
    seen: dict[str, dict[str, int]] = {"name": {}, "code": {}, "fl_kit_slot": {},
                                       "public_ip": {}}
    for index, trust in _trusts(data):
        at = ("trusts", index)
        name, code, slot = trust.get("name"), trust.get("code"), trust.get("fl_kit_slot")
        if isinstance(name, str) and not NAME_RE.fullmatch(name):
            issues.append(Issue((*at, "name"), f"{_show(name)} is not a valid trust name: "
                                f"{_NAME_HELP}"))
        if isinstance(code, str) and not CODE_RE.fullmatch(code):
            issues.append(Issue((*at, "code"), f"{_show(code)} is not a valid trust code: 2 to "
                                "16 capital letters or digits, e.g. GSTT (FLIP names the "
                                "trust's kit file trust/.env.<CODE>.<env>)"))
        if isinstance(slot, str) and not NAME_RE.fullmatch(slot):
            issues.append(Issue((*at, "fl_kit_slot"), f"{_show(slot)} is not a valid "
                                f"fl_kit_slot: {_NAME_HELP} (it names a directory of the FL "
                                "kit, so no '/' or '..'), e.g. Trust_1"))
        if secret_registry and slot is None:
            issues.append(Issue((*at, "fl_kit_slot"), "fl_kit_slot is required with "
                                "hub.trust_registry: secret (older hubs do not assign slots): "
                                "name this trust's FL kit slot, e.g. Trust_1"))
        ip = trust.get("public_ip")
        if isinstance(ip, str):
            problem = public_ip_problem(ip)
            if problem:
                issues.append(Issue((*at, "public_ip"), problem))
        for key, firsts in seen.items():
            value = trust.get(key)
            if not isinstance(value, str):
                continue
            norm = value.strip() if key == "public_ip" else value
            if norm in firsts:
                first = firsts[norm]
                line = line_of(("trusts", first, key))
                where = f"trusts[{first}]" + (f" (line {line})" if line else "")
                issues.append(Issue((*at, key), _duplicate_message(key, value, where)))
            else:
                firsts[norm] = index
    return issues


def _duplicate_message(key: str, value: str, first: str) -> str:
    if key == "name":
        return (f"duplicate trust name {_show(value)}, already used by {first}; names are the "
                "hub's trust names and must be unique, rename one of them")
    if key == "code":
        return (f"trust code {_show(value)} is already used by {first}; each trust's kit file "
                "is trust/.env.<CODE>.<env>, so codes must be unique")
    if key == "fl_kit_slot":
        return (f"fl_kit_slot {_show(value)} is already used by {first}; every trust needs "
                "its own FL participant kit slot")
    return (f"public IP {_show(value)} is already used by {first}; every trust has its own egress "
            "IP (one /32 allowlist rule each), check which one is wrong")


def public_ip_problem(value: str) -> str | None:
    """Why `value` cannot be a trust's allowlisted egress IP, or None when it can."""
    hint = "the NLB allowlist needs the trust's public egress IP"
    text = value.strip()
    if text != value:
        return (f"{_show(value)} has spaces around the address; write just the address, "
                f"e.g. {text or '203.0.113.10'}")
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


# -- hosts ---------------------------------------------------------------------------------

_HOST_DEFAULTS = {k: Host.model_fields[k].default for k in ("connection", "address", "flip_root")}


def _host_rules(data: Mapping[str, Any], line_of: Where) -> list[Issue]:
    issues: list[Issue] = []
    roots: list[tuple[str, str, int]] = []  # (machine, flip_root, trust index)
    for index, trust in _trusts(data):
        at: LocPath = ("trusts", index, "host")
        kind, host = trust.get("kind"), trust.get("host")
        if kind in ("on-prem", "aws") and host is None:
            issues.append(Issue(at, f"a {kind} trust needs a host section (connection, address, "
                                "user, ssh_key, flip_root) so flipgitops can provision it; "
                                "only kind tre may omit it"))
        if kind == "tre" and host is not None:
            issues.append(Issue(at, "a tre trust has no host flipgitops manages (hub-side "
                                "actions only); remove host, or set kind: on-prem or aws",
                                anchor="key"))
        if not isinstance(host, Mapping):
            continue
        for key, check in (("address", address_problem), ("user", user_problem),
                           ("flip_root", flip_root_problem)):
            value = host.get(key)
            problem = check(value) if isinstance(value, str) else None
            if problem:
                issues.append(Issue((*at, key), problem))
        root = host.get("flip_root", _HOST_DEFAULTS["flip_root"])
        if isinstance(root, str) and kind != "tre" and flip_root_problem(root) is None:
            roots.append((_machine(host), root, index))
    issues += _root_collisions(roots, line_of)
    return issues


def _machine(host: Mapping[str, Any]) -> str:
    """Which machine a host section reaches: every `local` host is this machine."""
    if host.get("connection", _HOST_DEFAULTS["connection"]) == "local":
        return "localhost"
    address = host.get("address", _HOST_DEFAULTS["address"])
    return str(address).lower().rstrip(".")


def _root_collisions(roots: list[tuple[str, str, int]], line_of: Where) -> list[Issue]:
    """Two trusts whose flip_roots on one machine are the same or nested would share a kit
    file, an FL kit directory (wiped before each sync) and a trust/ tree. Each root looks
    up itself and its ancestors, so 1,000 trusts on one host cost 1,000 lookups."""
    first: dict[tuple[str, str], int] = {}
    for machine, root, index in roots:
        first.setdefault((machine, root), index)
    issues: list[Issue] = []
    for machine, root, index in roots:
        parts = root.split("/")
        ancestors = ["/".join(parts[:n]) for n in range(2, len(parts))]
        clash = [(first[(machine, root)], root, "the same flip_root")] \
            if first[(machine, root)] != index else []
        clash += [(first[(machine, a)], a, "nested flip_roots") for a in ancestors
                  if (machine, a) in first]
        if not clash:
            continue
        other, other_root, how = clash[0]
        later, earlier = max(index, other), min(index, other)
        line = line_of(("trusts", earlier, "host", "flip_root"))
        where = f"trusts[{earlier}]" + (f" (line {line})" if line else "")
        issues.append(Issue(("trusts", later, "host", "flip_root"),
                            f"{where} uses {how} on the same host ({_show(machine)}: "
                            f"{_show(other_root)} and {_show(root)}); their kit files, FL "
                            "kits and stacks would collide, give each trust its own directory"))
    return issues


def flip_root_problem(value: str) -> str | None:
    """Why `value` cannot be FLIP's root on a host (flipgitops writes and wipes under it)."""
    example = "e.g. /opt/flip"
    if not value.startswith("/"):
        return f"flip_root must be an absolute path on the host, {example}"
    if not value.strip("/"):
        return ("flip_root cannot be '/': flipgitops writes <flip_root>/trust and wipes "
                f"<flip_root>/fl-kit before every kit sync; give FLIP its own directory, {example}")
    if ".." in value.split("/"):
        return f"flip_root must not contain a '..' component; write the directory itself, {example}"
    if not _FLIP_ROOT_RE.fullmatch(value):
        return ("flip_root may contain only letters, digits and '.', '_', '-', '+', '@', '/' "
                f"(FLIP's Makefile and compose files use it unquoted), {example}")
    normal = "/" + posixpath.normpath(value).lstrip("/")
    if normal != value:
        return (f"flip_root is not normalised (no '//', '/./' or trailing '/'); write "
                f"{_show(normal)}")
    return None


def address_problem(value: str) -> str | None:
    """A DNS name, an ssh_config alias or an IP address, optionally `:port`, and nothing that
    ssh would read as an option or inventory syntax."""
    if value.startswith("-"):
        return ("host.address must not start with '-' (ssh would read it as an option); "
                "give the host's DNS name or IP address")
    if "@" in value:
        return "host.address is the machine only; put the login name in host.user"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name, sep, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    if sep and not (_PORT_RE.fullmatch(port) and 0 < int(port) < 65536):
        return f"{_show(value)} has an invalid port; write address or address:port"
    if not _SSH_HOST_RE.fullmatch(name):
        return (f"{_show(value)} is not a host name or IP address; give the host's DNS name "
                "(e.g. flip.trust1.example.nhs.uk) or its IP, optionally with :port")
    return None


def user_problem(value: str) -> str | None:
    if _USER_RE.fullmatch(value):
        return None
    return (f"{_show(value)} is not a login name: start with a letter or '_', then up to 31 "
            "letters, digits, '_', '.' or '-'")


# -- hub, images, release ------------------------------------------------------------------


def _tag_rules(data: Mapping[str, Any], prod: bool) -> list[Issue]:
    policy = data.get("policy")
    immutable = _get(data, "policy", "immutable_tags") if isinstance(policy, Mapping) else True
    required = prod or immutable is not False
    why = "prod always requires immutable tags" if prod else "policy.immutable_tags is on"
    issues: list[Issue] = []
    images = _get(data, "hub", "images")
    for key in ("hub_tag", "fl_tag"):
        tag = images.get(key) if isinstance(images, Mapping) else None
        if not isinstance(tag, str):
            continue
        path: LocPath = ("hub", "images", key)
        if not flip.DOCKER_TAG_RE.fullmatch(tag):
            issues.append(Issue(path, f"{_show(tag)} is not a valid image tag; use letters, "
                                "digits, '_', '.' or '-', e.g. v2.3.0"))
        elif required and not flip.is_immutable_tag(tag):
            floating = (f"{_show(tag)} is a floating tag: it can point at a different image "
                        "tomorrow, so a plan would not say what runs"
                        if tag.lower() in flip.FLOATING_TAGS else
                        f"{_show(tag)} is not an immutable tag")
            issues.append(Issue(path, f"{floating}; {why}, pin a release like v2.3.0 or a "
                                "commit like sha-1a2b3c4 (FG005)"))
    ref = _get(data, "flip", "ref")
    if isinstance(ref, str):
        problem = git_ref_problem(ref)
        if problem:
            issues.append(Issue(("flip", "ref"), problem))
        elif required and not (flip.RELEASE_TAG_RE.fullmatch(ref) or COMMIT_RE.fullmatch(ref)):
            issues.append(Issue(("flip", "ref"), f"{_show(ref)} can move (a branch or another "
                                f"name); {why}, so pin FLIP's trust/ directory to a release tag "
                                "like v2.3.0 or a commit id"))
    return issues


def git_ref_problem(ref: str) -> str | None:
    """`git check-ref-format`'s rules, plus no leading '-' (git would read an option)."""
    bad = (not _GIT_REF_RE.fullmatch(ref) or ".." in ref or "//" in ref or "@{" in ref
           or ref.endswith((".", "/", ".lock")) or "/." in ref)
    if not bad:
        return None
    return (f"{_show(ref)} is not a git ref flipgitops can check out: use a tag, branch or "
            "commit of FLIP, e.g. v2.3.0 (no spaces, '..', or leading '-')")


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
    issues: list[Issue] = []
    if _get(data, "hub", "fl_server", "allowlist") == "terraform" and hub.get("terraform") is None:
        issues.append(Issue(("hub", "terraform"),
                            "fl_server.allowlist is terraform, so hub.terraform is required: "
                            "add terraform: {dir: <the hub's Terraform root>, "
                            "backend_config: {...}}"))
    domain = hub.get("domain")
    if isinstance(domain, str) and not _is_endpoint(domain, port=True):
        issues.append(Issue(("hub", "domain"), f"{_show(domain)} is not a domain name: give the "
                            "hub's host name only (CENTRAL_HUB_API_URL is https://<domain>/api), "
                            "e.g. app.flip.aicentre.co.uk"))
    hostname = _get(data, "hub", "fl_server", "hostname")
    if isinstance(hostname, str) and not _is_endpoint(hostname, port=False):
        issues.append(Issue(("hub", "fl_server", "hostname"), f"{_show(hostname)} is not a host "
                            "name (NLB_SUBDOMAIN; the port is fl_server.port), e.g. "
                            "fl.app.flip.aicentre.co.uk"))
    registry = _get(data, "hub", "images", "registry")
    if isinstance(registry, str) and not _REGISTRY_RE.fullmatch(registry):
        issues.append(Issue(("hub", "images", "registry"), f"{_show(registry)} is not an image "
                            "registry and namespace: write host[:port]/namespace in lower "
                            "case, e.g. ghcr.io/londonaicentre"))
    header = hub.get("trust_api_key_header")
    if isinstance(header, str) and not _HEADER_RE.fullmatch(header):
        issues.append(Issue(("hub", "trust_api_key_header"), f"{_show(header)} is not an HTTP "
                            f"header name (TRUST_API_KEY_HEADER), e.g. "
                            f"{Hub.model_fields['trust_api_key_header'].default}"))
    return issues


def _is_endpoint(value: str, port: bool) -> bool:
    name, sep, number = value.rpartition(":") if port and ":" in value else (value, "", "")
    if sep and not (_PORT_RE.fullmatch(number) and 0 < int(number) < 65536):
        return False
    try:
        ipaddress.IPv4Address(name)
        return True
    except ValueError:
        return len(name) <= 253 and bool(_DNS_RE.fullmatch(name))


# -- secrets -------------------------------------------------------------------------------


def is_secret_reference(value: str) -> bool:
    """`env:NAME`, `ssm:/path` or `secretsmanager:name#key`."""
    return any(ref.fullmatch(value) for ref in REFERENCE_RES)


def looks_like_secret(value: str) -> bool:
    """A PEM block, an SSH key line, a multi-line value, or a long random-looking token.

    Tokens must be long hex or mix upper case, lower case and digits (FLIP's keys are
    `token_urlsafe(32)`), so paths and hyphenated names of the same length are not flagged.
    """
    text = value.strip()
    if _PEM.search(value) or "\n" in text or _HEX_BLOB.fullmatch(text):
        return True
    return bool(_TOKEN_BLOB.fullmatch(text) and not text.startswith(("/", "."))
                and any(c.isupper() for c in text) and any(c.islower() for c in text)
                and any(c.isdigit() for c in text))


_SECRET_HELP = ("secrets never go in the manifest (the value is not shown); store it in SSM, "
                "Secrets Manager or an environment variable and write a reference: env:NAME, "
                "ssm:/path or secretsmanager:name#key")


def _reference_paths(data: Mapping[str, Any]) -> Iterator[LocPath]:
    """Every path whose value must be a secret reference."""
    if _get(data, "hub", "admin_token") is not None:
        yield ("hub", "admin_token")
    for index, trust in _trusts(data):
        host = trust.get("host")
        if isinstance(host, Mapping):
            for key in ("ssh_key", "become_password"):
                if host.get(key) is not None:
                    yield ("trusts", index, "host", key)
        credentials = trust.get("credentials")
        if isinstance(credentials, Mapping):
            for key in credentials:
                if isinstance(key, str):
                    yield ("trusts", index, "credentials", key)


def _reference_rules(data: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for path in _reference_paths(data):
        value = _get(data, *path)
        if isinstance(value, str) and not is_secret_reference(value):
            secret = looks_like_secret(value)
            what = "holds what looks like a secret" if secret else "is not a reference"
            issues.append(Issue(path, f"{what}; {_SECRET_HELP}",
                                kind="secret" if secret else "rule"))
    for index, trust in _trusts(data):
        credentials = trust.get("credentials")
        if not isinstance(credentials, Mapping):
            continue
        for key in credentials:
            if isinstance(key, str) and key not in LOCAL_CREDENTIAL_KEYS:
                issues.append(Issue(("trusts", index, "credentials", key),
                                    _credential_key_message(key), anchor="key"))
    return issues


def _credential_key_message(key: str) -> str:
    if key in SECRET_KIT_KEYS or key in flip.KIT_CREDENTIAL_KEYS:
        return (f"{key} is issued by the hub when the trust registers, never given in the "
                "manifest; remove it")
    close = difflib.get_close_matches(key, LOCAL_CREDENTIAL_KEYS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"{_show(key)} is not a trust-local credential; {hint}credentials takes "
            f"{', '.join(LOCAL_CREDENTIAL_KEYS)}")


def _settings_paths(data: Mapping[str, Any]) -> Iterator[LocPath]:
    for index, trust in _trusts(data):
        settings = trust.get("settings")
        if isinstance(settings, Mapping):
            yield from (("trusts", index, "settings", k) for k in settings if isinstance(k, str))


def _settings_rules(data: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for index, trust in _trusts(data):
        settings = trust.get("settings")
        if not isinstance(settings, Mapping):
            continue
        for key, value in settings.items():
            if not isinstance(key, str):
                continue
            path: LocPath = ("trusts", index, "settings", key)
            message = _settings_key_message(key)
            if message:
                issues.append(Issue(path, message, anchor="key",
                                    kind="secret" if key in SECRET_KIT_KEYS else "rule"))
            if not isinstance(value, str):
                continue
            if looks_like_secret(value):
                issues.append(Issue(path, f"holds what looks like a secret; settings are FLIP's "
                                    f"non-secret host-local profile. {_SECRET_HELP}",
                                    kind="secret"))
            elif key.endswith("_PORT") and not (_PORT_RE.fullmatch(value)
                                                and 0 < int(value) < 65536):
                issues.append(Issue(path, f"{key} must be a port number from 1 to 65535, "
                                    'written as a string, e.g. "8042"'))
    return issues


def _settings_key_message(key: str) -> str | None:
    """Why `key` is not a settings key (the key itself is shown, never the value)."""
    if key in flip.KIT_FILE_SETTINGS_KEYS:
        return None
    if key in LOCAL_CREDENTIAL_KEYS:
        return (f"{key} is a trust-local credential, not a setting: leave it out and "
                f"flipgitops mints it, or give a reference under credentials ({key}: "
                "ssm:/path)")
    if key in flip.HUB_SHARED_KEYS:
        return (f"{key} is hub-shared: flipgitops writes the same value for every trust from "
                "the hub (its images, fl_server, fl_kits and domain, and the hub's secret); "
                "remove it")
    if key in SECRET_KIT_KEYS or key in flip.KIT_CREDENTIAL_KEYS:
        return (f"{key} is a kit credential the hub issues when the trust registers; it is "
                "never written in the manifest, remove it")
    if key in flip.IDENTITY_KEYS:
        return f"{key} comes from the trust's name, code and region; remove it"
    if key in _DERIVED_KIT_KEYS:
        return f"{key} comes from {_DERIVED_KIT_KEYS[key]}; remove it"
    close = difflib.get_close_matches(key, sorted(flip.KIT_FILE_SETTINGS_KEYS), n=1, cutoff=0.7)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"{_show(key)} is not a setting of FLIP's host-local profile (trust/.env.example); "
            f"{hint}the schema lists the keys settings takes, e.g. NUM_AVAILABLE_GPUS")


# -- walking -------------------------------------------------------------------------------


def _strings(root: Any) -> Iterator[tuple[LocPath, str, bool]]:
    """Every string with its path, and whether it is a mapping key; each shared (aliased)
    container is walked once."""
    seen: set[int] = set()
    stack: list[tuple[Any, LocPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            yield path, node, False
        elif isinstance(node, Mapping | list) and id(node) not in seen:
            seen.add(id(node))
            if isinstance(node, Mapping):
                for key, value in node.items():
                    if isinstance(key, str):
                        yield (*path, key), key, True
                        stack.append((value, (*path, key)))
            else:
                stack.extend((v, (*path, i)) for i, v in enumerate(node))


def _get(data: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(data, Mapping) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
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
