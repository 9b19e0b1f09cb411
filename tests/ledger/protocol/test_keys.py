"""Ed25519 keys, signatures and private key files (PROTOCOL.md section 1)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from consortium_protocol import keys
from consortium_protocol.keys import KeyFileError, SigningKey, read_key_file, verify, write_key_file

SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # RFC 8032 test 1
PUBLIC_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def _key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "node_key"
    path.write_text(text, encoding="ascii")
    path.chmod(mode)
    return path


def _refusal(path: Path) -> KeyFileError:
    with pytest.raises(KeyFileError) as caught:
        read_key_file(path)
    return caught.value


def test_seed_derives_the_rfc8032_public_key() -> None:
    assert SigningKey.from_hex(SEED_HEX).public_key == PUBLIC_HEX


def test_signature_matches_rfc8032_test_vector() -> None:
    expected = (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert SigningKey.from_hex(SEED_HEX).sign(b"") == expected


def test_signature_verifies_only_for_its_key_and_message() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    signature = key.sign(b"message")
    assert len(signature) == 128
    assert verify(key.public_key, b"message", signature)
    assert not verify(other.public_key, b"message", signature)
    assert not verify(key.public_key, b"messagE", signature)


@pytest.mark.parametrize(
    ("public_key", "signature"),
    [
        ("zz" * 32, "00" * 64),
        ("00" * 31, "00" * 64),
        (PUBLIC_HEX.upper(), "00" * 64),
        (PUBLIC_HEX, "00" * 63),
        (PUBLIC_HEX, "AB" * 64),
        (PUBLIC_HEX, None),
        (None, "00" * 64),
    ],
)
def test_verify_returns_false_for_malformed_hex_instead_of_raising(public_key: object, signature: object) -> None:
    assert verify(public_key, b"", signature) is False  # type: ignore[arg-type]


def test_repr_of_a_signing_key_never_contains_the_seed() -> None:
    key = SigningKey.from_hex(SEED_HEX)
    for text in (repr(key), str(key), f"{key!r}", repr([key])):
        assert SEED_HEX not in text
        assert PUBLIC_HEX in text or text == repr([key])


def test_seed_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(KeyFileError):
        SigningKey(b"\x00" * 31)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_key_file_readable_only_by_owner_is_accepted(tmp_path: Path, mode: int) -> None:
    assert read_key_file(_key_file(tmp_path, SEED_HEX, mode)).public_key == PUBLIC_HEX


def test_key_file_with_a_trailing_newline_is_accepted(tmp_path: Path) -> None:
    assert read_key_file(_key_file(tmp_path, SEED_HEX + "\n")).public_key == PUBLIC_HEX


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o620, 0o602])
def test_key_file_open_to_group_or_others_is_refused_with_chmod_advice(tmp_path: Path, mode: int) -> None:
    error = _refusal(_key_file(tmp_path, SEED_HEX, mode))
    assert error.code == "key_permissions"
    assert "chmod 600" in str(error)
    assert f"{mode:04o}" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        SEED_HEX[:-2],
        SEED_HEX + "00",
        SEED_HEX.upper(),
        SEED_HEX + "\n\n",
        " " + SEED_HEX,
        "",
        "zz" * 32,
    ],
)
def test_key_file_without_exactly_64_lowercase_hex_is_refused(tmp_path: Path, text: str) -> None:
    error = _refusal(_key_file(tmp_path, text))
    assert error.code == "bad_key"
    assert SEED_HEX not in str(error)


def test_missing_key_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    error = _refusal(tmp_path / "absent")
    assert error.code == "key_missing"
    assert str(tmp_path / "absent") in str(error)


def test_key_file_that_is_not_ascii_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node_key"
    path.write_bytes("é".encode() * 32)
    path.chmod(0o600)
    assert _refusal(path).code in {"bad_key", "key_unreadable"}


def test_written_key_file_has_mode_0600_and_reads_back(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "node_key"
    old_umask = os.umask(0)  # the mode must not depend on a lenient umask
    try:
        write_key_file(path, key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="ascii") == key.seed.hex() + "\n"
    assert read_key_file(path).public_key == key.public_key


def test_writing_a_key_file_never_overwrites_an_existing_one(tmp_path: Path) -> None:
    path = _key_file(tmp_path, SEED_HEX)
    with pytest.raises(FileExistsError):
        write_key_file(path, SigningKey.generate())
    assert path.read_text(encoding="ascii") == SEED_HEX


@pytest.mark.parametrize("count", [0, 1, keys.PARALLEL_FROM - 1, keys.PARALLEL_FROM, 257])
def test_verify_all_answers_each_signature_in_order_small_batches_and_large(count: int) -> None:
    signer, other = SigningKey.generate(), SigningKey.generate()
    messages = [f"message {i}".encode() for i in range(count)]
    items = [(signer.public_key, m, signer.sign(m)) for m in messages]
    wrong = {i for i in range(count) if i % 7 == 3}
    for i in wrong:  # a valid signature, but by another key
        items[i] = (signer.public_key, messages[i], other.sign(messages[i]))
    assert keys.verify_all(items) == [i not in wrong for i in range(count)]
