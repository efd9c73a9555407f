"""A change to a role mapping changes who holds which role at their next sign-in:
audited like a change to a group (`sso.mapping_changed`, `sso.mapping_deleted`)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from incidents import audit
from incidents.actors import Actor
from incidents.signals import current_request

from .models import RoleMapping


def _actor() -> Actor:
    request = current_request.get()
    if request is None or not getattr(request, "user", None):
        return Actor.system("system")
    return Actor.from_request(request)


def _data(mapping: RoleMapping) -> dict[str, Any]:
    return {
        "claim_value": mapping.claim_value,
        "role": mapping.group.name,
        "staff": mapping.staff,
    }


@receiver(post_save, sender=RoleMapping)
def mapping_saved(
    sender: Any, instance: RoleMapping, raw: bool = False, **kwargs: Any
) -> None:
    if not raw:
        audit.append(
            "sso.mapping_changed", actor=_actor(), obj=instance, data=_data(instance)
        )


@receiver(post_delete, sender=RoleMapping)
def mapping_deleted(sender: Any, instance: RoleMapping, **kwargs: Any) -> None:
    audit.append(
        "sso.mapping_deleted", actor=_actor(), obj=instance, data=_data(instance)
    )
