"""A thin typed wrapper around the ``terraform`` CLI, and the hub root as flipgitops drives it.

Why our own wrapper: flipgitops needs a handful of verbs, each with fixed flags that make
Terraform safe to drive unattended (no prompts, no colour, detailed exit codes, a saved plan
that is applied byte for byte), and errors it can show without leaking values. The
python-terraform package hides exit codes and prompts; a hundred lines of subprocess do not.

The hub root is FLIP's (`deploy/providers/AWS`), whose CI feeds it `TF_VAR_*` from
`make print-tf-env` (FLIP `Makefile`@0a13d3f9). flipgitops supplies only its own inputs —
the trusts' IPs, the image tags, `environment` (and `TRUST_NAMES` on E2 hubs) — in a var
file outside the root; every other variable without a default must come from the
environment, and a plan is refused before it starts when one does not, naming them all.

Nothing is written into the root: var files, plan files and Terraform's data directory
(`TF_DATA_DIR`) live in a private temporary directory. A read-only plan
(:meth:`HubTerraform.plan_readonly`) goes further and plans in a copy of the root, without a
state lock, so a pull request's plan leaves the hub's directory byte-identical.

Secrets: values Terraform marks sensitive are replaced by ``(sensitive)`` in everything this
module returns (plan JSON and outputs). Backend config values are not echoed in errors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flipgitops.errors import LockHeld, TerraformError
from flipgitops.model.actions import TerraformParams
from flipgitops.model.flip import TASK_ENV_TRUST_NAMES, terraform_environment

log = logging.getLogger(__name__)

TFVARS_FILE = "flipgitops.auto.tfvars.json"
# FLIP's root variable for the on-prem trusts' IPs (variables.tf@2e00fa22), one /32 rule each.
ALLOWLIST_VARIABLE = "local_trust_public_ips"
REDACTED = "(sensitive)"
DEFAULT_TIMEOUT = 900.0
_STDERR_TAIL = 2000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

# The guard callback: given `terraform show -json` of the plan, the problems that block it.
PlanGuard = Callable[[dict[str, Any]], list[str]]


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _tail(text: str, limit: int = _STDERR_TAIL) -> str:
    text = strip_ansi(text).strip()
    return text if len(text) <= limit else "…" + text[-limit:]


class Terraform:
    """One Terraform root directory, driven non-interactively.

    ``env`` is laid over the current environment (AWS credentials and endpoints usually come
    from there). TF_IN_AUTOMATION and TF_INPUT are always set; when neither TF_CLI_CONFIG_FILE
    nor ~/.terraformrc exists, an empty CLI config is used so Terraform does not warn about it.
    """

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        *,
        binary: str = "terraform",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.workdir = Path(workdir)
        self.timeout = timeout
        self._env = _terraform_env(env)
        found = shutil.which(binary, path=self._env.get("PATH"))
        if found is None:
            raise TerraformError(
                f"terraform is not on PATH (looked for {binary!r}); install Terraform >= 1.10 "
                "or put it on PATH"
            )
        self.binary = found

    # --- the six verbs -------------------------------------------------------------------

    def init(self, backend_config: Mapping[str, str], *, reconfigure: bool = True) -> None:
        """``terraform init [-reconfigure]`` with one -backend-config per key (sorted)."""
        args = ["init", "-input=false", "-no-color"]
        if reconfigure:
            args.append("-reconfigure")
        args += [f"-backend-config={k}={v}" for k, v in sorted(backend_config.items())]
        self._run(args)

    def write_tfvars(self, values: Mapping[str, Any]) -> Path:
        """Write ``flipgitops.auto.tfvars.json`` atomically (temp file + rename)."""
        target = self.workdir / TFVARS_FILE
        text = json.dumps(dict(values), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".flipgitops-tfvars-", dir=self.workdir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.debug("wrote %s (%d variables)", target, len(values))
        return target

    def plan(self, out: Path, *, var_file: Path | None = None, lock: bool = True) -> int:
        """Save a plan to ``out``. Returns 0 (no changes) or 2 (changes); raises otherwise."""
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}"]
        if var_file is not None:
            args.append(f"-var-file={var_file}")
        if not lock:
            args.append("-lock=false")
        return self._run(args, ok_codes=(0, 2)).returncode

    def show_json(self, planfile: Path) -> dict[str, Any]:
        """``terraform show -json`` of a saved plan, with sensitive values redacted."""
        proc = self._run(["show", "-json", "-no-color", str(planfile)])
        return redact_plan(_parse_json(proc.stdout, "terraform show -json"))

    def apply(self, planfile: Path) -> None:
        """Apply exactly this saved plan (Terraform refuses it if the state moved since)."""
        self._run(["apply", "-input=false", "-no-color", str(planfile)])

    def output_json(self) -> dict[str, Any]:
        """Root outputs as ``{name: value}``; sensitive outputs become ``(sensitive)``."""
        proc = self._run(["output", "-json", "-no-color"])
        raw = _parse_json(proc.stdout, "terraform output -json")
        return {
            name: REDACTED if spec.get("sensitive") else spec.get("value")
            for name, spec in sorted(raw.items())
        }

    # --- plumbing ------------------------------------------------------------------------

    def _run(
        self, args: Sequence[str], ok_codes: Sequence[int] = (0,)
    ) -> subprocess.CompletedProcess[str]:
        shown = _shown(args)
        log.debug("running terraform %s in %s", shown, self.workdir)
        try:
            proc = subprocess.run(
                [self.binary, *args],
                cwd=self.workdir,
                env=self._env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise TerraformError(f"terraform is not on PATH ({exc.filename})") from None
        except subprocess.TimeoutExpired:
            raise TerraformError(
                f"terraform {shown} timed out after {self.timeout:.0f}s in {self.workdir}"
            ) from None
        if proc.returncode not in ok_codes:
            tail = _tail(proc.stderr or proc.stdout)
            if "Error acquiring the state lock" in tail:
                raise LockHeld(f"terraform state is locked by another run:\n{tail}")
            raise TerraformError(
                f"terraform {shown} failed (exit {proc.returncode}) in {self.workdir}:\n{tail}"
            )
        return proc


def _terraform_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    if "TF_CLI_CONFIG_FILE" not in env and not (Path.home() / ".terraformrc").exists():
        env["TF_CLI_CONFIG_FILE"] = os.devnull
    return env


def _shown(args: Sequence[str]) -> str:
    """The command line for messages: backend-config keys only, never their values."""
    return " ".join(
        a.split("=", 2)[0] + "=" + a.split("=", 2)[1] + "=…"
        if a.startswith("-backend-config=") and a.count("=") >= 2
        else a
        for a in args
    )


def _parse_json(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TerraformError(f"{what} did not print JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TerraformError(f"{what} printed {type(data).__name__}, expected an object")
    return data


# --- redaction (pure) --------------------------------------------------------------------


def redact(value: Any, mask: Any) -> Any:
    """Replace the parts of ``value`` that Terraform's sensitivity ``mask`` marks true."""
    if mask is True:
        return REDACTED
    if isinstance(mask, dict) and isinstance(value, dict):
        return {k: redact(v, mask.get(k, False)) for k, v in value.items()}
    if isinstance(mask, list) and isinstance(value, list):
        return [redact(v, mask[i] if i < len(mask) else False) for i, v in enumerate(value)]
    return value


