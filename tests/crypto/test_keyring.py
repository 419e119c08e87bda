"""Tests for the KEK key ring and key files."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from avhopp.crypto import (
    KeyDestroyed,
    KeyFileError,
    KeyNotFound,
    KeyProvider,
    KeyUnwrapError,
    LocalKeyRing,
    add_kek,
    encode_env_value,
    generate_key_file,
    keyring_from_env_value,
    load_key_file,
    retire_kek,
    write_key_file,
)

AAD = b"some-aad"
DEK = bytes(range(32))


@pytest.fixture
def key_data() -> dict[str, Any]:
    return generate_key_file()


def _secrets_of(data: dict[str, Any]) -> list[str]:
    return [*data["keks"].values(), data["index_root"], data["audit_signing_key"]]


def test_generated_key_file_has_independent_32_byte_secrets(key_data: dict[str, Any]) -> None:
    assert key_data["format"] == "avhopp-keys/v1"
    assert re.fullmatch(r"kek-\d{4}-\d{2}-\d{2}-[0-9a-f]{4}", key_data["active_kek"])
    values = _secrets_of(key_data)
    assert all(len(base64.b64decode(v)) == 32 for v in values)
    assert len(set(values)) == len(values)
    assert _secrets_of(generate_key_file()) != values


def test_local_key_ring_is_a_key_provider(key_data: dict[str, Any]) -> None:
    provider: KeyProvider = LocalKeyRing(key_data)
    assert provider.active_kek_id == key_data["active_kek"]


def test_wrap_then_unwrap_returns_the_key(key_data: dict[str, Any]) -> None:
    ring = LocalKeyRing(key_data)
    kek_id, blob = ring.wrap(DEK, AAD)
    assert kek_id == ring.active_kek_id
    assert len(blob) == 12 + 32 + 16 and DEK not in blob
    assert ring.unwrap(kek_id, blob, AAD) == DEK


def test_wrapping_twice_gives_different_blobs(key_data: dict[str, Any]) -> None:
    ring = LocalKeyRing(key_data)
    assert ring.wrap(DEK, AAD)[1] != ring.wrap(DEK, AAD)[1]


def test_unwrap_with_other_aad_fails(key_data: dict[str, Any]) -> None:
    ring = LocalKeyRing(key_data)
    kek_id, blob = ring.wrap(DEK, AAD)
    with pytest.raises(KeyUnwrapError):
        ring.unwrap(kek_id, blob, b"other")


def test_unwrap_with_wrong_kek_material_fails(key_data: dict[str, Any]) -> None:
    kek_id, blob = LocalKeyRing(key_data).wrap(DEK, AAD)
    impostor = generate_key_file()
    impostor["keks"] = {kek_id: impostor["keks"][impostor["active_kek"]]}
    impostor["active_kek"] = kek_id
    with pytest.raises(KeyUnwrapError):
        LocalKeyRing(impostor).unwrap(kek_id, blob, AAD)


def test_unwrap_with_missing_kek_raises_key_not_found(key_data: dict[str, Any]) -> None:
    kek_id, blob = LocalKeyRing(key_data).wrap(DEK, AAD)
    with pytest.raises(KeyNotFound):
        LocalKeyRing(generate_key_file()).unwrap(kek_id, blob, AAD)


@pytest.mark.parametrize(
    "mangle",
    [lambda b: b[:-1], lambda b: b[:5], lambda b: b"", lambda b: bytes([b[0] ^ 1]) + b[1:]],
)
def test_unwrap_of_damaged_blob_fails(key_data: dict[str, Any], mangle: Any) -> None:
    ring = LocalKeyRing(key_data)
    kek_id, blob = ring.wrap(DEK, AAD)
    with pytest.raises(KeyUnwrapError):
        ring.unwrap(kek_id, mangle(blob), AAD)


def test_add_kek_makes_a_new_active_kek_and_keeps_the_old_one(key_data: dict[str, Any]) -> None:
    old_id, old_blob = LocalKeyRing(key_data).wrap(DEK, AAD)
    rotated = add_kek(key_data)
    assert key_data["active_kek"] == old_id and len(key_data["keks"]) == 1  # input untouched
    ring = LocalKeyRing(rotated)
    assert ring.active_kek_id != old_id and ring.kek_ids == {old_id, ring.active_kek_id}
    assert ring.unwrap(old_id, old_blob, AAD) == DEK
    new_id, new_blob = ring.wrap(DEK, AAD)
    assert new_id == ring.active_kek_id
    assert ring.unwrap(new_id, new_blob, AAD) == DEK


def test_retired_kek_cannot_unwrap_and_says_destroyed(key_data: dict[str, Any]) -> None:
    old_id, old_blob = LocalKeyRing(key_data).wrap(DEK, AAD)
    retired = retire_kek(add_kek(key_data), old_id)
    assert old_id not in retired["keks"] and retired["retired_keks"] == [old_id]
    with pytest.raises(KeyDestroyed):
        LocalKeyRing(retired).unwrap(old_id, old_blob, AAD)


def test_the_active_kek_cannot_be_retired(key_data: dict[str, Any]) -> None:
    with pytest.raises(KeyFileError):
        retire_kek(key_data, key_data["active_kek"])
    with pytest.raises(KeyNotFound):
        retire_kek(key_data, "kek-nope")


def test_write_key_file_creates_mode_0600_and_round_trips(
    tmp_path: Path, key_data: dict[str, Any]
) -> None:
    path = tmp_path / "keys.json"
    old_umask = os.umask(0)
    try:
        write_key_file(path, key_data)
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_key_file(path, require_private_mode=True) == key_data


def test_write_key_file_refuses_to_overwrite(tmp_path: Path, key_data: dict[str, Any]) -> None:
    path = tmp_path / "keys.json"
    path.write_text("precious")
    with pytest.raises(KeyFileError, match="overwrite"):
        write_key_file(path, key_data)
    assert path.read_text() == "precious"


def test_write_key_file_refuses_invalid_data(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        write_key_file(tmp_path / "keys.json", {"format": "avhopp-keys/v1"})
    assert not (tmp_path / "keys.json").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_load_refuses_group_or_other_access_when_private_mode_required(
    tmp_path: Path, key_data: dict[str, Any], mode: int
) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_data)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="group or others"):
        load_key_file(path, require_private_mode=True)
    assert load_key_file(path, require_private_mode=False) == key_data


@pytest.mark.parametrize("mode", [0o400, 0o600])
def test_load_accepts_owner_only_modes(tmp_path: Path, key_data: dict[str, Any], mode: int) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_data)
    path.chmod(mode)
    assert load_key_file(path, require_private_mode=True) == key_data


def test_load_refuses_symlink_and_missing_file(tmp_path: Path, key_data: dict[str, Any]) -> None:
    real = tmp_path / "keys.json"
    write_key_file(real, key_data)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(KeyFileError):
        load_key_file(link, require_private_mode=True)
    with pytest.raises(KeyFileError):
        load_key_file(tmp_path / "absent.json", require_private_mode=True)


def _broken(key_data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**key_data, **changes}


@pytest.mark.parametrize(
    "change",
    [
        {"format": "avhopp-keys/v2"},
        {"active_kek": "kek-missing"},
        {"keks": {}},
        {"keks": {"kek-a": base64.b64encode(bytes(16)).decode()}},
        {"keks": {"kek-a": "not base64!"}},
        {"keks": {"": base64.b64encode(bytes(32)).decode()}},
        {"index_root": base64.b64encode(bytes(31)).decode()},
        {"index_root": None},
        {"audit_signing_key": 12},
        {"retired_keks": "kek-a"},
    ],
)
def test_invalid_key_files_are_refused(key_data: dict[str, Any], change: dict[str, Any]) -> None:
    data = _broken(key_data, **change)
    if change.get("keks"):
        data["active_kek"] = next(iter(change["keks"]))
    with pytest.raises(KeyFileError):
        LocalKeyRing(data)


def test_retired_kek_still_holding_material_is_refused(key_data: dict[str, Any]) -> None:
    with pytest.raises(KeyFileError):
        LocalKeyRing(_broken(key_data, retired_keks=[key_data["active_kek"]]))


def test_key_file_errors_do_not_reveal_key_material(key_data: dict[str, Any]) -> None:
    secret = base64.b64encode(os.urandom(20)).decode()
    with pytest.raises(KeyFileError) as info:
        LocalKeyRing(_broken(key_data, index_root=secret))
    assert secret not in str(info.value)


def test_non_json_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_bytes(b"\xff not json")
    path.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_key_file(path, require_private_mode=True)


def test_env_value_round_trip(key_data: dict[str, Any]) -> None:
    ring = keyring_from_env_value(encode_env_value(key_data))
    assert ring.active_kek_id == key_data["active_kek"]
    assert ring.index_root == base64.b64decode(key_data["index_root"])


@pytest.mark.parametrize(
    "value", ["", "%%%", base64.b64encode(b"not json").decode(), base64.b64encode(b"[]").decode()]
)
def test_bad_env_value_is_refused(value: str) -> None:
    with pytest.raises(KeyFileError):
        keyring_from_env_value(value)


def test_repr_shows_ids_but_no_secrets(key_data: dict[str, Any]) -> None:
    text = repr(LocalKeyRing(key_data))
    assert key_data["active_kek"] in text
    assert not any(s in text for s in _secrets_of(key_data))


def test_audit_signing_key_signs_and_verifies(key_data: dict[str, Any]) -> None:
    key = LocalKeyRing(key_data).audit_signing_key()
    signature = key.sign(b"checkpoint")
    key.public_key().verify(signature, b"checkpoint")


def test_written_file_is_plain_json(tmp_path: Path, key_data: dict[str, Any]) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_data)
    assert json.loads(path.read_text()) == key_data
