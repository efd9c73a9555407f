"""Create (or refresh) the demo accounts and print how to sign in."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from guardian.shortcuts import assign_perm

from incidents.models import Playbook
from incidents.roles import ensure_roles

DEMO_USERS = [
    # username, group, what it may do, staff, superuser
    ("admin", "Admin", "everything, including the Django admin", True, True),
    ("commander", "Commander", "also changes status and commander", False, False),
    (
        "responder",
        "Responder",
        "opens incidents, ticks steps, adds notes",
        False,
        False,
    ),
    ("viewer", "Viewer", "reads playbooks and incidents, exports", False, False),
]


class Command(BaseCommand):
    help = "Create the demo accounts (admin, commander, responder, viewer)."

    def handle(self, *args: object, **options: object) -> None:
        password = settings.DEMO_PASSWORD or secrets.token_urlsafe(9)
        User = get_user_model()  # noqa: N806
        ensure_roles(Group, Permission)
        for username, role, _, staff, superuser in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff, user.is_superuser = staff, superuser
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=role)])
        # Actions are default-deny per playbook: the demo lets Commanders act.
        commanders = Group.objects.get(name="Commander")
        for playbook in Playbook.objects.current():
            for perm in ("run_actions", "approve_actions"):
                assign_perm(f"incidents.{perm}", commanders, playbook)
        self.stdout.write(
            f"Sign in at /accounts/login/ (password for all: {password}):"
        )
        for username, role, what, _, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {role:<10} {what}")
