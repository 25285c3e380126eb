"""A thin typed wrapper around the ``terraform`` CLI, for hubs whose allowlist Terraform owns.

Why our own wrapper: flipgitops needs exactly six verbs, each with fixed flags that make
Terraform safe to drive unattended (no prompts, no colour, detailed exit codes, a saved plan
that is applied byte for byte), and errors it can show without leaking values. The
python-terraform package hides exit codes and prompts; a hundred lines of subprocess do not.

Secrets: tfvars written here hold IPs and image tags only, and are never logged. Values that
Terraform itself marks sensitive are replaced by ``(sensitive)`` in everything this module
returns (plan JSON and outputs), so callers can store or render them safely. Backend config
values are not echoed in errors (they may hold credentials in other setups).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flipgitops.errors import GuardBlocked, LockHeld, TerraformError

log = logging.getLogger(__name__)

TFVARS_FILE = "flipgitops.auto.tfvars.json"
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

    def init(self, backend_config: Mapping[str, str]) -> None:
        """``terraform init -reconfigure`` with one -backend-config per key (sorted)."""
        args = ["init", "-input=false", "-reconfigure", "-no-color"]
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

    def plan(self, out: Path) -> int:
        """Save a plan to ``out``. Returns 0 (no changes) or 2 (changes); raises otherwise."""
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}"]
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


# --- the high-level step the apply engine runs -------------------------------------------


def plan_and_apply_allowlist(
    tf: Terraform,
    tfvars: Mapping[str, Any],
    guard: PlanGuard,
    dry_run: bool,
) -> dict[str, Any]:
    """Render tfvars, plan to a file, check the plan JSON with ``guard``, apply that file.

    The guard sees exactly the plan that is applied: the same saved plan file goes to
    ``show -json`` and to ``apply``, so nothing can slip in between check and change. Raises
    GuardBlocked (nothing applied) when the guard returns problems, also in a dry run.

    Returns ``{"exit_code", "changed", "applied", "addresses", "plan", "outputs"}`` where
    ``plan`` is the redacted plan JSON and ``outputs`` the root outputs after the apply
    (empty when nothing was applied).
    """
    tf.write_tfvars(tfvars)
    with tempfile.TemporaryDirectory(prefix="flipgitops-tf-") as tmp:
        # The plan file embeds state and variable values: keep it out of the work tree and
        # delete it as soon as it is applied.
        planfile = Path(tmp) / "flipgitops.tfplan"
        code = tf.plan(planfile)
        plan = tf.show_json(planfile)
        problems = guard(plan)
        if problems:
            raise GuardBlocked(
                "terraform plan blocked, nothing applied:\n" + "\n".join(f"- {p}" for p in problems)
            )
        addresses = changed_addresses(plan)
        applied = code == 2 and not dry_run
        if applied:
            tf.apply(planfile)
    return {
        "exit_code": code,
        "changed": code == 2,
        "applied": applied,
        "addresses": addresses,
        "plan": plan,
        "outputs": tf.output_json() if applied else {},
    }
