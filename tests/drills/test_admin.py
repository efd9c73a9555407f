"""Drills in the admin: readable by staff, never changed there."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from drills.models import Drill
from tests.conftest import signed_in


def test_staff_read_drills_but_cannot_change_them(db):
    admin = get_user_model().objects.create_superuser("root", "r@example.com", "pw")
    drill = Drill.objects.create(
        scenario="redis-stopped", title="Redis stopped", playbook_number=4
    )
    client = signed_in(admin)
    listing = client.get("/admin/drills/drill/")
    assert listing.status_code == 200 and b"Redis stopped" in listing.content
    assert client.get("/admin/drills/drill/add/").status_code == 403
    page = client.get(f"/admin/drills/drill/{drill.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert (
        client.post(
            f"/admin/drills/drill/{drill.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Drill.objects.filter(pk=drill.pk).exists()
