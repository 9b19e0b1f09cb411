"""Make a user an admin of this node's organisation.

    python manage.py createorgadmin USERNAME [--password PASSWORD] [--email EMAIL]

Creates the user if needed (asking for a password on a terminal unless
--password is given; a password on the command line shows in the process
list, so prefer the prompt), then adds it to the "Organisation admins" group,
which holds `consortium.govern` and read access to the membership admin, and
marks it staff. Such a user may then have the node sign governance
transactions with its org_key from the approvals page and the Django admin.
Superusers (createsuperuser) may act without it.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from consortium.permissions import ORG_ADMINS_GROUP, make_org_admin


class Command(BaseCommand):
    help = "Create or promote a user to admin of this node's organisation (permission consortium.govern)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help="password for a new user (default: prompt on a terminal)")
        parser.add_argument("--email", default="", help="email address for a new user")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        user = users.objects.filter(username=options["username"]).first()
        if user is None:
            user = users(username=options["username"], email=options["email"])
            password = options["password"] or self._prompt_password()
            try:
                validate_password(password, user)
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from None
            user.set_password(password)
            user.save()
            self.stdout.write(f"Created user {user.username}.")
        make_org_admin(user)
        self.stdout.write(self.style.SUCCESS(f"{user.username} is now in {ORG_ADMINS_GROUP!r} and may govern."))

    def _prompt_password(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("a new user needs --password when no terminal is attached")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
        return password
