"""`flipgitops adopt`: take over a running FLIP without touching a trust.

1. Observe the hub (both registry eras) and the hosts the manifest names; hosts recognise
   the FLIP release they hold by its files (every tag of flip.checkout is a candidate).
   A trust whose kit file is under another code is found by the host's only kit file.
2. `core/adopt.py` works out the manifest edits and each trust's verdict; the edits are
   applied to the file's text (`core/manifest_edit.py`, comments and order kept) and the
   result must validate.
3. Observe again with the adopted manifest (the kit bucket at the adopted date, each host's
   FL kit against its slot's keys) and with the adopted ledger entries, settle the verdicts
   on those fresh facts, and predict the plan with the real planner: what `plan` will still
   do after `--write` (nothing, on a world FLIP's procedures left alone).
4. With `--write` only, under the environment's lock: read the held trusts' keys from their
   kit files (a host step that returns them over the run's in-memory channel), check each
   against the sha256 the facts and the hub agreed on, escrow them (kit JSON and trust-local
   credentials, skipped when the escrow already holds the same), write the ledger entries
   and the manifest. Nothing else is written, in AWS or on any host; without `--write`
   nothing at all is.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from flipgitops.core import adopt as core
from flipgitops.core.manifest_edit import EditError, apply_edits
from flipgitops.core.parse import parse_manifest
from flipgitops.core.planner import plan as make_plan
from flipgitops.engine.manifests import display_name, load_env, read_manifest_text
from flipgitops.engine.wiring import Wiring
from flipgitops.errors import FlipGitopsError, ManifestError
from flipgitops.model.kit import (
    LOCAL_CREDENTIAL_KEYS,
    EscrowedKit,
    LocalCredentials,
    TrustKit,
    sha256_hex,
)
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedHost, ObservedLedger, ObservedState
from flipgitops.model.plan import Plan, PlanOptions

if TYPE_CHECKING:
    from flipgitops.engine.ports_hosts import ReleaseCandidate
    from flipgitops.engine.ports_hub import EscrowPort
    from flipgitops.engine.ports_state import StatePort

Status = Callable[[str], None]
MAX_RELEASES = 40  # tags of flip.checkout a host's trust/ is compared with, newest first
SECRET_KEYS = (*core.KEY_FIELDS, *LOCAL_CREDENTIAL_KEYS)


@dataclass(frozen=True)
class Written:
    """What `--write` wrote (names only)."""

    escrow: tuple[str, ...] = ()  # SSM parameter names written
    escrow_unchanged: tuple[str, ...] = ()  # trusts whose escrow already held the same
    ledger: tuple[str, ...] = ()  # trusts whose ledger entry was written
    manifest: bool = False
    lock: str | None = None


@dataclass
class AdoptionResult:
    environment: str
    manifest_path: str
    write: bool
    diff: str = ""
    edits: tuple[core.Edit, ...] = ()
    trusts: tuple[core.TrustAdoption, ...] = ()
    problems: tuple[str, ...] = ()
    fatal: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()  # problems of the adopted manifest (nothing written)
    unmanaged: tuple[str, ...] = ()
    predicted: Plan | None = None  # what plan does after --write
    written: Written | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.fatal or self.invalid)

    @property
    def not_held(self) -> tuple[core.TrustAdoption, ...]:
        return tuple(t for t in self.trusts if t.verdict in ("not held", "unconfirmed"))


def run_adopt(env: str, *, write: bool, status: Status) -> AdoptionResult:
    manifest, path = load_env(env)
    text = read_manifest_text(path)
    name = display_name(path)
    result = AdoptionResult(manifest.environment, name, write)
    wiring = Wiring.for_manifest(manifest, path)
    status(f"observing {manifest.environment} to adopt it (account {manifest.aws.account_id}, "
           f"{manifest.aws.region}); nothing is changed while observing...")
    first = _observe(wiring, status, candidates=_candidates(wiring, manifest, all_tags=True))
    codes = core.discover_codes(manifest, first)
    if codes:
        status(f"kit files found under other codes: {', '.join(sorted(codes))}; reading them...")
        first = _regather(wiring, manifest, first, codes, status)
    adoption = core.adopt(manifest, first, codes=codes)
    result.fatal = adoption.fatal
    if adoption.fatal:
        result.trusts, result.problems = adoption.trusts, adoption.problems
        return result
    try:
        adopted_text = apply_edits(text, adoption.edits)
        adopted = parse_manifest(adopted_text, name)
    except ManifestError as exc:
        result.edits, result.trusts, result.problems = adoption.edits, adoption.trusts, \
            adoption.problems
        result.invalid = tuple(str(p) for p in exc.problems)
        return result
    except EditError as exc:
        raise FlipGitopsError(f"{name}: {exc}; nothing was written") from None
    result.edits = adoption.edits
    result.diff = "".join(difflib.unified_diff(
        text.splitlines(keepends=True), adopted_text.splitlines(keepends=True),
        fromfile=f"a/{name}", tofile=f"b/{name}"))

    # -- settle on facts gathered with the adopted manifest -------------------------------
    wiring2 = Wiring.for_manifest(adopted, path, clients=wiring.clients)
    status("observing again with the adopted manifest...")
    overlay = core.with_adoption(first.ledger, adoption.trusts)
    second = _observe(wiring2, status, candidates=_candidates(wiring2, adopted,
                                                               all_tags=False),
                      ledger=overlay)
    settled = core.adopt(adopted, second)
    if settled.edits:
        result.notes += ("a second observation would change the adopted manifest again ("
                         + ", ".join(".".join(str(p) for p in e.path) for e in settled.edits)
                         + "): adopt again after --write to settle it",)
    trusts = settled.trusts
    result.problems = tuple(dict.fromkeys((*adoption.problems, *settled.problems)))
    if write:
        trusts, written = _write(wiring2, adopted, second, trusts, text, adopted_text, path,
                                 status)
        result.written = written
    result.trusts = trusts
    final = second.model_copy(update={"ledger": core.with_adoption(second.ledger, trusts)})
    result.predicted = make_plan(adopted, final, PlanOptions())
    result.unmanaged = core.unmanaged(adopted, final)
    return result


# --- observing ---------------------------------------------------------------------------------


def _candidates(wiring: Wiring, manifest: Manifest, *, all_tags: bool
                ) -> list[ReleaseCandidate]:
    """The releases a host's trust/ is compared with: flip.ref, and (first observation)
    every tag of the checkout, newest first."""
    from flipgitops.adapters.release import GitRelease

    release = GitRelease()
    refs = [manifest.flip.ref]
    if all_tags:
        with contextlib.suppress(FlipGitopsError):
            refs += [t for t in release.tags(wiring.checkout) if t != manifest.flip.ref]
    out: list[ReleaseCandidate] = []
    for ref in refs[:MAX_RELEASES]:
        _, candidate = release.observe(wiring.checkout, ref)
        if candidate is not None:
            out.append(candidate)
    return out


def _observe(wiring: Wiring, status: Status, *, candidates: Sequence[ReleaseCandidate],
             ledger: ObservedLedger | None = None) -> ObservedState:
    from datetime import UTC, datetime

    from flipgitops.adapters.aws import observe_hub
    from flipgitops.adapters.release import GitRelease

    m = wiring.manifest
    read = wiring.side.state.read_ledger()
    if not read.readable:
        raise FlipGitopsError(f"flipgitops' ledger cannot be read: {read.error}; nothing was "
                              "written")
    # ``ledger`` (the adoption's entries overlaid) only says which slot each host's FL kit
    # is compared with; the observation itself carries the ledger as it is.
    led = ledger if ledger is not None else read
    known = [t.fl_kit_slot for t in led.trusts.values() if t.fl_kit_slot]
    hub = observe_hub(m, wiring.clients, wiring.endpoints, known_slots=known)
    release, _ = GitRelease().observe(wiring.checkout, m.flip.ref)
    partial = ObservedState(environment=m.environment, hub=hub, ledger=led,
                            flip_release=release)
    targets = wiring.host_targets(partial, candidates)
    hosts = wiring.gather_hosts(status, targets)
    return partial.model_copy(update={
        "ledger": read, "hosts": hosts,
        "observed_at": datetime.now(UTC).isoformat(timespec="seconds")})


def _regather(wiring: Wiring, manifest: Manifest, observed: ObservedState,
              codes: dict[str, str], status: Status) -> ObservedState:
    """The hosts of trusts whose kit file is under another code, gathered with that code."""
    trusts = [t.model_copy(update={"code": codes.get(t.name, t.code)}) for t in manifest.trusts]
    recoded = manifest.model_copy(update={"trusts": trusts})
    other = Wiring(recoded, wiring.path, wiring.clients, wiring.endpoints, _hosts=wiring.hosts)
    candidates = _candidates(wiring, manifest, all_tags=True)
    targets = [t for t in other.host_targets(observed, candidates) if t.trust in codes]
    found: dict[str, ObservedHost] = dict(observed.hosts)
    found.update(other.gather_hosts(status, targets))
    return observed.model_copy(update={"hosts": found})


# --- writing -----------------------------------------------------------------------------------


def _write(wiring: Wiring, adopted: Manifest, observed: ObservedState,
           trusts: Sequence[core.TrustAdoption], text: str, adopted_text: str, path: Path,
           status: Status) -> tuple[tuple[core.TrustAdoption, ...], Written]:
    from flipgitops.engine.output import write_atomic
    from flipgitops.engine.ports_hosts import HostTarget

    side = wiring.side
    run_id = wiring.acquire_lock()
    escrowed: list[str] = []
    unchanged: list[str] = []
    out = list(trusts)
    try:
        held = [t for t in trusts if t.escrow]
        targets = [HostTarget.of(adopted, trust, wiring.base_dir)
                   for t in held if (trust := adopted.trust(t.name)) is not None]
        if targets:
            status(f"reading the keys of {len(targets)} kit file(s) (over the run's in-memory "
                   "channel only)...")
        read = wiring.hosts.read_kit_secrets(targets, SECRET_KEYS) if targets else {}
        for i, ta in enumerate(out):
            if not ta.escrow:
                continue
            got = read.get(ta.name)
            problem = _check(ta, got.values if got is not None and got.ok else None,
                             got.message if got is not None else "no result")
            if problem is not None:
                out[i] = core.not_held(ta, problem, hub_has_it=_hub_has(adopted, observed,
                                                                         ta.name))
                continue
            assert got is not None and ta.ledger is not None
            kit = EscrowedKit(
                kit=TrustKit(trust_id=ta.trust_id or "", trust_name=ta.name,
                             trust_api_key=got.values["TRUST_API_KEY"],
                             trust_internal_service_key=got.values["TRUST_INTERNAL_SERVICE_KEY"],
                             fl_kit_slot=ta.slot, fl_kit_slot_number=ta.slot_number),
                credentials_generation=ta.ledger.credentials_generation,
                database_generation=ta.ledger.database_generation)
            local = {k: v for k, v in got.values.items() if k in LOCAL_CREDENTIAL_KEYS}
            same = _same_escrow(side.escrow, ta.name, kit, local)
            if same:
                unchanged.append(ta.name)
            else:
                from flipgitops.adapters.escrow import kit_parameter, local_parameter

                side.escrow.write_kit(ta.name, kit)
                escrowed.append(kit_parameter(adopted.environment, ta.name))
                if local:
                    side.escrow.write_local(ta.name, LocalCredentials(values=local))
                    escrowed.append(local_parameter(adopted.environment, ta.name))
        ledger_names = _write_ledger(side.state, out)
        manifest_written = adopted_text != text
        if manifest_written:
            write_atomic(path, adopted_text)
    finally:
        problem = wiring.release_lock(run_id)
        if problem:
            status(f"warning: {problem}")
    return tuple(out), Written(tuple(escrowed), tuple(unchanged), tuple(ledger_names),
                               manifest_written, run_id)


def _check(ta: core.TrustAdoption, values: dict[str, SecretStr] | None, message: str
           ) -> str | None:
    """Why the values read are not the ones the hub accepts (None: they are): each must
    hash to what the facts (and so the hub) agreed on."""
    if values is None:
        return f"its kit file could not be read for the escrow ({message}): nothing escrowed"
    for key, want in ta.expected_sha256.items():
        value = values.get(key)
        if value is None:
            return f"its kit file lost {key} since it was observed: nothing escrowed"
        try:
            got = sha256_hex(value.get_secret_value())
        except UnicodeEncodeError:
            return f"its kit file's {key} is not text: nothing escrowed"
        if got != want:
            return (f"its kit file's {key} changed since it was observed (sha256 "
                    f"{got[:12]}, observed {want[:12]}): nothing escrowed; adopt again")
    return None


def _hub_has(adopted: Manifest, observed: ObservedState, name: str) -> bool:
    from flipgitops.core.world import World

    return bool(World(adopted, observed).in_hub(name))


def _same_escrow(escrow: EscrowPort, trust: str, kit: EscrowedKit,
                 local: dict[str, SecretStr]) -> bool:
    held = escrow.read_kit(trust)
    if held is None or held.kit.to_flip_json() != kit.kit.to_flip_json() or \
            (held.credentials_generation, held.database_generation) != \
            (kit.credentials_generation, kit.database_generation):
        return False
    if not local:
        return True
    old = escrow.read_local(trust)
    return old is not None and {k: v.get_secret_value() for k, v in old.values.items()} == \
        {k: v.get_secret_value() for k, v in local.items()}


def _write_ledger(state: StatePort, trusts: Sequence[core.TrustAdoption]) -> list[str]:
    current = state.read_ledger()
    wanted = core.with_adoption(current, trusts)
    changed = sorted(n for n, e in wanted.trusts.items() if current.trusts.get(n) != e)
    if changed:
        state.update_ledger(lambda ledger: core.with_adoption(ledger, trusts))
    return changed
