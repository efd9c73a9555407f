"""Issue 11 point 10 (part): in the admin, a playbook's imported fields are read
only (the runbook revision is their source) and playbooks, commands and runbook
revisions cannot be added or deleted there (commands can still be rebound); grants
stay editable through the object permissions."""

from __future__ import annotations

from django.test import Client

from incidents.models import Command, Playbook, Runbook


def test_a_playbooks_imported_fields_cannot_be_changed_in_the_admin(admin_user, yomira):
    client = Client()
    client.force_login(admin_user)
    playbook = Playbook.objects.current().get(number=5)
    url = f"/admin/incidents/playbook/{playbook.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="title"' not in page and 'name="severity"' not in page
    assert "DB Connection Pool Exhausted" in page
    assert "Object permissions" in page  # grants: still here
    client.post(url, {"title": "Renamed", "severity": "info"})
    playbook.refresh_from_db()
    assert (playbook.title, playbook.severity) == (
        "DB Connection Pool Exhausted",
        "critical",
    )


def test_playbooks_are_neither_added_nor_deleted_in_the_admin(admin_user, yomira):
    client = Client()
    client.force_login(admin_user)
    playbook = Playbook.objects.current().get(number=5)
    assert client.get("/admin/incidents/playbook/add/").status_code == 403
    assert (
        client.get(f"/admin/incidents/playbook/{playbook.pk}/delete/").status_code
        == 403
    )
    assert (
        client.post(
            f"/admin/incidents/playbook/{playbook.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Playbook.objects.filter(pk=playbook.pk).exists()


def test_commands_and_revisions_are_neither_added_nor_deleted_in_the_admin(
    admin_user, yomira
):
    """Even one nobody ran: deleting a command takes a step's Run away from every
    incident on the revision, and a revision is what those incidents followed."""
    client = Client()
    client.force_login(admin_user)
    command = Command.objects.filter(playbook__runbook__is_current=True).first()
    runbook = Runbook.objects.get(is_current=True)
    assert not command.executions.exists()
    for model, pk in (("command", command.pk), ("runbook", runbook.pk)):
        assert client.get(f"/admin/incidents/{model}/add/").status_code == 403
        url = f"/admin/incidents/{model}/{pk}/delete/"
        assert client.get(url).status_code == 403
        assert client.post(url, {"post": "yes"}).status_code == 403
        changelist = client.post(
            f"/admin/incidents/{model}/",
            {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
        )
        assert changelist.status_code in (200, 302)
    assert Command.objects.filter(pk=command.pk).exists()
    assert Runbook.objects.filter(pk=runbook.pk, is_current=True).exists()
    # Rebinding stays the admin's job here.
    assert (
        client.get(f"/admin/incidents/command/{command.pk}/change/").status_code == 200
    )