def _redact_change(change: dict[str, Any]) -> dict[str, Any]:
    out = dict(change)
    for side in ("before", "after"):
        if side in out:
            out[side] = redact(out[side], out.get(f"{side}_sensitive", False))
    return out


def _redact_module(module: dict[str, Any]) -> dict[str, Any]:
    out = dict(module)
    out["resources"] = [
        {**r, "values": redact(r.get("values"), r.get("sensitive_values", False))}
        for r in module.get("resources", [])
    ]
    out["child_modules"] = [_redact_module(m) for m in module.get("child_modules", [])]
    return out


def _redact_values(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "root_module" in out:
        out["root_module"] = _redact_module(out["root_module"])
    if "outputs" in out:
        out["outputs"] = {
            name: {**o, "value": REDACTED} if o.get("sensitive") else o
            for name, o in out["outputs"].items()
        }
    return out


def redact_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """A copy of `show -json` output without the values Terraform marks sensitive."""
    out = dict(plan)
    for key in ("resource_changes", "resource_drift"):
        if key in out:
            out[key] = [{**rc, "change": _redact_change(rc.get("change", {}))} for rc in out[key]]
    if "output_changes" in out:
        out["output_changes"] = {k: _redact_change(v) for k, v in out["output_changes"].items()}
    if "planned_values" in out:
        out["planned_values"] = _redact_values(out["planned_values"])
    if isinstance(out.get("prior_state"), dict) and "values" in out["prior_state"]:
        out["prior_state"] = {**out["prior_state"],
                              "values": _redact_values(out["prior_state"]["values"])}
    config_vars = out.get("configuration", {}).get("root_module", {}).get("variables", {})
    if "variables" in out:
        out["variables"] = {
            name: {**v, "value": REDACTED} if config_vars.get(name, {}).get("sensitive") else v
            for name, v in out["variables"].items()
        }
    return out


def changed_addresses(plan: Mapping[str, Any]) -> list[str]:
    """Addresses whose planned actions are anything but no-op/read, for summaries."""
    return [
        str(rc["address"])
        for rc in plan.get("resource_changes", [])
        if set(rc.get("change", {}).get("actions", [])) - {"no-op", "read"}
    ]


# --- the hub root's variables (pure) ------------------------------------------------------

_VARIABLE = re.compile(r'variable\s+"([^"]+)"\s*\{')


def _block(text: str, start: int) -> str:
    """The body of the block whose ``{`` is at ``start``: braces counted outside strings,
    comments and heredocs."""
    depth, i, n = 0, start, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch == "#" or text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i)
            i = n if i < 0 else i + 1
        elif text.startswith("<<", i):
            m = re.match(r"<<-?([A-Za-z_]+)\n", text[i:])
            if m:
                end = re.search(rf"^\s*{m.group(1)}\s*$", text[i + m.end():], re.M)
                i = n if end is None else i + m.end() + end.end()
                continue
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        i += 1
    return text[start + 1:]


