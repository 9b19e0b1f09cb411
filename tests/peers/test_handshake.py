"""Peer handshake version 2 and sealed frames on their own: no sockets, no Django."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
)
from nacl.signing import VerifyKey

from consortium_protocol.keys import SigningKey
from peers.handshake import Handshake, HandshakeRefused
from peers.sealed import (
    CHUNK_DATA_BYTES,
    MAX_FRAME_BYTES,
    MAX_MESSAGE_BYTES,
    MessageTooLarge,
    Opener,
    Sealer,
    SealError,
)
from tests.peers.handshake_vectors import VECTORS_PATH, compute_vectors, render

CHAIN = "testnet"


def pair(
    a: SigningKey, b: SigningKey, *, allowed: set[str] | None = None, chain_b: str = CHAIN
) -> tuple[Handshake, Handshake]:
    keys = allowed if allowed is not None else {a.public_key, b.public_key}
    return (
        Handshake(a, CHAIN, keys.__contains__, expected_peer=b.public_key),
        Handshake(b, chain_b, keys.__contains__),
    )


def run(left: Handshake, right: Handshake) -> None:
    """Deliver both hellos, then both sealed answers, as two sockets would."""
    [left_auth] = left.receive(right.hello_text())
    [right_auth] = right.receive(left.hello_text())
    left.receive(right_auth)
    right.receive(left_auth)


def test_two_allowed_keys_authenticate_each_other_and_share_one_key_per_direction() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b)
    run(left, right)
    assert left.done and right.done
    assert left.peer_key == b.public_key and right.peer_key == a.public_key
    assert left.transcript == right.transcript
    assert left.sealer and right.opener and right.sealer and left.opener
    assert right.opener.feed(left.sealer.seal_message(b"to the right")[0]) == b"to the right"
    assert left.opener.feed(right.sealer.seal_message(b"to the left")[0]) == b"to the left"
    # Separate keys per direction: a frame reflected back at its sender does not open.
    [frame] = left.sealer.seal_message(b"echo")
    with pytest.raises(SealError) as refused:
        left.opener.feed(frame)
    assert refused.value.code == "bad_seal"


def test_ephemeral_keys_are_fresh_for_every_handshake() -> None:
    a = SigningKey.generate()
    first, second = Handshake(a, CHAIN, bool), Handshake(a, CHAIN, bool)
    assert len(first.ephemeral) == 32 and first.ephemeral != second.ephemeral


def test_a_relay_that_swaps_in_its_own_ephemeral_breaks_both_signatures() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b)
    mallory = Handshake(SigningKey.generate(), CHAIN, bool)
    # M passes B's hello to A with M's ephemeral key in it (so M could derive A's keys).
    forged = {**json.loads(right.hello_text()), "ephemeral": mallory.ephemeral.hex()}
    left.receive(forged)
    [right_auth] = right.receive(left.hello_text())
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(right_auth)  # sealed under B's keys, which are not A's
    assert refused.value.code == "bad_seal"


def test_a_peer_on_another_chain_is_refused() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b, chain_b="otherchain")
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(right.hello())
    assert refused.value.code == "wrong_chain"


def test_a_version_1_hello_is_refused_as_a_version() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    v1 = {"type": "peer-hello", "version": 1, "chain_id": CHAIN, "node_key": b.public_key, "challenge": "ab" * 32}
    with pytest.raises(HandshakeRefused) as refused:
        Handshake(a, CHAIN, bool).receive(v1)
    assert refused.value.code == "version"


def test_a_key_not_allowed_is_refused_before_any_key_exchange() -> None:
    a, stranger = SigningKey.generate(), SigningKey.generate()
    left = Handshake(a, CHAIN, {a.public_key}.__contains__)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(Handshake(stranger, CHAIN, bool).hello())
    assert refused.value.code == "not_allowed" and left.sealer is None


def test_a_failing_membership_lookup_refuses() -> None:
    def broken(key: str) -> bool:
        raise RuntimeError("database gone")

    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(HandshakeRefused) as refused:
        Handshake(a, CHAIN, broken).receive(Handshake(b, CHAIN, bool).hello())
    assert refused.value.code == "not_allowed"


def test_the_dialler_refuses_a_different_key_than_it_dialled() -> None:
    a, b, c = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    left = Handshake(a, CHAIN, bool, expected_peer=b.public_key)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(Handshake(c, CHAIN, bool).hello())
    assert refused.value.code == "unexpected_peer"


def test_own_key_and_own_ephemeral_reflected_are_refused() -> None:
    a = SigningKey.generate()
    left = Handshake(a, CHAIN, bool)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(Handshake(a, CHAIN, bool).hello())
    assert refused.value.code == "self"
    echo = {**Handshake(SigningKey.generate(), CHAIN, bool).hello(), "ephemeral": left.ephemeral.hex()}
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(echo)
    assert refused.value.code == "reflected_ephemeral"


def test_a_low_order_ephemeral_key_is_refused() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    hello = {**Handshake(b, CHAIN, bool).hello(), "ephemeral": "00" * 32}  # the all-zero shared secret
    with pytest.raises(HandshakeRefused) as refused:
        Handshake(a, CHAIN, bool).receive(hello)
    assert refused.value.code == "bad_ephemeral"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"type": "hello"}, "malformed"),
        ({"version": 3}, "version"),
        ({"version": 2.0}, "version"),
        ({"version": True}, "version"),
        ({"node_key": "AB" * 32}, "malformed"),
        ({"ephemeral": "00"}, "malformed"),
        ({"ephemeral": "AB" * 32}, "malformed"),
        ({"extra": 1}, "malformed"),
    ],
)
def test_a_malformed_hello_is_refused(change: dict[str, object], code: str) -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left = Handshake(a, CHAIN, bool)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive({**Handshake(b, CHAIN, bool).hello(), **change})
    assert refused.value.code == code and left.sealer is None


def test_a_sealed_frame_before_the_hello_and_a_text_auth_are_refused() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(HandshakeRefused) as refused:
        Handshake(a, CHAIN, bool).receive(bytes(40))
    assert refused.value.code == "malformed"
    left = Handshake(a, CHAIN, bool)
    left.receive(Handshake(b, CHAIN, bool).hello())
    with pytest.raises(HandshakeRefused) as refused:
        left.receive('{"signature":"00","type":"peer-auth"}')
    assert refused.value.code == "malformed"


@settings(max_examples=150, deadline=None)
@given(frame=st.binary(max_size=200))
def test_any_garbage_in_place_of_the_sealed_auth_is_refused(frame: bytes) -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left = Handshake(a, CHAIN, bool)
    left.receive(Handshake(b, CHAIN, bool).hello())
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(frame)
    assert refused.value.code == "bad_seal" and not left.done


# Sealed frames ---------------------------------------------------------------


def channel() -> tuple[Sealer, Opener]:
    key = bytes(range(32))
    return Sealer(key), Opener(key)


def test_a_message_is_chunked_into_full_frames_and_a_final_one() -> None:
    sealer, opener = channel()
    message = bytes(range(256)) * (2 * CHUNK_DATA_BYTES // 256 + 10)
    frames = sealer.seal_message(message)
    assert len(frames) == 3 and [len(frame) for frame in frames[:2]] == [MAX_FRAME_BYTES, MAX_FRAME_BYTES]
    assert [opener.feed(frame) for frame in frames] == [None, None, message]
    assert len(sealer.seal_message(b"x" * CHUNK_DATA_BYTES)) == 1  # a full chunk can be the final one
    assert len(sealer.seal_message(b"")) == 1


def test_a_message_over_the_maximum_is_refused_before_any_frame_is_sealed() -> None:
    sealer, _ = channel()
    with pytest.raises(MessageTooLarge):
        sealer.seal_message(b"x" * (MAX_MESSAGE_BYTES + 1))
    assert sealer.counter == 0
    assert MAX_MESSAGE_BYTES == 8 * 1024 * 1024


def test_an_incoming_message_over_the_maximum_is_refused_mid_way() -> None:
    key = bytes(32)
    sealer, opener = Sealer(key), Opener(key, max_message_bytes=CHUNK_DATA_BYTES + 10)
    frames = sealer.seal_message(b"y" * (2 * CHUNK_DATA_BYTES), max_bytes=MAX_MESSAGE_BYTES)
    assert opener.feed(frames[0]) is None
    with pytest.raises(SealError) as refused:
        opener.feed(frames[1])
    assert refused.value.code == "message_too_big"


@pytest.mark.parametrize("tamper", ["flip", "replay", "drop", "reorder", "truncate"])
def test_a_tampered_stream_does_not_open(tamper: str) -> None:
    sealer, opener = channel()
    frames = [sealer.seal_message(f"message {n}".encode())[0] for n in range(3)]
    assert opener.feed(frames[0]) == b"message 0"
    if tamper == "flip":
        stream = [frames[1][:5] + bytes([frames[1][5] ^ 0x01]) + frames[1][6:]]
    elif tamper == "replay":
        stream = [frames[0]]
    elif tamper == "drop":
        stream = [frames[2]]
    elif tamper == "reorder":
        stream = [frames[2], frames[1]]
    else:
        stream = [frames[1][:-1]]
    with pytest.raises(SealError) as refused:
        for frame in stream:
            opener.feed(frame)
    assert refused.value.code == "bad_seal"


def test_a_short_middle_chunk_or_an_unknown_flag_is_refused() -> None:
    sealer, opener = channel()
    with pytest.raises(SealError) as refused:
        opener.feed(sealer.seal_frame(b"\x01short"))
    assert refused.value.code == "short_chunk"
    sealer, opener = channel()
    with pytest.raises(SealError) as refused:
        opener.feed(sealer.seal_frame(b"\x02data"))
    assert refused.value.code == "bad_flag"


# Vectors ---------------------------------------------------------------------


def test_the_vectors_file_is_what_the_code_computes() -> None:
    assert VECTORS_PATH.read_text() == render(compute_vectors())


def test_the_vectors_follow_the_documented_layout() -> None:
    """Recompute every vector from docs/peers.md with libsodium and hashlib only, not peers.*."""
    v = json.loads(VECTORS_PATH.read_text())
    ea, eb = bytes.fromhex(v["a_ephemeral_secret"]), bytes.fromhex(v["b_ephemeral_secret"])
    assert crypto_scalarmult_base(ea).hex() == v["a_ephemeral"] and crypto_scalarmult_base(eb).hex() == v["b_ephemeral"]
    for side in "ab":
        hello = json.loads(v[f"{side}_hello"])
        assert hello == {
            "type": "peer-hello",
            "version": 2,
            "chain_id": v["chain_id"],
            "node_key": v[f"{side}_node_key"],
            "ephemeral": v[f"{side}_ephemeral"],
        }
        assert v[f"{side}_hello"] == json.dumps(hello, sort_keys=True, separators=(",", ":"))
    shared = crypto_scalarmult(ea, bytes.fromhex(v["b_ephemeral"]))
    assert shared == crypto_scalarmult(eb, bytes.fromhex(v["a_ephemeral"]))
    lo, hi = ("a", "b") if v["a_ephemeral"] < v["b_ephemeral"] else ("b", "a")
    assert v["lo_side"] == lo
    chain = v["chain_id"].encode()
    transcript = (
        b"consortium/peer/v2"
        + len(chain).to_bytes(2, "big")
        + chain
        + bytes.fromhex(v[f"{lo}_ephemeral"] + v[f"{hi}_ephemeral"] + v[f"{lo}_node_key"] + v[f"{hi}_node_key"])
    )
    t = hashlib.blake2b(transcript, digest_size=32).digest()
    assert t.hex() == v["transcript_hash"]
    okm = hashlib.blake2b(b"consortium/peer/v2 frame keys" + t, digest_size=64, key=shared).digest()
    send_keys = {lo: okm[:32], hi: okm[32:]}
    for side in "ab":
        payload = b"consortium/peer/v2 auth" + t + bytes.fromhex(v[f"{side}_node_key"])
        assert payload.hex() == v[f"{side}_auth_payload"]
        nonce0 = bytes(4) + (0).to_bytes(8, "little")
        plain = crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes.fromhex(v[f"{side}_auth_frame"]), b"", nonce0, send_keys[side]
        )
        assert plain[0] == 0x00  # FINAL
        auth = json.loads(plain[1:])
        assert set(auth) == {"type", "signature"} and auth["type"] == "peer-auth"
        VerifyKey(bytes.fromhex(v[f"{side}_node_key"])).verify(payload, bytes.fromhex(auth["signature"]))
    for message in v["messages"]:
        nonce = bytes(4) + message["counter"].to_bytes(8, "little")
        plain = crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes.fromhex(message["frame"]), b"", nonce, send_keys[message["from"]]
        )
        assert plain == b"\x00" + message["plaintext"].encode()


def test_the_vectors_open_with_the_real_handshake() -> None:
    """B's side, fed A's vector bytes, authenticates A and opens A's frames."""
    v = json.loads(VECTORS_PATH.read_text())
    b = Handshake(
        SigningKey.from_hex(v["b_node_seed"]),
        v["chain_id"],
        {v["a_node_key"]}.__contains__,
        expected_peer=v["a_node_key"],
        ephemeral_secret=bytes.fromhex(v["b_ephemeral_secret"]),
    )
    assert b.hello_text() == v["b_hello"]
    assert [frame.hex() for frame in b.receive(v["a_hello"])] == [v["b_auth_frame"]]
    b.receive(bytes.fromhex(v["a_auth_frame"]))
    assert b.done and b.peer_key == v["a_node_key"] and b.opener is not None
    for message in (m for m in v["messages"] if m["from"] == "a"):
        assert b.opener.feed(bytes.fromhex(message["frame"])) == message["plaintext"].encode()
