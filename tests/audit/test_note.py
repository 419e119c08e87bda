"""Tests for signed notes, checkpoints and the offline checkpoint verifier script."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from avhopp.audit.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes
from avhopp.audit.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    key_hash,
    open_note,
    parse_checkpoint,
    sign_note,
)

VERIFY_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "verify_checkpoint.py"

# The example key and note from Go's golang.org/x/mod/sumdb/note documentation: an interop anchor.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "avhopp.test/audit"
ROOT = bytes(range(32))

# Fixed seeds keep failures reproducible; 0x01..0x20 and 0x21..0x40.
SEED_A = bytes(range(1, 33))
SEED_B = bytes(range(33, 65))


# No example database: tests must not write into the work tree.
fast = settings(database=None, deadline=None)


def make_signer(name: str = ORIGIN, seed: bytes = SEED_A) -> Signer:
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def make_checkpoint_note(signer: Signer, size: int = 5, root: bytes = ROOT) -> str:
    return sign_note(format_checkpoint(ORIGIN, size, root), signer)


def _sig_blob(note: str) -> bytes:
    return base64.b64decode(note.rstrip("\n").rsplit(" ", 1)[1])


def _with_sig_blob(note: str, blob: bytes) -> str:
    head = note.rstrip("\n").rsplit(" ", 1)[0]
    return f"{head} {base64.b64encode(blob).decode()}\n"


# --- keys ------------------------------------------------------------------------------------


def test_key_hash_is_first_four_bytes_of_sha256_over_name_newline_alg_and_key() -> None:
    signer = Signer.from_skey(GO_SKEY)
    public = signer.public_key
    by_hand = hashlib.sha256(b"PeterNeumann" + b"\x0a" + b"\x01" + public).digest()[:4]
    assert by_hand.hex() == "c74f20a3"
    assert key_hash("PeterNeumann", public) == by_hand
    assert signer.key_hash == by_hand


def test_key_hash_of_fixed_seed_matches_hand_computed_value() -> None:
    signer = make_signer("example.org/log", SEED_A)
    by_hand = hashlib.sha256(b"example.org/log\n\x01" + signer.public_key).digest()[:4]
    assert signer.key_hash == by_hand
    assert signer.vkey.split("+")[1] == by_hand.hex()


def test_signer_key_encodings_match_go_reference() -> None:
    signer = Signer.from_skey(GO_SKEY)
    assert signer.skey == GO_SKEY
    assert signer.vkey == GO_VKEY
    assert Verifier.from_vkey(GO_VKEY).vkey == GO_VKEY


def test_generated_signer_keys_round_trip() -> None:
    signer = Signer.generate("board.example/audit")
    again = Signer.from_skey(signer.skey)
    assert again.vkey == signer.vkey
    assert Verifier.from_vkey(signer.vkey).public_key == signer.public_key


def test_verifier_key_encoding_is_name_hash_and_algorithm_prefixed_key() -> None:
    signer = make_signer()
    name, hash_hex, key64 = signer.vkey.split("+", 2)
    assert name == ORIGIN
    assert hash_hex == signer.key_hash.hex()
    assert base64.b64decode(key64) == b"\x01" + signer.public_key


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nbsp\u00a0x", "nl\n"])
def test_key_names_with_whitespace_or_plus_are_rejected(name: str) -> None:
    with pytest.raises(NoteError):
        Signer(name, Ed25519PrivateKey.from_private_bytes(SEED_A))


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong name
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short hash
        "PeterNeumann+0xc74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # hex prefix
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # bad base64
        "PeterNeumann+c74f20a3+AhpcQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong algorithm
        "PeterNeumann+c74f20a3",  # no key
        GO_SKEY,  # a signer key is not a verifier key
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(NoteError):
        Verifier.from_vkey(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumanm+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        GO_VKEY,
    ],
)
def test_malformed_signer_keys_are_rejected(skey: str) -> None:
    with pytest.raises(NoteError):
        Signer.from_skey(skey)


def test_signer_repr_does_not_reveal_the_private_key() -> None:
    signer = Signer.from_skey(GO_SKEY)
    assert GO_SKEY.rsplit("+", 1)[1] not in repr(signer)
    assert "c74f20a3" in repr(signer)


# --- signed notes ----------------------------------------------------------------------------


def test_signing_reproduces_go_reference_note() -> None:
    assert sign_note(GO_TEXT, Signer.from_skey(GO_SKEY)) == GO_NOTE


def test_go_reference_note_opens() -> None:
    assert open_note(GO_NOTE, [Verifier.from_vkey(GO_VKEY)]) == GO_TEXT


def test_signed_note_round_trips() -> None:
    signer = make_signer()
    body = format_checkpoint(ORIGIN, 7, ROOT, ["ext one"])
    note = sign_note(body, signer)
    assert note.startswith(body + "\n\u2014 " + ORIGIN + " ")
    assert open_note(note, [signer.verifier()]) == body
    assert open_note(note.encode("utf-8"), [signer.verifier()]) == body


@fast
@given(st.lists(st.text(min_size=0, max_size=20).filter(lambda s: "\n" not in s), min_size=1))
def test_any_valid_text_round_trips(lines: list[str]) -> None:
    body = "".join(f"{line}\n" for line in lines)
    signer = make_signer()
    try:
        note = sign_note(body, signer)
    except NoteError:
        return  # control characters or surrogates: rejected when signing, nothing to open
    assert open_note(note, [signer.verifier()]) == body


def test_note_signed_by_two_keys_opens_with_either() -> None:
    a, b = make_signer("a.example", SEED_A), make_signer("b.example", SEED_B)
    note = sign_note(GO_TEXT, a, b)
    assert open_note(note, [a.verifier()]) == GO_TEXT
    assert open_note(note, [b.verifier()]) == GO_TEXT


def test_signature_from_unknown_key_is_ignored_beside_a_known_one() -> None:
    a, b = make_signer("a.example", SEED_A), make_signer("b.example", SEED_B)
    note = sign_note(GO_TEXT, a, b)
    # Corrupt b's signature: it is not ours to judge, so it must not matter.
    lines = note.split("\n")
    lines[-2] = lines[-2][:-6] + "AAAAA="
    assert open_note("\n".join(lines), [a.verifier()]) == GO_TEXT


def test_tampered_body_is_rejected() -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer, size=5)
    forged = note.replace("\n5\n", "\n6\n", 1)
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(forged, [signer.verifier()])


def test_tampered_signature_is_rejected() -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer)
    blob = bytearray(_sig_blob(note))
    blob[10] ^= 0x01
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(_with_sig_blob(note, bytes(blob)), [signer.verifier()])


def test_truncated_signature_from_known_key_is_rejected() -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer)
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(_with_sig_blob(note, _sig_blob(note)[:40]), [signer.verifier()])


def test_signature_under_another_key_name_is_rejected() -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer)
    renamed = note.replace(f"\u2014 {ORIGIN} ", "\u2014 other.example/audit ")
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(renamed, [signer.verifier()])


def test_note_from_unknown_key_is_rejected() -> None:
    note = make_checkpoint_note(make_signer(seed=SEED_A))
    stranger = make_signer(seed=SEED_B)
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(note, [stranger.verifier()])
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(note, [])


def test_signature_by_other_key_with_same_name_is_rejected() -> None:
    real, impostor = make_signer(seed=SEED_A), make_signer(seed=SEED_B)
    note = make_checkpoint_note(impostor)
    # Same key name but a different key hash: looks like the log, is not the log.
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(note, [real.verifier()])
    # Forging the key hash too only moves the failure to the signature check.
    forged = _with_sig_blob(note, real.key_hash + _sig_blob(note)[4:])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(forged, [real.verifier()])


def test_ambiguous_verifier_list_is_rejected() -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer)
    impostor = Verifier.__new__(Verifier)
    impostor.name, impostor.key_hash = signer.name, signer.key_hash
    impostor.public_key = make_signer(seed=SEED_B).public_key
    with pytest.raises(NoteError, match="ambiguous"):
        open_note(note, [signer.verifier(), impostor])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("\n\n", "\n", 1),  # no blank line
        lambda n: n.rstrip("\n"),  # no final newline
        lambda n: n.replace("\u2014 ", "- ", 1),  # hyphen instead of em dash
        lambda n: n.replace("\u2014 ", "\u2014", 1),  # no space after the dash
        lambda n: n + "trailing garbage\n",  # non-signature line in the block
        lambda n: n[:-1] + "!\n",  # invalid base64
        lambda n: n.replace("\n5\n", "\n5\x07\n"),  # control character
        lambda n: n.replace("\n5\n", "\n5\r\n"),  # carriage return
        lambda n: n[: n.rindex(" ")] + " \n",  # empty signature
        lambda n: n + "\n",  # empty signature line
    ],
)
def test_malformed_notes_are_rejected(mangle: object) -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer)
    bad = mangle(note)  # type: ignore[operator]
    with pytest.raises(NoteError):
        open_note(bad, [signer.verifier()])


def test_note_that_is_not_utf8_is_rejected() -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer).encode("utf-8").replace(b"avhopp", b"av\xffopp")
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(note, [signer.verifier()])


def test_note_with_too_many_signatures_is_rejected() -> None:
    signer = make_signer()
    note = make_checkpoint_note(signer)
    sig_line = note.split("\n")[-2] + "\n"
    with pytest.raises(NoteError, match="too many"):
        open_note(note + sig_line * 100, [signer.verifier()])


@pytest.mark.parametrize("body", ["no newline", "", "bell \x07\n", "del \x7f\n", "c1 \x85\n"])
def test_signing_rejects_bodies_that_are_not_clean_text(body: str) -> None:
    with pytest.raises(NoteError):
        sign_note(body, make_signer())


def test_signing_needs_a_signer() -> None:
    with pytest.raises(ValueError, match="signer"):
        sign_note(GO_TEXT)


# --- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_body_has_origin_size_and_base64_root() -> None:
    body = format_checkpoint(ORIGIN, 42, ROOT)
    assert body == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"


def test_checkpoint_round_trips_with_extension_lines() -> None:
    body = format_checkpoint(ORIGIN, 0, ROOT, ["witness: a", "b"])
    assert parse_checkpoint(body) == Checkpoint(ORIGIN, 0, ROOT, ("witness: a", "b"))


def test_checkpoint_accepts_largest_64_bit_size() -> None:
    body = format_checkpoint(ORIGIN, 2**64 - 1, ROOT)
    assert parse_checkpoint(body).size == 2**64 - 1


ROOT64 = base64.b64encode(ROOT).decode()
URLSAFE_ROOT64 = base64.urlsafe_b64encode(b"\xff" * 32).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n5\n{ROOT64}",  # no final newline
        f"{ORIGIN}\n5\n",  # no root line
        f"\n5\n{ROOT64}\n",  # empty origin
        f"{ORIGIN}\n05\n{ROOT64}\n",  # leading zero
        f"{ORIGIN}\n+5\n{ROOT64}\n",  # sign
        f"{ORIGIN}\n 5\n{ROOT64}\n",  # space
        f"{ORIGIN}\n1_0\n{ROOT64}\n",  # underscore
        f"{ORIGIN}\n\u0665\n{ROOT64}\n",  # non-ASCII digit
        f"{ORIGIN}\n-1\n{ROOT64}\n",  # negative
        f"{ORIGIN}\n{2**64}\n{ROOT64}\n",  # beyond 64 bits
        f"{ORIGIN}\n5\n{ROOT64[:-4]}\n",  # root too short
        f"{ORIGIN}\n5\n{base64.b64encode(ROOT + b'x').decode()}\n",  # root too long
        f"{ORIGIN}\n5\n{ROOT64.rstrip('=')}\n",  # missing padding
        f"{ORIGIN}\n5\n{ROOT64[:-2]}9=\n",  # non-canonical padding bits
        f"{ORIGIN}\n5\n{URLSAFE_ROOT64}\n",  # URL alphabet
        f"{ORIGIN}\n5\n{ROOT64}\n\n",  # empty extension line
        f"{ORIGIN}\n5\n{ROOT64}\nbad\x00ext\n",  # control character
    ],
)
def test_malformed_checkpoints_are_rejected(body: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(body)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("two\nlines", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 2**64, ROOT, ()),
        (ORIGIN, 1, ROOT[:31], ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("a\nb",)),
    ],
)
def test_format_checkpoint_refuses_invalid_fields(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(NoteError):
        format_checkpoint(origin, size, root, extensions)


# --- the offline verifier script -------------------------------------------------------------


def _write_case(tmp_path: Path, signer: Signer, old: int, new: int) -> list[str]:
    hashes = [leaf_hash(b"entry %d" % i) for i in range(new)]
    old_note = make_checkpoint_note(signer, old, root_from_leaf_hashes(hashes[:old]))
    new_note = make_checkpoint_note(signer, new, root_from_leaf_hashes(hashes))
    proof = consistency_proof(hashes, old)
    (tmp_path / "old.checkpoint").write_text(old_note, encoding="utf-8")
    (tmp_path / "new.checkpoint").write_text(new_note, encoding="utf-8")
    (tmp_path / "proof.txt").write_text(
        "".join(base64.b64encode(p).decode() + "\n" for p in proof), encoding="utf-8"
    )
    return [
        signer.vkey,
        str(tmp_path / "old.checkpoint"),
        str(tmp_path / "new.checkpoint"),
        str(tmp_path / "proof.txt"),
    ]


def _run_verifier(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFY_SCRIPT), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def test_verifier_script_accepts_genuine_consistent_checkpoints(tmp_path: Path) -> None:
    result = _run_verifier(_write_case(tmp_path, make_signer(), 13, 37))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: Båda kontrollpunkterna är korrekt signerade" in result.stdout
    assert "OK: Both checkpoints are correctly signed" in result.stdout


@pytest.mark.parametrize(("old", "new"), [(0, 5), (8, 8), (1, 2), (16, 17)])
def test_verifier_script_accepts_edge_sizes(tmp_path: Path, old: int, new: int) -> None:
    result = _run_verifier(_write_case(tmp_path, make_signer(), old, new))
    assert result.returncode == 0, result.stdout + result.stderr


def test_verifier_script_accepts_files_with_windows_line_endings(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(), 3, 9)
    for name in ("old.checkpoint", "new.checkpoint", "proof.txt"):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    result = _run_verifier(args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_verifier_script_accepts_checkpoints_with_witness_cosignatures(tmp_path: Path) -> None:
    signer, witness = make_signer(), make_signer("witness.example", SEED_B)
    args = _write_case(tmp_path, signer, 3, 9)
    new_path = tmp_path / "new.checkpoint"
    body = open_note(new_path.read_text(encoding="utf-8"), [signer.verifier()])
    new_path.write_text(sign_note(body, witness, signer), encoding="utf-8")
    result = _run_verifier(args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_verifier_script_rejects_tampered_proof(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(), 13, 37)
    proof = tmp_path / "proof.txt"
    lines = proof.read_text(encoding="utf-8").splitlines()
    lines[1] = base64.b64encode(b"\x00" * 32).decode()
    proof.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "FEL: Beviset stämmer INTE" in result.stdout
    assert "ERROR: The proof does NOT verify" in result.stdout


def test_verifier_script_rejects_rewritten_history(tmp_path: Path) -> None:
    signer = make_signer()
    args = _write_case(tmp_path, signer, 13, 37)
    # A properly signed new checkpoint over a log whose entry 4 was rewritten.
    forged = [leaf_hash(b"entry %d" % i) for i in range(37)]
    forged[4] = leaf_hash(b"rewritten")
    (tmp_path / "new.checkpoint").write_text(
        make_checkpoint_note(signer, 37, root_from_leaf_hashes(forged)), encoding="utf-8"
    )
    (tmp_path / "proof.txt").write_text(
        "".join(base64.b64encode(p).decode() + "\n" for p in consistency_proof(forged, 13)),
        encoding="utf-8",
    )
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "does NOT verify" in result.stdout


def test_verifier_script_rejects_tampered_checkpoint(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(), 13, 37)
    path = tmp_path / "new.checkpoint"
    path.write_text(path.read_text(encoding="utf-8").replace("\n37\n", "\n38\n"), "utf-8")
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "INVALID" in result.stdout
    assert "OGILTIG" in result.stdout


def test_verifier_script_rejects_checkpoint_signed_by_another_key(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(seed=SEED_B), 13, 37)
    args[0] = make_signer(seed=SEED_A).vkey
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "not signed with the given key" in result.stdout


def test_verifier_script_rejects_swapped_files(tmp_path: Path) -> None:
    vkey, old, new, proof = _write_case(tmp_path, make_signer(), 13, 37)
    result = _run_verifier([vkey, new, old, proof])
    assert result.returncode == 1
    assert "wrong order" in result.stdout


def test_verifier_script_rejects_checkpoints_from_different_logs(tmp_path: Path) -> None:
    signer = make_signer()
    args = _write_case(tmp_path, signer, 0, 5)
    (tmp_path / "old.checkpoint").write_text(
        sign_note(format_checkpoint("other.example", 0, hashlib.sha256().digest()), signer),
        encoding="utf-8",
    )
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "different logs" in result.stdout


def test_verifier_script_rejects_unexpected_origin(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(), 2, 5)
    result = _run_verifier([*args, "--origin", "elsewhere.example/audit"])
    assert result.returncode == 1
    assert "not 'elsewhere.example/audit'" in result.stdout


def test_verifier_script_rejects_proof_line_that_is_not_a_hash(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(), 2, 5)
    (tmp_path / "proof.txt").write_text("not base64!\n", encoding="utf-8")
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "Line 1 of the proof" in result.stdout


def test_verifier_script_rejects_malformed_verifier_key(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(), 2, 5)
    args[0] = args[0].replace("+", "-", 1)
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "verifier key is malformed" in result.stdout


def test_verifier_script_reports_missing_file(tmp_path: Path) -> None:
    args = _write_case(tmp_path, make_signer(), 2, 5)
    args[3] = str(tmp_path / "missing.txt")
    result = _run_verifier(args)
    assert result.returncode == 1
    assert "Kunde inte läsa" in result.stdout


def test_verifier_script_exits_one_on_wrong_arguments() -> None:
    result = _run_verifier(["only-one-argument"])
    assert result.returncode == 1
