"""The flipgitops error tree.

Every failure a user can meet is one of these, so the CLI can map it to an exit code and a
message without a traceback. Messages must never contain secret values: constructors take
already-masked text only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class FlipGitopsError(Exception):
    """Base of every error flipgitops raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One located validation problem: ``file:line:col: location: message``."""

    file: str
    line: int
    col: int
    location: str
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"


class ManifestError(FlipGitopsError):
    """A manifest is invalid. Carries every problem found in one run, each with a location."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.location))
        super().__init__("\n".join(str(p) for p in self.problems))


class GuardBlocked(FlipGitopsError):
    """A blocking guard fired and was not allowed; nothing was changed."""

    exit_code = 3


class LockHeld(FlipGitopsError):
    """Another run holds the environment lock."""

    exit_code = 4


class AdapterError(FlipGitopsError):
    """An outside system (AWS, a host, terraform, git) failed in a way we can name."""


class AwsError(AdapterError):
    """An AWS call failed; the message names the resource and the likely cause."""


class HostError(AdapterError):
    """An Ansible run against trust hosts failed."""


class TerraformError(AdapterError):
    """The terraform CLI failed."""


class GitError(AdapterError):
    """A git operation failed (unknown revision, not a repository...)."""


class TransientError(AdapterError):
    """A failure that a rerun may fix (throttling, timeouts); the run stops cleanly."""


class PlanMismatch(FlipGitopsError):
    """``apply --plan`` found that the reviewed plan no longer matches the live world."""


class ApplyFailed(FlipGitopsError):
    """An action failed during apply; the report says what completed and what did not."""


class Interrupted(FlipGitopsError):
    """SIGINT/SIGTERM stopped the run at an action boundary."""


_TOKENISH = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")


def redact(text: str) -> str:
    """Long token-like runs (keys, hashes, session tokens) replaced: for messages that come
    from outside (an SDK, a subprocess) and are shown or journaled."""
    return _TOKENISH.sub("<redacted>", text)
