"""The SSH trust-host tests skip where the machine cannot make namespaces, except in CI."""

from __future__ import annotations

import pytest

from tests.sshhosts import fingerprint, secrets_in, skip_or_fail


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
