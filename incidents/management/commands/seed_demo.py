"""Create (or refresh) the demo accounts and print how to sign in."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERS = [
    # username, role shown to the user, staff, superuser
    ("admin", "Admin: everything, including the Django admin", True, True),
    ("commander", "Commander: runs incidents and actions", False, False),
    ("responder", "Responder: works the checklist and runs probes", False, False),
    ("viewer", "Viewer: reads playbooks and incidents", False, False),
]


class Command(BaseCommand):
    help = "Create the demo accounts (admin, commander, responder, viewer)."

    def handle(self, *args: object, **options: object) -> None:
        password = settings.DEMO_PASSWORD or secrets.token_urlsafe(9)
        User = get_user_model()  # noqa: N806
        for username, _, staff, superuser in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff, user.is_superuser = staff, superuser
            user.set_password(password)
            user.save()
        self.stdout.write(f"Demo accounts (password for all: {password}):")
        for username, role, _, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {role}")
