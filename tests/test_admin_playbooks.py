"""Issue 11 point 10 (part): in the admin, a playbook's imported fields are read
only (the runbook revision is their source) and playbooks cannot be added or
deleted there; grants stay editable through the object permissions."""

from __future__ import annotations

from django.test import Client

from incidents.models import Playbook


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
