"""The peer handshake on its own: no sockets, no Django."""

from __future__ import annotations

import pytest

from consortium_protocol.keys import SigningKey
from peers.handshake import AUTH, Handshake, HandshakeRefused, auth_payload

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
    """Deliver both hellos, then both answers, as two sockets would."""
    left_auth = left.receive(right.hello())
    right_auth = right.receive(left.hello())
    left.receive(right_auth[0])
    right.receive(left_auth[0])


def test_two_allowed_keys_authenticate_each_other() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b)
    run(left, right)
    assert left.done and right.done
    assert left.peer_key == b.public_key and right.peer_key == a.public_key


def test_the_signed_bytes_bind_chain_challenge_and_both_keys() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b)
    [answer] = left.receive(right.hello())
    expected = (
        f'{{"chain_id":"testnet","challenge":"{right.challenge}","node_key":"{a.public_key}",'
        f'"peer":"{b.public_key}","type":"peer-auth"}}'
    ).encode()
    assert auth_payload(chain_id=CHAIN, challenge=right.challenge, signer=a.public_key, peer=b.public_key) == expected
    assert answer == {"type": AUTH, "signature": a.sign(expected)}


def test_challenges_are_fresh_32_bytes() -> None:
    a = SigningKey.generate()
    first, second = Handshake(a, CHAIN, bool), Handshake(a, CHAIN, bool)
    assert len(first.challenge) == 64 and first.challenge != second.challenge


def test_a_peer_on_another_chain_is_refused() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b, chain_b="otherchain")
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(right.hello())
    assert refused.value.code == "wrong_chain"


def test_a_signature_by_another_key_is_refused() -> None:
    a, b, mallory = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b)
    left.receive(right.hello())
    forged = auth_payload(chain_id=CHAIN, challenge=left.challenge, signer=b.public_key, peer=a.public_key)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive({"type": AUTH, "signature": mallory.sign(forged)})
    assert refused.value.code == "bad_signature"


@pytest.mark.parametrize("signature", ["00" * 64, "zz", 7, None])
def test_a_garbled_signature_is_refused(signature: object) -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    left, right = pair(a, b)
    left.receive(right.hello())
    with pytest.raises(HandshakeRefused) as refused:
        left.receive({"type": AUTH, "signature": signature})
    assert refused.value.code == "bad_signature"


def test_an_answer_replayed_from_an_earlier_connection_is_refused() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    first_left, first_right = pair(a, b)
    first_left.receive(first_right.hello())
    old_answer = first_right.receive(first_left.hello())[0]

    second_left, second_right = pair(a, b)  # a new connection: a new challenge from a
    second_left.receive(second_right.hello())
    with pytest.raises(HandshakeRefused) as refused:
        second_left.receive(old_answer)
    assert refused.value.code == "bad_signature"


def test_an_answer_meant_for_another_node_is_refused() -> None:
    a, b, c = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    allowed = {a.public_key, b.public_key, c.public_key}
    left = Handshake(a, CHAIN, allowed.__contains__)
    left.receive(Handshake(b, CHAIN, allowed.__contains__).hello())
    # b signs a's challenge, but addressed to c: the signed `peer` differs.
    for_c = auth_payload(chain_id=CHAIN, challenge=left.challenge, signer=b.public_key, peer=c.public_key)
    with pytest.raises(HandshakeRefused):
        left.receive({"type": AUTH, "signature": b.sign(for_c)})


def test_an_unknown_key_is_refused_before_any_signature() -> None:
    a, stranger = SigningKey.generate(), SigningKey.generate()
    left = Handshake(a, CHAIN, {a.public_key}.__contains__)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(Handshake(stranger, CHAIN, bool).hello())
    assert refused.value.code == "not_allowed"


def test_a_failing_membership_lookup_refuses() -> None:
    def broken(key: str) -> bool:
        raise RuntimeError("database gone")

    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(HandshakeRefused) as refused:
        Handshake(a, CHAIN, broken).receive(Handshake(b, CHAIN, bool).hello())
    assert refused.value.code == "not_allowed"


def test_a_dialled_url_answering_with_another_key_is_refused() -> None:
    a, b, c = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    left = Handshake(a, CHAIN, bool, expected_peer=b.public_key)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(Handshake(c, CHAIN, bool).hello())
    assert refused.value.code == "unexpected_peer"


def test_own_key_and_echoed_challenge_are_refused() -> None:
    a = SigningKey.generate()
    left = Handshake(a, CHAIN, bool)
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(Handshake(a, CHAIN, bool).hello())
    assert refused.value.code == "self"
    echo = {**Handshake(SigningKey.generate(), CHAIN, bool).hello(), "challenge": left.challenge}
    with pytest.raises(HandshakeRefused) as refused:
        left.receive(echo)
    assert refused.value.code == "reflected_challenge"


@pytest.mark.parametrize(
    "change",
    [
        {"type": "hello"},
        {"version": 2},
        {"version": True},
        {"node_key": "AB" * 32},
        {"challenge": "00"},
        {"extra": 1},
    ],
)
def test_a_malformed_hello_is_refused(change: dict[str, object]) -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(HandshakeRefused):
        Handshake(a, CHAIN, bool).receive({**Handshake(b, CHAIN, bool).hello(), **change})


def test_an_answer_before_the_hello_is_refused() -> None:
    a = SigningKey.generate()
    with pytest.raises(HandshakeRefused) as refused:
        Handshake(a, CHAIN, bool).receive({"type": AUTH, "signature": "00" * 64})
    assert refused.value.code == "malformed"