def _depth_one(body: str) -> str:
    """The block body without nested blocks (a validation's condition is not a default)."""
    out, depth = [], 0
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class Variable:
    name: str
    has_default: bool
    type: str | None


def root_variables(root: Path) -> dict[str, Variable]:
    """Every ``variable`` block of the root's ``*.tf`` files (no HCL library is installed:
    a small scanner that respects strings, comments and heredocs is enough for these)."""
    found: dict[str, Variable] = {}
    for tf in sorted(root.glob("*.tf")):
        text = tf.read_text(encoding="utf-8", errors="replace")
        for m in _VARIABLE.finditer(text):
            top = _depth_one(_block(text, m.end() - 1))
            kind = re.search(r"^\s*type\s*=\s*([A-Za-z]+)", top, re.M)
            found[m.group(1)] = Variable(
                name=m.group(1),
                has_default=re.search(r"^\s*default\s*=", top, re.M) is not None,
                type=kind.group(1) if kind else None,
            )
    return found


def flipgitops_inputs(params: TerraformParams, variables: Mapping[str, Variable]
                      ) -> dict[str, Any]:
    """flipgitops' inputs under FLIP's variable names, only those the root declares.
    ``environment`` goes through FLIP's mapping (the root validates prod|stag)."""
    values: dict[str, Any] = {
        ALLOWLIST_VARIABLE: list(params.local_trust_public_ips),
        "docker_image_tag": params.docker_image_tag,
        "flip_fl_image_tag": params.flip_fl_image_tag,
        "environment": terraform_environment(params.environment),
    }
    if params.trust_names is not None:
        names = list(params.trust_names)
        var = variables.get(TASK_ENV_TRUST_NAMES)
        # E2's TRUST_NAMES reaches the task environment as a JSON list: a string variable
        # takes it JSON-encoded, a list variable as a list.
        values[TASK_ENV_TRUST_NAMES] = json.dumps(names) if var and var.type == "string" \
            else names
    return {k: v for k, v in values.items() if k in variables}


def missing_inputs(variables: Mapping[str, Variable], supplied: Mapping[str, Any],
                   environ: Mapping[str, str]) -> list[str]:
    """Root variables without a default that neither flipgitops nor ``TF_VAR_<name>``
    supplies (FLIP's CI exports them with `make print-tf-env`)."""
    return sorted(name for name, var in variables.items()
                  if not var.has_default and name not in supplied
                  and f"TF_VAR_{name}" not in environ)


# --- the hub root as flipgitops drives it -------------------------------------------------


