"""Single sign-on in a real browser against a real OpenID Connect provider
(oidc-provider-mock): sign in through the provider's page and land with the role
the provider's groups map to; lose a group there, sign out (the provider's session
too) and in again, and the role is gone; lose every mapped group and the console
says why it refuses. No console errors on the way."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import Page, expect

from incidents.models import AuditEvent
from incidents.roles import ensure_roles
from sso.models import RoleMapping
from tests.conftest import PASSWORD
from tests.e2e.conftest import no_sideways_scroll, watch
from tests.sso.conftest import Provider, serve, sso_settings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def idp() -> Iterator[Provider]:
    yield from serve()


@pytest.fixture
def console(live_server, settings, idp):  # noqa: ANN001, ANN201
    sso_settings(settings, idp)
    ensure_roles(Group, Permission)
    RoleMapping.objects.create(
        claim_value="oncall", group=Group.objects.get(name="Responder")
    )
    RoleMapping.objects.create(
        claim_value="readers", group=Group.objects.get(name="Viewer")
    )
    return live_server


def offline(page: Page) -> None:
    """The provider's pages style themselves from a CDN this closed network cannot
    reach: answered empty here, so a console error is the console's own."""
    page.route(
        re.compile(r"^https://cdn\.jsdelivr\.net/"),
        lambda route: route.fulfill(status=200, content_type="text/css", body=""),
    )


def sign_in_with_provider(page: Page, console, subject: str) -> None:  # noqa: ANN001
    page.goto(f"{console.url}/accounts/login/")
    page.get_by_role("link", name="Sign in with Mock IdP").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.fill("input[name=sub]", subject)
    page.get_by_role("button", name="Authorize", exact=True).click()


def sign_out_everywhere(page: Page, console) -> None:  # noqa: ANN001
    page.get_by_role("button", name="Log out").click()
    # The console's page sends the browser on to the provider's end-session page.
    expect(page.get_by_role("heading", name="End Session")).to_be_visible()
    assert "id_token_hint" in page.url
    page.get_by_role("button", name="End session").click()
    expect(page).to_have_url(f"{console.url}/accounts/login/")


def test_the_role_follows_the_providers_groups_at_each_sign_in(page, console, idp):
    offline(page)
    problems = watch(page)
    idp.set_user(
        "u-2001", preferred_username="rita", email="rita@example.com", groups=["oncall"]
    )

    sign_in_with_provider(page, console, "u-2001")
    expect(page).to_have_url(f"{console.url}/incidents/")
    expect(page.get_by_title("Signed in through your identity provider")).to_have_text(
        "rita"
    )
    expect(page.get_by_role("link", name="Open incident")).to_be_visible()
    assert page.goto(f"{console.url}/incidents/new/").status == 200

    # Taken out of `oncall` at the provider: Viewer only from the next sign-in.
    idp.set_user(
        "u-2001",
        preferred_username="rita",
        email="rita@example.com",
        groups=["readers"],
    )
    page.goto(f"{console.url}/incidents/")
    sign_out_everywhere(page, console)
    sign_in_with_provider(page, console, "u-2001")
    expect(page).to_have_url(f"{console.url}/incidents/")
    expect(page.get_by_title("Signed in through your identity provider")).to_have_text(
        "rita"
    )
    expect(page.get_by_role("link", name="Open incident")).to_have_count(0)
    assert page.goto(f"{console.url}/incidents/new/").status == 403

    # Out of every mapped group: refused, and told why.
    idp.set_user("u-2001", preferred_username="rita", groups=["marketing"])
    page.goto(f"{console.url}/incidents/")
    sign_out_everywhere(page, console)
    sign_in_with_provider(page, console, "u-2001")
    expect(page).to_have_url(f"{console.url}/accounts/login/")
    expect(page.locator(".messages")).to_have_text(
        "Your account has no role in the console: ask an admin to map one of your "
        "groups."
    )
    assert page.goto(f"{console.url}/incidents/").url.startswith(
        f"{console.url}/accounts/login/"
    )
    rita = get_user_model().objects.get(username="rita")
    assert not rita.groups.exists()
    assert AuditEvent.objects.filter(verb="login.refused", actor_name="u-2001").exists()
    # 403 is the refusal this test provokes on purpose; nothing else.
    assert [p for p in problems if "403" not in p] == []


def test_with_local_accounts_off_the_password_form_is_folded_away(
    page,
    live_server,
    settings,
    idp,
    make_user,
):
    sso_settings(settings, idp, local=False)
    make_user("admin", "Admin", is_staff=True)
    make_user("rita", "Responder")
    problems = watch(page)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("link", name="Sign in with Mock IdP")).to_be_visible()
    expect(page.locator("#id_password")).to_be_hidden()
    no_sideways_scroll(page)

    # A normal account's password is refused, and the page says what to use.
    page.get_by_text("Break-glass sign-in").click()
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in with a password").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Password sign-in is only for break-glass accounts: use “Sign in with Mock IdP”."
    )
    expect(page.locator("#id_password")).to_be_visible()  # still unfolded

    # The break-glass admin gets in.
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in with a password").click()
    expect(page.get_by_title("Change your password")).to_have_text("admin")
    assert problems == []
