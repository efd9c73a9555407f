"""Per-playbook grants given and taken back from the console's access page.

A grant is a django-guardian row on one playbook revision. An open incident keeps
the revision it started with, so a grant or a revocation covers every revision of
the playbook (same runbook, same slug), not only the current one: taking the right
to run actions away must stop it on an incident that started before the last
import too. (`carry_grants` copies grants forward at each import.)"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from guardian.models import UserObjectPermission

from .. import access, audit
from ..actors import Actor
from ..models import Playbook

# What the access page offers, codename -> words. Probes come with the Responder
# role for every playbook; these two are the ones granted playbook by playbook.
GRANTABLE: dict[str, str] = {
    "run_actions": "run actions",
    "approve_actions": "approve actions",
}


class UnknownGrant(ValueError):
    """A permission the access page does not grant (a 400, not a 500)."""


def grant_on_playbook(
    *, actor: Actor, playbook: Playbook, person: AbstractBaseUser, permission: str
) -> bool:
    """Give `person` their own grant of `permission` on the playbook. False when
    they already held it on every revision (nothing written, nothing audited)."""
    return _change(actor, playbook, person, permission, give=True)


def revoke_on_playbook(
    *, actor: Actor, playbook: Playbook, person: AbstractBaseUser, permission: str
) -> bool:
    """Take back `person`'s own grant of `permission` on the playbook. A right
    that comes from a role or a group stays: it is not theirs to lose here. False
    when there was no grant to take back."""
    return _change(actor, playbook, person, permission, give=False)


def _change(
    actor: Actor,
    playbook: Playbook,
    person: AbstractBaseUser,
    permission: str,
    *,
    give: bool,
) -> bool:
    access.check(actor, access.CHANGE_GRANTS)  # before the transaction: see check
    if permission not in GRANTABLE:
        raise UnknownGrant(
            f"'{permission[:40]}' is not granted here; choose one of: "
            + ", ".join(GRANTABLE)
            + "."
        )
    content_type = ContentType.objects.get_for_model(Playbook)
    perm = Permission.objects.get(content_type=content_type, codename=permission)
    with transaction.atomic():
        # The revisions' rows, locked: two admins pressing at once change (and
        # audit) each grant once.
        revisions = dict(
            Playbook.objects.select_for_update(of=("self",))
            .filter(runbook__key=playbook.runbook.key, slug=playbook.slug)
            .values_list("pk", "runbook__revision")
        )
        rows = UserObjectPermission.objects.filter(
            user=person,
            permission=perm,
            content_type=content_type,
            object_pk__in=[str(pk) for pk in revisions],
        )
        had = {int(pk) for pk in rows.values_list("object_pk", flat=True)}
        changed = sorted(set(revisions) - had) if give else sorted(had)
        if not changed:
            return False
        # Neither bulk_create nor _raw_delete sends the per-row signals that audit
        # the admin's changes (incidents.signals): this service writes the one
        # record itself, as this actor, in the same shape.
        if give:
            UserObjectPermission.objects.bulk_create(
                UserObjectPermission(
                    user=person,
                    permission=perm,
                    content_type=content_type,
                    object_pk=str(pk),
                )
                for pk in changed
            )
        else:
            rows._raw_delete(rows.db)
        audit.append(
            "grant.changed",
            actor=actor,
            obj=playbook,
            data={
                "of": person.get_username(),
                "what": "object permission",
                "action": "add" if give else "remove",
                "items": [f"incidents.{permission}"],
                "on": str(playbook),
                "revisions": sorted(revisions[pk] for pk in changed),
            },
        )
    return True
