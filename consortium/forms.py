"""Forms of the membership pages: the public application and the admins' small forms.

Each form checks its input with the protocol's own validators, so that what an
admin then signs is well formed; the chain's rules still decide the rest.
"""

from __future__ import annotations

from typing import Any

from django import forms

from consortium.models import Application, MemberKey, Organisation, Peer
from consortium_protocol.errors import ProtocolError
from consortium_protocol.hashing import is_hex64
from consortium_protocol.transactions import MAX_LABEL, ROLES, check_new_org, check_org_id, check_peer

KEY_HELP = "64 lowercase hex characters (an Ed25519 public key)"
OBSERVER = "observer"


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _public_key(text: str, where: str) -> str:
    key = text.strip().lower()
    if not is_hex64(key):
        raise forms.ValidationError(f"{where}: {text[:80]!r} is not a public key; expected {KEY_HELP}.")
    return key


# An application is anonymous and waits on the approvals page for review, so
# it is bounded: at most this many admin keys and peers, each line short.
APPLICATION_MAX_KEYS = 16
APPLICATION_MAX_PEERS = 16
_KEY_LINE = 70  # 64 hex characters and some whitespace
_PEER_LINE = 400  # a key, a url of up to 300 characters, "observer"


class ApplicationForm(forms.Form):
    org_id = forms.CharField(max_length=64, help_text="1 to 64 characters of A-Z a-z 0-9 . _ -")
    name = forms.CharField(max_length=128, label="Organisation name")
    admin_keys = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Admin public keys",
        max_length=APPLICATION_MAX_KEYS * _KEY_LINE,
        help_text=f"One per line, at most {APPLICATION_MAX_KEYS}; {KEY_HELP}. Never paste a private key here.",
    )
    peers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=APPLICATION_MAX_PEERS * _PEER_LINE,
        help_text=f'One node per line, at most {APPLICATION_MAX_PEERS}: "NODE_PUBLIC_KEY ws://host:port/ws/peer/", '
        'optionally followed by "observer" for a node that is not a validator.',
    )
    contact = forms.CharField(max_length=200, required=False, help_text="How the admins can reach you (optional).")

    def clean_org_id(self) -> str:
        org_id = self.cleaned_data["org_id"].strip()
        _protocol(check_org_id, org_id)
        if Organisation.objects.filter(org_id=org_id).exists():
            raise forms.ValidationError(f"{org_id} is already an organisation id on this chain.")
        if Application.objects.filter(org_id=org_id, status=Application.Status.NEW).exists():
            raise forms.ValidationError(f"An application for {org_id} is already waiting for review.")
        return org_id

    def clean_admin_keys(self) -> list[str]:
        lines = _bounded_lines(self.cleaned_data["admin_keys"], APPLICATION_MAX_KEYS, "admin keys")
        keys = [_public_key(line, f"Line {n}") for n, line in lines]
        if not keys:
            raise forms.ValidationError("Give at least one admin public key.")
        return keys

    def clean_peers(self) -> list[dict[str, Any]]:
        lines = _bounded_lines(self.cleaned_data["peers"], APPLICATION_MAX_PEERS, "peers")
        return [_peer(line, n) for n, line in lines]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        org = {"org_id": data["org_id"], "name": data["name"], "admins": data["admin_keys"], "peers": data["peers"]}
        # The protocol's own check of an org.add, so a proposal built from it is well formed.
        _protocol(check_new_org, org)
        keys = org["admins"] + [peer["node_key"] for peer in org["peers"]]
        if MemberKey.objects.filter(key__in=keys).exists() or Peer.objects.filter(node_key__in=keys).exists():
            raise forms.ValidationError("One of these keys is already known on this chain; every key must be new.")
        data["org"] = org
        return data


def _bounded_lines(text: str, limit: int, what: str) -> list[tuple[int, str]]:
    lines = list(_lines(text))
    if len(lines) > limit:
        raise forms.ValidationError(f"At most {limit} {what}; this gives {len(lines)}.")
    return lines


def _peer(line: str, n: int) -> dict[str, Any]:
    words = line.split()
    if len(words) not in (2, 3) or (len(words) == 3 and words[2] != OBSERVER):
        raise forms.ValidationError(f'Line {n}: expected "NODE_PUBLIC_KEY URL" or "NODE_PUBLIC_KEY URL observer".')
    peer = {"node_key": _public_key(words[0], f"Line {n}"), "url": words[1], "validator": len(words) == 2}
    _protocol(check_peer, peer, f"line {n}")
    return peer


def _protocol(check: Any, *args: Any) -> None:
    try:
        check(*args)
    except ProtocolError as error:
        raise forms.ValidationError(error.detail[0].upper() + error.detail[1:] + ".") from None


class VoteForm(forms.Form):
    proposal_id = forms.CharField(max_length=128)
    approve = forms.TypedChoiceField(choices=[("yes", "Approve"), ("no", "Reject")], coerce=lambda v: v == "yes")


class SuspendForm(forms.Form):
    org_id = forms.ChoiceField(label="Organisation")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        active = Organisation.objects.filter(status=Organisation.Status.ACTIVE)
        field = self.fields["org_id"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(org.org_id, str(org)) for org in active]


class MemberAddForm(forms.Form):
    key = forms.CharField(max_length=64, label="Public key", help_text=KEY_HELP)
    roles = forms.MultipleChoiceField(choices=[(r, r) for r in ROLES], widget=forms.CheckboxSelectMultiple)
    label = forms.CharField(max_length=MAX_LABEL, required=False)

    def clean_key(self) -> str:
        return _public_key(self.cleaned_data["key"], "Public key")

    def clean_roles(self) -> list[str]:
        return [role for role in ROLES if role in self.cleaned_data["roles"]]


class RevokeForm(forms.Form):
    key = forms.CharField(max_length=64)

    def clean_key(self) -> str:
        return _public_key(self.cleaned_data["key"], "Public key")
