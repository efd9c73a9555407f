"""A signed-in HTTP client for a console served on a real port, as a browser
without JavaScript would use it. Plain httpx, no Django and no pytest: the newcomer
test and CI's production-install check (which runs in a venv without the dev extras)
both use it."""

from __future__ import annotations

import html
import re

import httpx


def sign_in(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10, follow_redirects=False)
    form = client.get("/accounts/login/")
    if form.status_code != 200:
        raise AssertionError(f"login page: {form.status_code}")
    reply = post(
        client, "/accounts/login/", {"username": username, "password": password}
    )
    if reply.status_code != 302:
        raise AssertionError(f"{username} could not sign in: {reply.status_code}")
    return client


def post(client: httpx.Client, url: str, data: dict[str, str]) -> httpx.Response:
    return client.post(
        url,
        data=data,
        headers={
            "X-CSRFToken": client.cookies.get("csrftoken", ""),
            "Referer": f"{client.base_url}{url}",
        },
    )


def csrf_of(page: str) -> str:
    """The CSRF token of the page's (first) form."""
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden and preset inputs of the form posting to `action`."""
    start = page.index(f'action="{action}"')
    form = page[start : page.index("</form>", start)]
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[html.unescape(name.group(1))] = html.unescape(
                value.group(1) if value else ""
            )
    return fields


def run_form_action(page: str) -> str:
    """The first Run form's URL on a checklist page."""
    found = re.search(r'action="(/incidents/\d+/commands/\d+/run)"', page)
    if not found:
        raise AssertionError("no Run form on the page")
    return found.group(1)
