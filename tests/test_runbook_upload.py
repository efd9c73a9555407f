"""Importing a runbook from the browser (/runbooks/import/): upload one file,
several or a zip; review what would change; import only on Confirm, exactly what
was reviewed, with the diff in the audit event."""

from __future__ import annotations

import io
import re
import zipfile
from html import unescape

import pytest
from django.contrib.auth.models import Group
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from guardian.shortcuts import assign_perm

from incidents.models import AuditEvent, Playbook, Runbook
from incidents.services import import_runbook
from incidents.views import runbook_import as view
from tests.conftest import IMPORTER, TEST_RUNBOOKS, YOMIRA_RUNBOOK, signed_in
from tests.test_runbook_diff import SECURITY, changed_yomira

pytestmark = pytest.mark.django_db

UPLOAD = "/runbooks/import/"
CONFIRM = "/runbooks/import/confirm"


@pytest.fixture
def admin(make_user):
    return make_user("ada", "Admin")


@pytest.fixture
def admin_client(admin) -> Client:
    return signed_in(admin)


def md(name: str, content: str | bytes) -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/markdown")


def zipped(entries: dict[str, bytes | str], name: str = "runbooks.zip"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries.items():
            archive.writestr(path, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def review_of(response) -> str:  # noqa: ANN001
    found = re.search(r'name="review" value="([^"]+)"', response.content.decode())
    assert found, "no Confirm form on the page"
    return unescape(found.group(1))


def text_of(response) -> str:  # noqa: ANN001
    """The page's words, tags removed and entities read, whitespace collapsed."""
    html = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(unescape(html).split())


def revisions() -> list[int]:
    return list(Runbook.objects.order_by("revision").values_list("revision", flat=True))


# --- who may -------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in (UPLOAD, CONFIRM):
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302
            assert response["Location"].startswith(f"/accounts/login/?next={url}")


@pytest.mark.parametrize("role", ["Viewer", "Responder", "Commander", None])
def test_only_people_who_may_import_runbooks_get_in(yomira, make_user, role):
    person = make_user("pat", role)
    client = signed_in(person)
    upload = {"files": md("yomira.md", changed_yomira())}
    assert client.get(UPLOAD).status_code == 403
    assert client.post(UPLOAD, upload).status_code == 403
    assert client.post(CONFIRM, {"review": "x"}).status_code == 403
    denials = AuditEvent.objects.filter(verb="permission.denied", actor_id=person.pk)
    assert [d.data["permission"] for d in denials] == ["incidents.add_runbook"] * 3
    assert revisions() == [1]
    assert "Import runbook" not in client.get("/playbooks/").content.decode()


def test_an_admin_sees_the_form_and_the_library_links_to_it(yomira, admin_client):
    page = admin_client.get(UPLOAD).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert re.search(r'<input type="file"[^>]* name="files" multiple', page)
    assert 'accept=".md,.markdown,.zip' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'name="allow_partial"' in page and 'name="title"' in page
    library = admin_client.get("/playbooks/").content.decode()
    assert 'href="/runbooks/import/">Import runbook</a>' in library


def test_the_upload_checks_the_csrf_token(yomira, admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    assert response.status_code == 403
    assert revisions() == [1]


# --- one file, several, a zip ------------------------------------------------------


def test_one_changed_file_is_reviewed_then_imported_on_confirm(
    yomira, admin_client, admin, incident
):
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    assert response.status_code == 200
    page = text_of(response)
    assert "Against the current revision 1 , the import makes revision 2 ." in page
    assert "1 added 1 removed 2 changed 9 unchanged" in page
    assert "§12 Cache Stampede cache-stampede" in page
    assert "Step 3 changed: Restart Redis → Restart Redis, last resort" in page
    assert "Step 6 added: Write down" in page
    assert "Step 5 removed: Tune pool size" in page
    assert "Severity: critical → warning" in page
    assert (
        'Command in step 2 redis-cli -u "${REDIS_URL}" info memory | grep '
        "used_memory_human : probe redis → manual"
    ) in page
    assert "1 open incident follows revision 1. It keeps that revision" in page
    assert f"#{incident.pk} Redis is refusing connections" in page
    assert revisions() == [1]  # nothing yet

    response = admin_client.post(CONFIRM, {"review": review_of(response)})
    assert response.status_code == 302 and response["Location"] == "/playbooks/"
    library = text_of(admin_client.get("/playbooks/"))
    assert "Imported 'Runbook — Yomira Incident Playbooks' as revision 2." in library
    assert revisions() == [1, 2]
    current = Runbook.objects.get(is_current=True)
    assert current.imported_by == admin and current.source == changed_yomira()
    incident.refresh_from_db()
    assert incident.playbook.runbook_id == yomira.pk  # the incident keeps its revision


def test_the_audit_event_holds_the_diff_summary(yomira, admin_client, admin):
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    admin_client.post(CONFIRM, {"review": review_of(response)})
    event = AuditEvent.objects.filter(verb="runbook.imported").latest("seq")
    assert (event.actor_id, event.data["revision"], event.data["via"]) == (
        admin.pk,
        2,
        "upload",
    )
    diff = event.data["diff"]
    assert diff["from_revision"] == 1 and diff["to_sha256"] == event.data["sha256"]
    assert diff["playbooks"]["added"] == {"count": 1, "names": ["cache-stampede"]}
    assert diff["playbooks"]["removed"] == {"count": 1, "names": [SECURITY]}
    assert diff["steps"] == {"added": 1, "removed": 1, "changed": 2}
    assert diff["commands_rebound"]["count"] == 1


def test_grants_carried_and_lost_are_listed(yomira, admin_client, make_user):
    gina = make_user("gina", "Commander")
    security = Group.objects.create(name="Security")
    assign_perm("incidents.run_actions", gina, Playbook.objects.current().get(number=5))
    assign_perm(
        "incidents.approve_actions",
        security,
        Playbook.objects.current().get(slug=SECURITY),
    )
    page = text_of(
        admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    )
    assert "1 grant stays with the old revision: its playbook is removed." in page
    assert f"Group Security : approve_actions on {SECURITY} — not carried over" in page
    assert "Carried over to revision 2 (1):" in page
    assert "Person gina : run_actions on db-connection-pool-exhausted" in page


def test_several_files_make_one_runbook_with_the_title_given(admin_client):
    response = admin_client.post(
        UPLOAD,
        {
            "files": [
                md("postgres.md", (TEST_RUNBOOKS / "postgres.md").read_bytes()),
                md("kafka.md", (TEST_RUNBOOKS / "kafka.md").read_bytes()),
                SimpleUploadedFile("notes.txt", b"not a runbook"),
            ],
            "title": "Data stores",
        },
    )
    assert response.status_code == 200
    page = text_of(response)
    assert "New runbook." in page and "the import makes revision 1" in page
    assert "notes.txt: not read: only .md and .markdown files are runbooks" in page
    admin_client.post(CONFIRM, {"review": review_of(response)})
    runbook = Runbook.objects.get(is_current=True)
    assert (runbook.key, runbook.title, runbook.revision) == (
        "data-stores",
        "Data stores",
        1,
    )
    assert {p.path for p in runbook.playbooks.all()} == {"kafka.md", "postgres.md"}


def test_a_zip_of_a_folder_reads_as_that_folder(admin_client):
    upload = zipped(
        {
            "team/databases/postgres.md": (TEST_RUNBOOKS / "postgres.md").read_bytes(),
            "team/kafka.md": (TEST_RUNBOOKS / "kafka.md").read_bytes(),
            "team/diagram.png": b"\x89PNG",
            "team/.git/config": b"[core]",
            "__MACOSX/team/._kafka.md": b"\x00\x05",
        }
    )
    response = admin_client.post(UPLOAD, {"files": upload})
    assert response.status_code == 200, text_of(response)
    page = text_of(response)
    assert "New runbook." in page
    assert "diagram.png: not read" in page and ".git" not in page
    admin_client.post(CONFIRM, {"review": review_of(response)})
    runbook = Runbook.objects.get(is_current=True)
    assert (runbook.key, runbook.source_name) == ("team", "team")
    assert {p.path for p in runbook.playbooks.all()} == {
        "databases/postgres.md",
        "kafka.md",
    }
    # The same paths and content as `manage.py import_runbook team/` would read.
    assert [f["path"] for f in runbook.files] == ["databases/postgres.md", "kafka.md"]


@pytest.mark.parametrize(
    "path", ["../evil.md", "docs/../../evil.md", "/etc/evil.md", "C:/evil.md"]
)
def test_a_zip_with_an_unsafe_path_is_refused_whole(admin_client, path):
    upload = zipped({"good.md": YOMIRA_RUNBOOK.read_bytes(), path: b"# Evil"})
    response = admin_client.post(UPLOAD, {"files": upload})
    assert response.status_code == 400
    assert "The zip holds an unsafe path" in text_of(response)
    assert "absolute paths and '..' are refused" in text_of(response)
    assert 'name="review"' not in response.content.decode()
    assert revisions() == []


# --- limits and mistakes -----------------------------------------------------------


def test_an_upload_over_the_limit_is_refused_before_it_is_read(admin_client, settings):
    settings.RUNBOOK_UPLOAD_MAX_BYTES = 4096
    big = changed_yomira() + "\n" + "x" * 100_000
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", big)})
    assert response.status_code == 413
    assert re.search(
        r"The upload is 11\d\.\d KB; at most 4\.0 KB fit\. Nothing was imported\.",
        text_of(response),
    )
    assert revisions() == []


def test_files_over_the_limit_are_refused_by_their_size(admin_client, settings):
    # Within the request's allowance (64 KB for the other fields), over the files'.
    settings.RUNBOOK_UPLOAD_MAX_BYTES = 10_000
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    assert response.status_code == 400
    assert "The upload is 13.1 KB; at most 9.8 KB fit." in text_of(response)
    assert revisions() == []


def test_a_zip_unpacking_past_the_limit_is_refused(admin_client, settings):
    settings.RUNBOOK_UPLOAD_MAX_MARKDOWN_BYTES = 100_000
    upload = zipped({"a.md": "# A\n" + "x" * 150_000})  # compresses to ~200 bytes
    response = admin_client.post(UPLOAD, {"files": upload})
    assert response.status_code == 400
    assert (
        "The zip's Markdown files unpack to 146.5 KB; at most 97.7 KB are read."
    ) in text_of(response)
    assert revisions() == []


def test_a_zip_whose_declared_sizes_lie_is_refused(admin_client, settings):
    settings.RUNBOOK_UPLOAD_MAX_MARKDOWN_BYTES = 100_000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.md", YOMIRA_RUNBOOK.read_text() + "x" * 150_000)
        archive.filelist[0].file_size = 10  # what the central directory says
    upload = SimpleUploadedFile("lies.zip", buffer.getvalue())
    response = admin_client.post(UPLOAD, {"files": upload})
    assert response.status_code == 400
    assert "a.md in the zip cannot be read" in text_of(response)
    assert revisions() == []


def test_a_zip_with_too_many_files_is_refused(admin_client, settings):
    settings.RUNBOOK_UPLOAD_MAX_FILES = 3
    upload = zipped({f"{n}.md": b"# x" for n in range(4)})
    response = admin_client.post(UPLOAD, {"files": upload})
    assert response.status_code == 400
    assert "The zip holds 4 entries; at most 3 are read." in text_of(response)


def test_too_many_files_at_once_are_refused_with_a_way_out(admin_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [md(f"{n}.md", "# x") for n in range(3)]
    response = admin_client.post(UPLOAD, {"files": files})
    assert response.status_code == 400
    assert "At most 2 files can be chosen at once: put them in a zip." in text_of(
        response
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "Choose a runbook: a .md or .markdown file"),
        (
            [SimpleUploadedFile("x.zip", b"not a zip at all")],
            "This .zip cannot be read as a zip file",
        ),
        ([SimpleUploadedFile("notes.txt", b"hello")], "None of these is a runbook"),
        (
            [zipped({"a.md": b"# A"}), md("b.md", "# B")],
            "Upload a zip on its own",
        ),
        ([zipped({"readme.txt": b"hi"})], "The zip holds no .md or .markdown file"),
    ],
)
def test_mistakes_are_said_in_the_form(admin_client, files, message):
    response = admin_client.post(UPLOAD, {"files": files})
    assert response.status_code == 400
    assert message in text_of(response)
    assert revisions() == []


def test_a_malformed_runbook_names_its_path_and_line_and_imports_nothing(
    admin_client,
):
    response = admin_client.post(
        UPLOAD, {"files": md("notes.md", b"# Notes\n\n\xff broken\n")}
    )
    assert response.status_code == 400
    assert (
        "notes.md:3: this is not UTF-8 Markdown text (byte 0xff cannot be read) "
        "Nothing was imported."
    ) in text_of(response)
    upload = zipped(
        {"ops/a.md": YOMIRA_RUNBOOK.read_bytes(), "ops/deep/b.md": b"# B\n\n\xfe\n"}
    )
    response = admin_client.post(UPLOAD, {"files": upload})
    assert response.status_code == 400
    assert "deep/b.md:3: this is not UTF-8" in text_of(response)
    assert revisions() == []


def test_hostile_runbook_text_is_shown_escaped(admin_client):
    hostile = (
        "# Runbook <img src=x onerror=alert(1)>\n\n## 1. Pwn <script>alert(1)</script>"
        "\n\n**Alert:** `X`\n\n### Steps\n\n1. **<b>bold</b>** do it\n"
    )
    response = admin_client.post(UPLOAD, {"files": md("h.md", hostile)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_same_content_offers_nothing_to_confirm(yomira, admin_client):
    response = admin_client.post(
        UPLOAD, {"files": md("yomira.md", YOMIRA_RUNBOOK.read_bytes())}
    )
    assert response.status_code == 200
    assert "Nothing would change: revision 1" in text_of(response)
    assert 'name="review"' not in response.content.decode()


# --- the confirm ---------------------------------------------------------------------


def test_a_tampered_review_is_refused(yomira, admin_client):
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    review = review_of(response)
    payload = signing.loads(review, salt=view.SALT)
    payload["text"] = YOMIRA_RUNBOOK.read_text() + "\n## 13. Evil\n"
    forged = signing.dumps(payload, salt="some-other-salt", compress=True)
    flipped = review[:-3] + ("A" if review[-3] != "A" else "B") + review[-2:]
    for bad in (forged, flipped, "", "garbage"):
        response = admin_client.post(CONFIRM, {"review": bad})
        assert response.status_code == 400
        assert "This review cannot be verified" in text_of(response)
    assert revisions() == [1]


def test_another_persons_review_is_refused(yomira, admin_client, make_user):
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    other = signed_in(make_user("otto", "Admin"))
    response = other.post(CONFIRM, {"review": review_of(response)})
    assert response.status_code == 400
    assert revisions() == [1]


def test_an_old_review_is_refused(yomira, admin_client, monkeypatch):
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    monkeypatch.setattr(view, "REVIEW_MAX_AGE", -1)
    response = admin_client.post(CONFIRM, {"review": review_of(response)})
    assert response.status_code == 400
    assert "more than an hour old" in text_of(response)
    assert revisions() == [1]


def test_a_confirm_after_the_revision_changed_shows_the_new_diff(yomira, admin_client):
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    stale = review_of(response)
    # Meanwhile someone imports another edit: §4 step 3 renamed already.
    meanwhile = YOMIRA_RUNBOOK.read_text().replace(
        "3. **Restart Redis** (data", "3. **Restart Redis, last resort** (data"
    )
    import_runbook(source=meanwhile, source_name="yomira.md", actor=IMPORTER)
    assert revisions() == [1, 2]

    response = admin_client.post(CONFIRM, {"review": stale})
    assert response.status_code == 409
    page = text_of(response)
    assert (
        "The runbook, or how your upload is read, changed since you reviewed it: "
        "revision 2 is current now. This is what your upload would change now; "
        "nothing was imported."
    ) in page
    assert "Against the current revision 2 , the import makes revision 3 ." in page
    assert "Step 3 changed" not in page  # already in revision 2
    assert revisions() == [1, 2]

    response = admin_client.post(CONFIRM, {"review": review_of(response)})
    assert response.status_code == 302
    assert revisions() == [1, 2, 3]
    assert Runbook.objects.get(is_current=True).source == changed_yomira()


def test_get_on_confirm_is_not_allowed(admin_client):
    assert admin_client.get(CONFIRM).status_code == 405


def test_a_confirm_after_the_reading_changed_shows_the_new_diff(yomira, admin_client):
    """Same bytes, same revision, but a new severity alias reads §5 differently:
    the import would not be what was reviewed."""
    from incidents.models import SeverityAlias

    changed = changed_yomira().replace(
        "**Severity:** Warning → Slack", "**Severity:** Sev-Pool → Slack"
    )
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed)})
    assert "Severity: critical → none" in text_of(response)
    stale = review_of(response)
    SeverityAlias.objects.create(alias="sev-pool", level="high")

    response = admin_client.post(CONFIRM, {"review": stale})
    assert response.status_code == 409
    assert "Severity: critical → high" in text_of(response)
    assert revisions() == [1]
    admin_client.post(CONFIRM, {"review": review_of(response)})
    assert revisions() == [1, 2]
    assert Playbook.objects.current().get(number=5).severity == "high"


def test_a_review_too_large_for_a_form_is_refused_with_the_way_out(
    admin_client, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 6000
    response = admin_client.post(UPLOAD, {"files": md("yomira.md", changed_yomira())})
    assert response.status_code == 413
    assert "too large to review in the browser" in text_of(response)
    assert "Import it with manage.py import_runbook." in text_of(response)
