"""What the sign-in page offers: the provider's button, the password form."""

from __future__ import annotations

from django import template
from django.conf import settings

from sso import config

register = template.Library()


@register.simple_tag
def sign_in_options() -> dict[str, object]:
    return {
        "sso": config.enabled(),
        "provider": config.provider_name(),
        "local": bool(getattr(settings, "LOCAL_ACCOUNTS", True)),
    }
