"""Creating forms carry a one-time key: a double submit makes one row, and the
repeat is answered with the first result."""

from __future__ import annotations

import re

import pytest

from incidents.models import Incident
from tests.conftest import signed_in
from tests.test_concurrency import run_together

KEY = re.compile(
    r'name="request_key"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="request_key"'
)


def keys_in(html: str, form_marker: str) -> list[str]:
    """The request_key of the form whose tag contains `form_marker`."""
    form = html[html.index(form_marker) :]
    form = form[: form.index("</form>")]
    return [a or b for a, b in KEY.findall(form)]


def test_two_quick_submits_of_open_incident_make_one(responder_client, yomira):
    page = responder_client.get("/incidents/new/").content.decode()
    (key,) = keys_in(page, 'action="/incidents/new/"')
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    again = responder_client.get("/incidents/new/").content.decode()
    assert keys_in(again, 'action="/incidents/new/"') != [key]  # per page load
    data = {
        "playbook": "redis-down-unreachable",
        "title": "Redis gone",
        "request_key": key,
    }
    first = responder_client.post("/incidents/new/", data)
    second = responder_client.post("/incidents/new/", data)
    incident = Incident.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/incidents/{incident.pk}/"
    assert incident.events.filter(verb="incident.opened").count() == 1
    # A new page load is a new incident.
    responder_client.post("/incidents/new/", {**data, "request_key": "b" * 32})
    assert Incident.objects.count() == 2


def test_a_key_is_one_persons(responder_client, commander_client, yomira):
    data = {
        "playbook": "redis-down-unreachable",
        "title": "Redis",
        "request_key": "k" * 32,
    }
    responder_client.post("/incidents/new/", data)
    commander_client.post("/incidents/new/", data)
    assert Incident.objects.count() == 2


@pytest.mark.parametrize(
    "key", ["k" * 65, "a\x00b", "ключ-ключ", "short", "a b c d e f"]
)
def test_a_malformed_key_is_refused_and_nothing_is_written(
    responder_client, yomira, key
):
    data = {"playbook": "redis-down-unreachable", "title": "Redis", "request_key": key}
    response = responder_client.post("/incidents/new/", data)
    assert response.status_code == 400
    assert "request key" in response.content.decode()
    assert Incident.objects.count() == 0


def test_two_quick_notes_make_one(responder_client, incident):
    page = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    (key,) = keys_in(page, 'class="note-form"')
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    again = responder_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert keys_in(again, 'class="note-form"') != [key]  # per page load, not cached
    url = f"/incidents/{incident.pk}/notes"
    data = {"text": "queue draining", "request_key": key}
    assert responder_client.post(url, data).status_code == 302
    assert responder_client.post(url, data).status_code == 302
    assert incident.events.filter(verb="note.added").count() == 1
    responder_client.post(url, {**data, "request_key": "c" * 32})
    assert incident.events.filter(verb="note.added").count() == 2
    refused = responder_client.post(
        url, {**data, "request_key": "c" * 65}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 400 and "request key" in refused.content.decode()
    assert incident.events.filter(verb="note.added").count() == 2


def test_an_htmx_note_answer_hands_the_form_a_new_key(responder_client, incident):
    url = f"/incidents/{incident.pk}/notes"
    key = "d" * 32
    answer = responder_client.post(
        url, {"text": "first", "request_key": key}, headers={"HX-Request": "true"}
    ).content.decode()
    fresh = re.search(
        r'<input[^>]*id="note-request-key"[^>]*hx-swap-oob="true"[^>]*>', answer
    )
    assert fresh, answer[-2000:]
    (new_key,) = re.findall(r'value="([0-9a-f]{32})"', fresh.group(0))
    assert new_key != key
    responder_client.post(
        url, {"text": "second", "request_key": new_key}, headers={"HX-Request": "true"}
    )
    assert incident.events.filter(verb="note.added").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_with_one_key_make_one_incident(responder, yomira):
    clients = [signed_in(responder), signed_in(responder)]
    data = {
        "playbook": "redis-down-unreachable",
        "title": "Both",
        "request_key": "e" * 32,
    }

    def submit(client):  # noqa: ANN001, ANN202
        return lambda: client.post("/incidents/new/", data)

    first, second = run_together(submit(clients[0]), submit(clients[1]))
    assert [first.status_code, second.status_code] == [302, 302], (first, second)
    assert first["Location"] == second["Location"]
    assert Incident.objects.filter(title="Both").count() == 1
