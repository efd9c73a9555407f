"""Who signed in through the identity provider, and which of its groups give which
role in the console."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models

from incidents.roles import ROLES


class Identity(models.Model):
    """A console account's link to a person at the provider. Matched on the issuer
    and the subject (`sub`): the only pair the provider promises never to reuse or
    reassign. Never on the email address, which a person (or a misconfigured
    provider) can change to someone else's."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="sso_identity_issuer_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class RoleMapping(models.Model):
    """One value of the roles claim (OIDC_ROLES_CLAIM, `groups` by default) and the
    role it gives. At every sign-in a person's role groups become exactly those
    their claim values map to."""

    claim_value = models.CharField(
        max_length=255,
        unique=True,
        help_text="A value of the roles claim, exactly as the provider sends it "
        "(case matters; Keycloak's full group paths start with '/').",
    )
    group = models.ForeignKey(
        Group,
        on_delete=models.PROTECT,
        limit_choices_to={"name__in": list(ROLES)},
        help_text="The role it gives.",
    )
    staff = models.BooleanField(
        default=False,
        help_text="Also staff: may open this admin site. Never superuser.",
    )

    class Meta:
        ordering = ["claim_value"]

    def __str__(self) -> str:
        return (
            f"{self.claim_value} → {self.group.name}{' (staff)' if self.staff else ''}"
        )

    def clean(self) -> None:
        if self.group_id and self.group.name not in ROLES:
            raise ValidationError(
                {"group": f"Choose one of the roles: {', '.join(ROLES)}."}
            )
