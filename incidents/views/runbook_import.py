"""Importing a runbook from the browser: upload, review what would change, confirm.

Between the review and the Confirm the upload travels in the page itself, signed
(django.core.signing) with the revision it was compared with: any web replica can
confirm it, nothing is kept on the server, and the import is exactly what was
reviewed. If another import made a new revision meanwhile, the person sees the
diff against it instead of an import."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from .. import access
from .. import runbook as rb
from ..access import permission_required
from ..actors import Actor
from ..forms import RunbookUploadForm
from ..services.runbook_diff import (
    RevisionMoved,
    RunbookDiff,
    diff_runbook,
    import_reviewed,
    reading_of,
)
from ..services.runbooks import RunbookSource, check_runbook

SALT = "incidents.runbook-upload"
REVIEW_MAX_AGE = 3600  # seconds a review may be confirmed for


@csrf_exempt  # checked in _upload, after the size check (the check reads the body)
@permission_required(access.IMPORT_RUNBOOKS)
def runbook_import(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: the upload, answered with what it would change."""
    if request.method == "GET":
        return _form(request, RunbookUploadForm())
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    limit = RunbookUploadForm.limits()["upload"]
    try:
        sent = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        sent = 0
    if sent > limit + 64 * 1024:  # room for the form's other fields
        return _form(
            request,
            RunbookUploadForm(),
            error=f"The upload is {filesizeformat(sent)}; at most "
            f"{filesizeformat(limit)} fit. Nothing was imported.",
            status=413,
        )
    try:
        return _upload(request)
    except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent) as exc:
        many = getattr(settings, "DATA_UPLOAD_MAX_NUMBER_FILES", 100)
        why = (
            f"At most {many} files can be chosen at once: put them in a zip."
            if isinstance(exc, TooManyFilesSent)
            else "The form sent too much data."
        )
        return _form(request, RunbookUploadForm(), error=why, status=400)


@csrf_protect
def _upload(request: HttpRequest) -> HttpResponse:
    form = RunbookUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _form(request, form, status=400)
    try:
        parsed = check_runbook(tree=form.source)
    except rb.RunbookError as exc:
        return _form(request, form, error=_refusal(exc, form.source), status=400)
    return _review(request, form.source, diff_runbook(parsed))


@permission_required(access.IMPORT_RUNBOOKS)
@require_POST
def runbook_import_confirm(request: HttpRequest) -> HttpResponse:
    """Import what was reviewed, if the runbook has not changed since."""
    try:
        payload = signing.loads(
            request.POST.get("review", ""), salt=SALT, max_age=REVIEW_MAX_AGE
        )
        if payload.get("user") != request.user.pk:
            raise signing.BadSignature("another person's review")
        source = _source_from(payload)
        reviewed = payload["reviewed"]
        reading = str(payload["reading"])
    except signing.SignatureExpired:
        return _form(
            request,
            RunbookUploadForm(),
            error="This review is more than an hour old: upload the runbook again.",
            status=400,
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError, AttributeError):
        return _form(
            request,
            RunbookUploadForm(),
            error="This review cannot be verified (it was changed, or made for "
            "someone else): upload the runbook again. Nothing was imported.",
            status=400,
        )
    try:
        result = import_reviewed(
            tree=source,
            actor=Actor.from_request(request),
            reviewed=tuple(reviewed) if reviewed else None,
            reading=reading,
        )
    except (RevisionMoved, IntegrityError):
        return _moved(request, source)
    except rb.RunbookError as exc:
        return _form(
            request, RunbookUploadForm(), error=_refusal(exc, source), status=400
        )
    runbook = result.runbook
    if result.created:
        messages.success(
            request,
            f"Imported '{runbook.title}' as revision {runbook.revision}. Open "
            "incidents keep the revision they started with.",
        )
    else:
        messages.info(
            request,
            f"Nothing changed: revision {runbook.revision} of '{runbook.title}' "
            "already has this content.",
        )
    return redirect("incidents:playbook_list")


def _moved(request: HttpRequest, source: RunbookSource) -> HttpResponse:
    """Another import won the race: the diff against the revision now current."""
    try:
        parsed = check_runbook(tree=source)
    except rb.RunbookError as exc:
        return _form(
            request, RunbookUploadForm(), error=_refusal(exc, source), status=400
        )
    diff = diff_runbook(parsed)
    return _review(
        request,
        source,
        diff,
        notice="The runbook, or how your upload is read, changed since you "
        "reviewed it"
        + (f": revision {diff.current.revision} is current now" if diff.current else "")
        + ". This is what your upload would change now; nothing was imported.",
        status=409,
    )


def _review(
    request: HttpRequest,
    source: RunbookSource,
    diff: RunbookDiff,
    *,
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    review = _sign(request, source, diff)
    limit = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None)
    if limit is not None and len(review) > limit - 4096:
        return _form(
            request,
            RunbookUploadForm(),
            error="This runbook is too large to review in the browser (its "
            f"review is {filesizeformat(len(review))}; a form may send "
            f"{filesizeformat(limit)}). Import it with manage.py import_runbook.",
            status=413,
        )
    context = {
        "diff": diff,
        "parsed": diff.parsed,
        "source": source,
        "review": review,
        "notice": notice,
    }
    return render(
        request, "incidents/runbook_import_review.html", context, status=status
    )


def _sign(request: HttpRequest, source: RunbookSource, diff: RunbookDiff) -> str:
    """The upload, its options and the revision it was compared with."""
    current = diff.current
    payload = {
        "user": request.user.pk,
        "name": source.name,
        "title": source.title,
        "allow_partial": source.allow_partial,
        # Exactly the bytes uploaded (the parse accepted them as UTF-8;
        # surrogateescape keeps any byte as it was regardless).
        "text": _text(source.text) if source.text is not None else None,
        "files": [[path, _text(data)] for path, data in source.files],
        "ignored": list(source.ignored),
        "reviewed": [current.pk, current.sha256] if current else None,
        "reading": reading_of(diff.parsed),
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def _text(data: bytes | str) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _source_from(payload: dict) -> RunbookSource:
    text = payload["text"]
    return RunbookSource(
        name=str(payload["name"]),
        text=_bytes(text) if text is not None else None,
        files=[(str(path), _bytes(data)) for path, data in payload["files"]],
        ignored=[str(path) for path in payload["ignored"]],
        title=str(payload["title"]),
        allow_partial=bool(payload["allow_partial"]),
    )


def _refusal(exc: rb.RunbookError, source: RunbookSource | None) -> str:
    """`PATH:LINE: message`, as the command line says it."""
    default = source.name if source is not None else ""
    return f"{exc.where(default)}: {exc.message} Nothing was imported."


def _form(
    request: HttpRequest,
    form: RunbookUploadForm,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {"form": form, "error": error, "limits": RunbookUploadForm.limits()}
    return render(request, "incidents/runbook_import.html", context, status=status)
