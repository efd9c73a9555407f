"""LOCAL_ACCOUNTS=false: passwords are refused on the server (the sign-in form and
the admin's alike) for everyone but the break-glass accounts; and single sign-on's
backends grant nothing, so `can()` still answers as Django's has_perm."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY

from incidents import access
from incidents.models import AuditEvent
from tests.conftest import PASSWORD
from tests.test_page_costs import ALL_PERMS

from .conftest import sso_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_off(settings, idp, roles):
    sso_settings(settings, idp, local=False)
    return idp


def test_a_password_is_refused_for_a_normal_account(local_off, client, make_user):
    make_user("rita", "Responder")
    response = client.post(
        "/accounts/login/", {"username": "rita", "password": PASSWORD}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Password sign-in is only for break-glass accounts" in page
    assert "Sign in with Mock IdP" in page
    assert '<details class="break-glass" open>' in page
    assert SESSION_KEY not in client.session
    failed = AuditEvent.objects.filter(verb="login.failed").latest("seq")
    assert failed.data == {"username": "rita"}


def test_the_admin_login_refuses_it_too(local_off, client, make_user):
    make_user("sam", "Admin", is_staff=True)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "sam", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert SESSION_KEY not in client.session


def test_the_break_glass_admin_still_signs_in(local_off, client, make_user):
    make_user("admin", "Admin", is_staff=True)
    page = client.get("/accounts/login/").content.decode()
    assert "Break-glass sign-in" in page
    response = client.post(
        "/accounts/login/", {"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert SESSION_KEY in client.session


def test_a_wrong_break_glass_password_is_still_wrong(local_off, client, make_user):
    make_user("admin", "Admin")
    client.post("/accounts/login/", {"username": "admin", "password": "nope"})
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize("role", ["Viewer", "Responder", "Commander", "Admin", None])
def test_can_answers_as_djangos_has_perm_with_the_sso_backends(
    local_off, settings, yomira, make_user, role
):
    assert "sso.backend.SSOBackend" in settings.AUTHENTICATION_BACKENDS
    assert "sso.backend.LocalAccountsGate" in settings.AUTHENTICATION_BACKENDS
    # Known to access.can, which then answers from its cache alone.
    assert access.PERM_CACHE_BACKENDS.issuperset(settings.AUTHENTICATION_BACKENDS)
    person = make_user(f"p{role or 'none'}", *([role] if role else []))
    for perm in ALL_PERMS:
        fresh = type(person).objects.get(pk=person.pk)
        assert access.can(fresh, perm) == fresh.has_perm(perm), perm
