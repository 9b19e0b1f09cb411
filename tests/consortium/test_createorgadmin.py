"""manage.py createorgadmin: how an operator makes a user an admin of this node's organisation."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from consortium.permissions import ORG_ADMINS_GROUP, can_govern

PASSWORD = "a long enough passphrase 42"


def test_createorgadmin_creates_a_staff_user_who_may_govern(db):
    call_command("createorgadmin", "dana", password=PASSWORD)
    user = get_user_model().objects.get(username="dana")
    assert user.check_password(PASSWORD) and user.is_staff and not user.is_superuser
    assert can_govern(user) and user.groups.filter(name=ORG_ADMINS_GROUP).exists()
    assert user.has_perm("consortium.view_proposal") and not user.has_perm("consortium.change_proposal")


def test_createorgadmin_promotes_an_existing_user_and_keeps_the_password(db):
    user = get_user_model().objects.create_user("erin", password=PASSWORD)
    assert not can_govern(user)
    call_command("createorgadmin", "erin")
    call_command("createorgadmin", "erin")  # idempotent
    user = get_user_model().objects.get(username="erin")
    assert can_govern(user) and user.check_password(PASSWORD)


def test_createorgadmin_refuses_a_weak_password(db):
    with pytest.raises(CommandError, match="too short"):
        call_command("createorgadmin", "fay", password="abc")
    assert not get_user_model().objects.filter(username="fay").exists()


def test_a_superuser_may_govern_and_a_plain_user_may_not(db):
    assert can_govern(get_user_model().objects.create_superuser("root", password=PASSWORD))
    assert not can_govern(get_user_model().objects.create_user("gus", password=PASSWORD))