@dataclass(frozen=True)
class TerraformResult:
    exit_code: int
    changed: bool
    applied: bool
    addresses: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # the guard's findings: nothing was applied
    plan: dict[str, Any] = field(default_factory=dict, repr=False)  # redacted
    outputs: dict[str, Any] = field(default_factory=dict)  # redacted


@contextmanager
def _private_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        os.chmod(tmp, 0o700)
        yield Path(tmp)


def _write_json(path: Path, values: Mapping[str, Any]) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(dict(values), fh, indent=2, sort_keys=True)
    return path


class HubTerraform:
    """TerraformPort for the hub root named by the manifest (`hub.terraform`)."""

    def __init__(self, root: Path, backend_config: Mapping[str, str], *,
                 env: Mapping[str, str] | None = None, binary: str = "terraform",
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.root = Path(root)
        self.backend_config = dict(backend_config)
        self.env = dict(env or {})
        self.binary = binary
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"HubTerraform({str(self.root)!r})"

    def _inputs(self, params: TerraformParams) -> dict[str, Any]:
        if not (self.root / "variables.tf").exists() and not list(self.root.glob("*.tf")):
            raise TerraformError(f"{self.root} holds no Terraform files: fix hub.terraform.dir")
        variables = root_variables(self.root)
        if ALLOWLIST_VARIABLE not in variables:
            # flipgitops passes only what the root declares, so a root without the variable
            # would plan and apply "successfully" and never allow a trust's IP.
            raise TerraformError(
                f"the hub's Terraform root {self.root} declares no variable "
                f"{ALLOWLIST_VARIABLE!r}, so the trusts' IPs cannot reach its allowlist "
                "(FLIP's older roots had `local_trust_public_ip`, one string): point "
                "hub.terraform.dir at a FLIP checkout whose deploy/providers/AWS/variables.tf "
                f"declares {ALLOWLIST_VARIABLE}, or use hub.fl_server.allowlist: api")
        values = flipgitops_inputs(params, variables)
        environ = {**os.environ, **self.env}
        missing = missing_inputs(variables, values, environ)
        if missing:
            raise TerraformError(
                f"the hub's Terraform root {self.root} needs {len(missing)} input(s) that "
                f"neither flipgitops nor the environment supplies: {', '.join(missing)}. "
                "Export them as TF_VAR_<name> (FLIP's CI does with `make print-tf-env >> "
                "$GITHUB_ENV`), then rerun"
            )
        return values

    def _terraform(self, workdir: Path, data_dir: Path) -> Terraform:
        return Terraform(workdir, env={**self.env, "TF_DATA_DIR": str(data_dir)},
                         binary=self.binary, timeout=self.timeout)

    def plan_readonly(self, inputs: TerraformParams) -> dict[str, Any]:
        values = self._inputs(inputs)
        with _private_dir("flipgitops-tfplan-") as tmp:
            copy = tmp / "root"
            shutil.copytree(self.root, copy, symlinks=True,
                            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
            tf = self._terraform(copy, tmp / "data")
            tf.init(self.backend_config, reconfigure=False)
            planfile = tmp / "plan.tfplan"
            tf.plan(planfile, var_file=_write_json(tmp / "flipgitops.tfvars.json", values),
                    lock=False)
            return tf.show_json(planfile)

    def apply(self, inputs: TerraformParams, guard: PlanGuard) -> TerraformResult:
        """Plan in the root (state and `path.module` are the real ones), check that very
        plan file with ``guard``, apply it; nothing is written into the root but what
        Terraform's own init writes there (the provider lock file, when absent)."""
        values = self._inputs(inputs)
        with _private_dir("flipgitops-tfapply-") as tmp:
            tf = self._terraform(self.root, tmp / "data")
            tf.init(self.backend_config, reconfigure=False)
            planfile = tmp / "plan.tfplan"
            code = tf.plan(planfile, var_file=_write_json(tmp / "flipgitops.tfvars.json",
                                                           values))
            plan = tf.show_json(planfile)
            problems = tuple(guard(plan))
            addresses = tuple(changed_addresses(plan))
            if problems:
                return TerraformResult(code, code == 2, False, addresses, problems, plan)
            if code != 2:
                return TerraformResult(code, False, False, addresses, (), plan)
            tf.apply(planfile)
            return TerraformResult(code, True, True, addresses, (), plan, tf.output_json())
