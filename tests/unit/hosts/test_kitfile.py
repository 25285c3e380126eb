"""core/kitfile: FLIP's kit file rendered from the manifest, and parsed back."""

from __future__ import annotations

import pytest

from flipgitops.core import kitfile
from flipgitops.model.flip import (
    HUB_SHARED_KEYS,
    HUB_SHARED_SENTINEL,
    KIT_CREDENTIAL_KEYS,
    PLACEHOLDER_PREFIX,
)
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, SECRET_KIT_KEYS
from flipgitops.reconcilers.ansible.flipgitops_host import (
    kitfile as host_kitfile,
)
from tests.unit.hosts.hostworld import (
    BUCKET,
    DOMAIN,
    FL_HOST,
    KIT_DATE,
    make_aes,
    make_kit,
    make_local,
    make_manifest,
    secret_values,
    trust_entry,
)


def _manifest(**kw: object):  # type: ignore[no-untyped-def]
    settings = kw.pop("settings", None)
    return make_manifest([trust_entry(flip_root="/srv/flip", settings=settings,  # type: ignore[arg-type]
                                      region="London")], **kw)  # type: ignore[arg-type]


def _render(manifest):  # type: ignore[no-untyped-def]
    kit, local, aes = make_kit(), make_local(), make_aes()
    text = kitfile.render(manifest, manifest.trusts[0], kit=kit.kit, local=local, aes_key=aes)
    return text, kit, local, aes


def test_public_values_follow_flips_sections_and_hold_no_secret() -> None:
    m = _manifest()
    values = kitfile.public_values(m, m.trusts[0], slot="Trust_1", slot_number=1,
                                   trust_id="abc")
    keys = list(values)
    assert keys[:3] == ["TRUST_NAME", "TRUST_CODE", "TRUST_REGION"]
    hub = [k for k in HUB_SHARED_KEYS if k not in SECRET_KIT_KEYS]
    assert [k for k in keys if k in HUB_SHARED_KEYS] == hub
    assert keys[-3:] == ["FL_KIT_SLOT", "FL_KIT_SLOT_NUMBER", "EXPECTED_TRUST_ID"]
    assert not set(keys) & SECRET_KIT_KEYS
    assert values["CENTRAL_HUB_API_URL"] == f"https://{DOMAIN}/api"
    assert values["DOCKER_REGISTRY"] == "ghcr.io/londonaicentre/"
    assert values["DOCKER_FL_REGISTRY"] == "ghcr.io/londonaicentre/"
    assert values["FLARE_KIT_DATE"] == KIT_DATE and values["FLOWER_KIT_DATE"] == ""
    assert values["NLB_SUBDOMAIN"] == FL_HOST and values["FL_SERVER_PORT"] == "8002"
    assert values["TRUST_API_KEY_HEADER"] == "X-Trust-API-Key"
    assert values["FL_KIT_DIR"] == "/srv/flip/fl-kit"
    assert values["BASE_IMAGES_DOWNLOAD_DIR"] == "/srv/flip/data/trust-1"
    assert values["AICENTRE_BUCKET_NAME"] == BUCKET
    assert values["LOKI_DATA_VOLUME"] == "/srv/flip/volumes/loki"
    assert values["OBSERVABILITY_CONFIG_DIR"] == "/srv/flip/config/observability"
    assert values["EXPECTED_TRUST_ID"] == "abc"


def test_flower_sets_its_own_kit_date() -> None:
    m = _manifest(backend="flower")
    values = kitfile.public_values(m, m.trusts[0], slot="Trust_1", slot_number=1,
                                   trust_id="x")
    assert values["FLOWER_KIT_DATE"] == KIT_DATE and values["FLARE_KIT_DATE"] == ""
    assert values["FL_BACKEND"] == "flower"


def test_settings_override_known_keys_and_refuse_others() -> None:
    m = _manifest(settings={"NUM_AVAILABLE_GPUS": "2", "OMOP_DB_PORT": "6000"})
    values = kitfile.public_values(m, m.trusts[0], slot="Trust_1", slot_number=3,
                                   trust_id="x")
    assert values["NUM_AVAILABLE_GPUS"] == "2" and values["OMOP_DB_PORT"] == "6000"
    for bad in ("TRUST_API_KEY", "DOCKER_TAG", "ORTHANC_PASSWORD", "NOPE"):
        m = _manifest(settings={bad: "1"})
        with pytest.raises(kitfile.KitFileError, match=bad):
            kitfile.public_values(m, m.trusts[0], slot="Trust_1", slot_number=1, trust_id="x")
    assert "NUM_AVAILABLE_GPUS" in kitfile.SETTINGS_KEYS
    assert not kitfile.SETTINGS_KEYS & SECRET_KIT_KEYS


