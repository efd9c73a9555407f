"""What notify shows on the console's pages and in the admin: the notifications of
an incident, escalation names that reach nobody, and channels' secrets as set or
not, never their values."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import Incident
from notify import panels
from notify.models import Channel
from tests.conftest import signed_in

from .conftest import PD_PATH, ROUTING_KEY, assert_secret_nowhere, open_, playbook


@pytest.fixture
def accepting(httpserver):
    httpserver.expect_request(PD_PATH, method="POST").respond_with_json(
        {"status": "success"}, status=202
    )
    return httpserver


def test_the_incident_page_lists_the_notifications_sent(
    yomira, pagerduty, accepting, committed, commander_actor, commander_client
):
    incident = open_(committed, commander_actor, 4)
    page = commander_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert 'id="notifications"' in page
    assert "<strong>PagerDuty</strong> trigger sent" in page
    assert_secret_nowhere(page)


def test_the_incident_panel_costs_one_query_and_nothing_without_notifications(
    yomira, pagerduty, accepting, committed, commander_actor
):
    incident = open_(committed, commander_actor, 4)
    incident = Incident.objects.get(pk=incident.pk)
    with CaptureQueriesContext(connection) as queries:
        html = panels.notifications(incident)
    assert len(queries) == 1 and "PagerDuty" in html
    other = open_(committed, commander_actor, 3)
    other.notifications.all().delete()
    assert panels.notifications(other) == ""


def test_an_unmapped_escalation_name_warns_on_the_playbook_page(
    yomira, pagerduty, viewer_client
):
    page = viewer_client.get(
        "/playbooks/security-incident-token-compromise/"
    ).content.decode()
    assert (
        "'Security team' is not mapped to a notification channel: nobody "
        "will be told. An admin can add one." in page
    )
    assert "'PagerDuty' is not mapped" not in page


def test_a_disabled_channel_warns_too_and_a_mapped_playbook_says_nothing(
    yomira, pagerduty
):
    pagerduty.enabled = False
    pagerduty.save()
    html = panels.unmapped_escalation(playbook(4))
    assert "maps to a disabled notification channel" in html
    pagerduty.enabled = True
    pagerduty.save()
    redis_down = playbook(4)
    with CaptureQueriesContext(connection) as queries:
        assert panels.unmapped_escalation(redis_down) == ""
    assert len(queries) == 1


def test_the_admin_says_whether_a_secret_is_set_never_what_it_is(
    db, pagerduty, slack, monkeypatch
):
    monkeypatch.delenv("SLACK_WEBHOOK_URL")
    admin = get_user_model().objects.create_superuser("ada", "ada@yomira.test", "pw")
    client = signed_in(admin)
    page = client.get("/admin/notify/channel/").content.decode()
    assert "PAGERDUTY_ROUTING_KEY" in page and "SLACK_WEBHOOK_URL" in page
    # By name: PagerDuty's routing key is set, Slack's webhook URL is not.
    found = re.findall(r'field-secret_is_set"><img[^>]*alt="(\w+)"', page)
    assert found == ["True", "False"]
    assert ROUTING_KEY not in page
    assert client.get("/admin/notify/notification/").status_code == 200
    assert client.get("/admin/notify/notification/add/").status_code == 403


def test_a_channels_secret_variable_must_say_what_it_holds(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="ending in _ROUTING_KEY"):
        Channel(name="PD", kind="pagerduty", secret_env="SECRET_KEY").full_clean()
    with pytest.raises(ValidationError, match="ending in _WEBHOOK_URL"):
        Channel(name="S", kind="slack", secret_env="DATABASE_URL").full_clean()
    with pytest.raises(ValidationError, match="at least one address"):
        Channel(name="E", kind="email").full_clean()
    Channel(name="S", kind="slack", secret_env="SLACK_OPS_WEBHOOK_URL").full_clean()
    Channel.objects.create(name="Slack", kind="slack", secret_env="X_WEBHOOK_URL")
    with pytest.raises(ValidationError):
        Channel(name="SLACK", kind="slack", secret_env="Y_WEBHOOK_URL").full_clean()
