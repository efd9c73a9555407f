"""Who does something: a person (with the address they came from) or a named system
identity. Every service takes one, and the audit log records it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest


@dataclass(frozen=True)
class Actor:
    """`name` is what the audit log records: the username, the identity ("sweeper",
    "alert-intake", "api-token:deploy-bot"), or what someone not signed in typed.
    A system actor has no user, so no permission of its own: a service lets one act
    only by naming it (deny by default)."""

    name: str = ""
    user: AbstractBaseUser | None = None
    ip: str = ""
    is_system: bool = False

    @classmethod
    def person(
        cls, user: AbstractBaseUser | AnonymousUser | None, ip: str = ""
    ) -> Actor:
        """A person; someone not signed in (an AnonymousUser) is an unnamed one."""
        if user is None or not user.is_authenticated:
            return cls(ip=ip or "")
        return cls(name=user.get_username(), user=user, ip=ip or "")

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        """The signed-in person and the address their request came from."""
        return cls.person(getattr(request, "user", None), client_ip(request))

    @classmethod
    def system(cls, name: str) -> Actor:
        if not name or not name.strip():
            raise ValueError("A system actor needs a name.")
        return cls(name=name, is_system=True)

    @classmethod
    def anonymous(cls, name: str = "", ip: str = "") -> Actor:
        """Someone not signed in: a failed sign-in records the name it tried."""
        return cls(name=name, ip=ip or "")

    @property
    def key(self) -> str:
        """Tells actors apart where a user's primary key did (one-time keys, locks)."""
        if self.user is not None:
            return f"user:{self.user.pk}"
        return f"{'system' if self.is_system else 'anonymous'}:{self.name}"

    def is_one_of(self, identities: Collection[str]) -> bool:
        """A system actor named in `identities` (what a service lets act)."""
        return self.is_system and self.name in identities

    def __str__(self) -> str:
        return self.name or "someone not signed in"


def client_ip(request: HttpRequest | None) -> str:
    """The address the audit log records for a request: its REMOTE_ADDR (never a
    header the client could have written)."""
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR") or ""