def test_render_is_flips_layout_with_every_key_once_and_the_sentinel() -> None:
    text, kit, local, aes = _render(_manifest())
    lines = text.splitlines()
    assert lines.count(HUB_SHARED_SENTINEL) == 1
    after = lines[lines.index(HUB_SHARED_SENTINEL) + 1:]
    assert [line.split("=", 1)[0] for line in after[:len(HUB_SHARED_KEYS)]] == \
        list(HUB_SHARED_KEYS)
    parsed = kitfile.parse(text)
    assert parsed.has_sentinel and parsed.placeholders == ()
    assert list(parsed.keys) == [k for k in kitfile.ALL_KEYS]
    assert len(parsed.keys) == len(set(parsed.keys))
    assert [k for k in parsed.keys if k in KIT_CREDENTIAL_KEYS] == list(KIT_CREDENTIAL_KEYS)
    assert parsed.values["TRUST_API_KEY"] == kit.kit.trust_api_key.get_secret_value()  # type: ignore[union-attr]
    assert parsed.values["AES_KEY_BASE64"] == aes.get_secret_value()
    for key in LOCAL_CREDENTIAL_KEYS:
        assert parsed.values[key] == local.values[key].get_secret_value()
    assert text.endswith("\n") and "\n\n\n" not in text


def test_public_values_are_exactly_the_rendered_non_secrets() -> None:
    m = _manifest()
    text, kit, _local, _aes = _render(m)
    public = kitfile.public_values(m, m.trusts[0], slot="Trust_1", slot_number=1,
                                   trust_id=kit.kit.trust_id)
    assert kitfile.parse(text).public() == public


def test_render_refuses_values_flip_readers_would_change() -> None:
    m = _manifest(settings={"TRUST_LOG_LEVEL": "DEBUG #loud"})
    with pytest.raises(kitfile.KitFileError, match="TRUST_LOG_LEVEL") as exc:
        _render(m)
    assert "loud" not in str(exc.value)


def test_render_refuses_a_kit_without_keys_or_slot() -> None:
    m = _manifest()
    kit = make_kit().kit.model_copy(update={"trust_api_key": None})
    with pytest.raises(kitfile.KitFileError, match="no trust API key"):
        kitfile.render(m, m.trusts[0], kit=kit, local=make_local(), aes_key=make_aes())
    kit = make_kit().kit.model_copy(update={"fl_kit_slot_number": None})
    with pytest.raises(kitfile.KitFileError, match="slot"):
        kitfile.render(m, m.trusts[0], kit=kit, local=make_local(), aes_key=make_aes())


def test_no_secret_outside_its_own_line() -> None:
    text, kit, local, aes = _render(_manifest())
    for value in secret_values(kit, local, aes):
        hits = [line for line in text.splitlines() if value in line]
        assert len(hits) == 1 and hits[0].split("=", 1)[0] in SECRET_KIT_KEYS


# text -> (values, keys in order, placeholder keys, has the sentinel), as FLIP's readers see
# it: compose's env-file reader drops surrounding quotes, the last assignment wins, Make's
# `export ` prefix is allowed, anything without `=` is not an assignment.
PARSE_CASES = [
    ("A=1\nB=2\n", {"A": "1", "B": "2"}, ("A", "B"), (), False),
    ("export A=1\n# c=3\n\nB = 'q v'\n", {"A": "1", "B": "q v"}, ("A", "B"), (), False),
    ('A="x"\nA=y\n', {"A": "y"}, ("A",), (), False),
    ("X=<run-make-register-trust>\nY=ok\n", {"X": "<run-make-register-trust>", "Y": "ok"},
     ("X", "Y"), ("X",), False),
    (f"{HUB_SHARED_SENTINEL}\nAES_KEY_BASE64=abc=\n", {"AES_KEY_BASE64": "abc="},
     ("AES_KEY_BASE64",), (), True),
    ("junk line\n=novalue\nK=\n", {"": "novalue", "K": ""}, ("", "K"), (), False),
]


@pytest.mark.parametrize(("text", "values", "keys", "placeholders", "sentinel"), PARSE_CASES)
def test_kit_files_read_as_flips_readers_read_them(
        text: str, values: dict[str, str], keys: tuple[str, ...], placeholders: tuple[str, ...],
        sentinel: bool) -> None:
    """One reader serves the controller and the hosts (core/kitfile.parse is the host
    module's); these are the answers both must give."""
    ours = kitfile.parse(text)
    assert (ours.values, ours.keys, ours.placeholders, ours.has_sentinel) == (
        values, keys, placeholders, sentinel)
    assert host_kitfile.parse(text, HUB_SHARED_SENTINEL, PLACEHOLDER_PREFIX)[0] == values
