"""The SSH trust-host helpers: skip where the machine cannot make namespaces, except in CI;
secrets found are named by fingerprint only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.sshhosts import fingerprint, scan_tree, secrets_in, skip_or_fail, unavailable


def test_without_ci_the_ssh_tests_skip_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        skip_or_fail("needs root")


def test_in_ci_the_ssh_tests_fail_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI is set.*needs root"):
        skip_or_fail("needs root")


def test_a_found_secret_is_named_by_its_fingerprint_only() -> None:
    secret = "s3cr3t-value-0123456789"
    found = secrets_in(b"prefix " + secret.encode() + b" suffix", [secret, "absent-value"])
    assert found == [fingerprint(secret)]
    assert secret not in found[0] and found[0].startswith("sha256:")


def test_the_tree_scan_finds_a_planted_secret_and_honours_skips(tmp_path: Path) -> None:
    secret = "planted-" + "x7" * 12
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "leak.txt").write_text(f"KEY={secret}\n")
    (tmp_path / "kit").write_text(secret)
    (tmp_path / "link").symlink_to(tmp_path / "kit")
    found = scan_tree(tmp_path, [secret], skip=[tmp_path / "kit"])
    assert found == [f"{tmp_path / 'a' / 'leak.txt'}: {fingerprint(secret)}"]
    assert scan_tree(tmp_path, [secret], skip=[tmp_path / "kit", tmp_path / "a"]) == []


def test_a_machine_where_we_are_not_root_cannot_make_ssh_hosts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = unavailable()
    assert reason is not None and "root" in reason
