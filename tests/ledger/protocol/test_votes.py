"""Commit certificates: a quorum of distinct validators' precommits for exactly this block."""

from __future__ import annotations

from typing import Any

import pytest

from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.votes import PRECOMMIT, PREVOTE, check_certificate, quorum, sign_vote, third, vote_bytes

CHAIN = "test-chain"
HEIGHT = 7
BLOCK = "ab" * 32
VALIDATORS = [SigningKey(bytes([n]) * 32) for n in range(1, 5)]  # fixed: they appear in parametrized test ids
VALIDATOR_KEYS = [key.public_key for key in VALIDATORS]
OUTSIDER = SigningKey(bytes([9]) * 32)


def entry(key: SigningKey, round_: int = 0, *, signed_round: int | None = None, **vote: Any) -> dict[str, Any]:
    """One certificate entry; `signed_round` and `vote` let the signature cover something else."""
    fields = {"chain_id": CHAIN, "height": HEIGHT, "block_hash": BLOCK, "vote_type": PRECOMMIT, **vote}
    signed = round_ if signed_round is None else signed_round
    signature = sign_vote(key, fields["vote_type"], fields["chain_id"], fields["height"], signed, fields["block_hash"])
    return {"validator": key.public_key, "round": round_, "signature": signature}


def certificate(signers: list[SigningKey] | None = None) -> list[dict[str, Any]]:
    return [entry(key) for key in (VALIDATORS if signers is None else signers)]


def check(commit: Any, **overrides: Any) -> None:
    args: dict[str, Any] = {"chain_id": CHAIN, "height": HEIGHT, "block_hash": BLOCK, "validators": VALIDATOR_KEYS}
    args.update(overrides)
    check_certificate(commit, **args)


def rejection(commit: Any, **overrides: Any) -> str:
    with pytest.raises(ProtocolError) as caught:
        check(commit, **overrides)
    assert caught.value.code == "bad_certificate"
    return caught.value.detail


@pytest.mark.parametrize(("n", "needed"), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5), (10, 7), (100, 67)])
def test_quorum_is_floor_two_thirds_plus_one(n: int, needed: int) -> None:
    assert quorum(n) == needed
    assert 3 * quorum(n) > 2 * n
    assert 3 * (quorum(n) - 1) <= 2 * n


@pytest.mark.parametrize(("n", "needed"), [(1, 1), (3, 2), (4, 2), (7, 3)])
def test_third_is_floor_n_over_three_plus_one(n: int, needed: int) -> None:
    assert third(n) == needed


def test_vote_bytes_are_the_canonical_vote_object() -> None:
    signed = vote_bytes(PRECOMMIT, CHAIN, HEIGHT, 2, BLOCK)
    assert loads_strict(signed) == {
        "type": "precommit",
        "chain_id": CHAIN,
        "height": HEIGHT,
        "round": 2,
        "block_hash": BLOCK,
    }
    assert signed.startswith(b'{"block_hash":"abab')


def test_nil_vote_signs_a_null_block_hash() -> None:
    assert b'"block_hash":null' in vote_bytes(PREVOTE, CHAIN, HEIGHT, 0, None)


def test_certificate_signed_by_every_validator_is_valid() -> None:
    check(certificate())


def test_certificate_signed_by_exactly_a_quorum_is_valid() -> None:
    check(certificate(VALIDATORS[:3]))


def test_signers_from_different_rounds_are_not_a_certificate() -> None:
    """PROTOCOL.md section 4: a decision is a quorum of one round."""
    assert "one round only" in rejection([entry(VALIDATORS[0], 0), entry(VALIDATORS[1], 3), entry(VALIDATORS[2], 1)])
    check([entry(VALIDATORS[0], 3), entry(VALIDATORS[1], 3), entry(VALIDATORS[2], 3)])


def test_validators_may_be_given_as_a_set_in_any_order() -> None:
    check(certificate(VALIDATORS[1:]), validators=set(reversed(VALIDATOR_KEYS)))


def test_certificate_with_too_few_signers_is_rejected() -> None:
    assert "2 of 4 validators signed; 3 needed" in rejection(certificate(VALIDATORS[:2]))


def test_empty_certificate_is_rejected() -> None:
    assert "0 of 4" in rejection([])


def test_certificate_with_no_validators_at_all_is_rejected() -> None:
    rejection([], validators=[])


def test_repeated_validator_is_rejected_even_in_another_round() -> None:
    commit = [entry(VALIDATORS[0], 0), entry(VALIDATORS[1], 0), entry(VALIDATORS[1], 1), entry(VALIDATORS[2], 0)]
    assert "repeats validator" in rejection(commit)


def test_signature_by_a_non_validator_is_rejected() -> None:
    commit = [*certificate(VALIDATORS[:3]), entry(OUTSIDER)]
    assert "non-validator" in rejection(commit)


def test_round_other_than_the_signed_one_is_rejected() -> None:
    commit = [entry(VALIDATORS[0], 1), entry(VALIDATORS[1], 1), entry(VALIDATORS[2], 1, signed_round=0)]
    assert "does not verify" in rejection(commit)


@pytest.mark.parametrize(
    "vote",
    [{"chain_id": "other-chain"}, {"height": HEIGHT + 1}, {"block_hash": "cd" * 32}, {"vote_type": PREVOTE}],
    ids=["chain", "height", "block", "prevote"],
)
def test_precommit_for_anything_else_is_rejected(vote: dict[str, Any]) -> None:
    commit = [*certificate(VALIDATORS[:2]), entry(VALIDATORS[2], **vote)]
    assert "does not verify" in rejection(commit)


def test_certificate_checked_against_another_chain_id_is_rejected() -> None:
    assert "does not verify" in rejection(certificate(), chain_id="other-chain")


def test_signature_swapped_between_validators_is_rejected() -> None:
    commit = certificate(VALIDATORS[:3])
    commit[0]["signature"], commit[1]["signature"] = commit[1]["signature"], commit[0]["signature"]
    assert "does not verify" in rejection(commit)


@pytest.mark.parametrize(
    "commit",
    [
        None,
        {"validator": "x"},
        "commit",
        [None],
        [["validator", "round", "signature"]],
        [{"validator": VALIDATOR_KEYS[0], "round": 0}],
        [{**entry(VALIDATORS[0]), "height": HEIGHT}],
        [{**entry(VALIDATORS[0]), "validator": [VALIDATOR_KEYS[0]]}],
        [{**entry(VALIDATORS[0]), "validator": None}],
        [{**entry(VALIDATORS[0]), "round": -1}],
        [{**entry(VALIDATORS[0]), "round": "0"}],
        [{**entry(VALIDATORS[0]), "round": False}],
        [{**entry(VALIDATORS[0]), "signature": None}],
        [{**entry(VALIDATORS[0]), "signature": ["00"]}],
        [{**entry(VALIDATORS[0]), "signature": entry(VALIDATORS[0])["signature"].upper()}],
    ],
    ids=repr,
)
def test_malformed_certificate_is_rejected_without_crashing(commit: Any) -> None:
    rejection(commit)
