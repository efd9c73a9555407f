from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from pathlib import PurePosixPath

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator
from django.template.defaultfilters import filesizeformat

from .access import COMMAND_INCIDENTS, people_who_can
from .models import Incident, Playbook, StepExecution
from .runbook import RUNBOOK_TITLE_MAX, is_markdown
from .services.runbooks import RunbookSource


class RequestKeyField(forms.RegexField):
    """A creating form's one-time key (generated per page load): a double submit
    sends it twice and gets the first result. Optional, so scripts may leave it
    out; when sent it must look like one (bounded, plain characters), so what is
    stored is exactly what is looked up."""

    def __init__(self) -> None:
        super().__init__(
            regex=r"\A[A-Za-z0-9_-]{8,64}\Z",
            required=False,
            max_length=64,
            error_messages={
                "invalid": "This form's request key is malformed: reload the page.",
                "max_length": "This form's request key is too long: reload the page.",
                "null_characters_not_allowed": "This form's request key is "
                "malformed: reload the page.",
            },
        )


class OpenIncidentForm(forms.Form):
    playbook = forms.SlugField(
        help_text="The playbook to follow (its slug, as in /playbooks/<slug>/)."
    )
    title = forms.CharField(
        max_length=200, help_text="What is happening, in a few words."
    )
    request_key = RequestKeyField()

    def clean_playbook(self) -> Playbook:
        slug = self.cleaned_data["playbook"]
        playbook = (
            Playbook.objects.current()
            .select_related("runbook")
            .filter(slug=slug)
            .first()
        )
        if playbook is None:
            raise forms.ValidationError(f"There is no current playbook '{slug}'.")
        return playbook

    def clean_title(self) -> str:
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError("Give the incident a title.")
        return title


class IncidentFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("active", "Active"), *Incident.Status.choices],
    )
    severity = forms.CharField(required=False, max_length=30)
    playbook = forms.SlugField(required=False)
    drill = forms.ChoiceField(
        required=False,
        choices=[("", "Drills and real"), ("yes", "Drills only"), ("no", "Real only")],
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Incident.Status.choices)


class CommanderForm(forms.Form):
    # Only people who may command: the status buttons are theirs.
    commander = forms.ModelChoiceField(
        queryset=people_who_can(COMMAND_INCIDENTS), required=False
    )


class TickForm(forms.Form):
    state = forms.ChoiceField(
        choices=[
            (state.value, state.label)
            for state in StepExecution.State
            if state in StepExecution.TICKS
        ]
    )
    reason = forms.CharField(required=False, max_length=1000)
    expected = forms.IntegerField(required=False, min_value=0)

    def clean(self) -> dict:
        data = super().clean()
        skipped = data.get("state") == StepExecution.State.SKIPPED
        if skipped and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the step is skipped.")
        return data


class NoteForm(forms.Form):
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    step = forms.IntegerField(required=False, min_value=1)
    request_key = RequestKeyField()


class SignInForm(AuthenticationForm):
    """Django's sign-in form with its username length enforced before anyone looks
    the name up: AuthenticationForm sets max_length after the field is built (no
    validator), so a 100,000-character name reached django-axes' 255-character
    column and failed the request."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length or 150))


class RunbookUploadForm(forms.Form):
    """A runbook from the browser: one Markdown file, several, or a zip of them,
    read into the same RunbookSource manage.py import_runbook builds from a file
    or a directory. The files come in `files` (an `<input type=file multiple>`);
    `source` is set once the form is valid. Limits are settings, read per request:
    RUNBOOK_UPLOAD_MAX_BYTES (what is sent), RUNBOOK_UPLOAD_MAX_FILES and
    RUNBOOK_UPLOAD_MAX_MARKDOWN_BYTES (what a zip holds, declared and read)."""

    title = forms.CharField(
        required=False,
        max_length=RUNBOOK_TITLE_MAX,
        help_text="For several files or a zip: the runbook's title (default: the "
        "zip's name). A single file's title is its own heading.",
    )
    allow_partial = forms.BooleanField(
        required=False,
        help_text="Import what can be read and list the rest as not understood, "
        "instead of refusing the whole upload.",
    )

    source: RunbookSource | None = None

    @staticmethod
    def limits() -> dict[str, int]:
        return {
            "upload": getattr(settings, "RUNBOOK_UPLOAD_MAX_BYTES", 10 * 2**20),
            "files": getattr(settings, "RUNBOOK_UPLOAD_MAX_FILES", 5000),
            "markdown": getattr(
                settings, "RUNBOOK_UPLOAD_MAX_MARKDOWN_BYTES", 20 * 2**20
            ),
        }

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        uploads = self.files.getlist("files") if self.files else []
        uploads = [f for f in uploads if f.name]
        limits = self.limits()
        if not uploads:
            raise forms.ValidationError(
                "Choose a runbook: a .md or .markdown file, several of them, or a "
                ".zip of them."
            )
        sent = sum(f.size for f in uploads)
        if sent > limits["upload"]:
            raise forms.ValidationError(
                f"The upload is {filesizeformat(sent)}; at most "
                f"{filesizeformat(limits['upload'])} fit. Import a larger runbook "
                "with manage.py import_runbook."
            )
        title = data.get("title", "").strip()
        partial = bool(data.get("allow_partial"))
        zips = [f for f in uploads if f.name.lower().endswith(".zip")]
        if zips and len(uploads) > 1:
            raise forms.ValidationError(
                "Upload a zip on its own, or Markdown files without a zip."
            )
        if zips:
            upload = zips[0]
            folder, files, ignored = self._read_zip(upload.read(), limits)
            name = title or folder or PurePosixPath(upload.name).stem or "Runbooks"
            self.source = RunbookSource(
                name=name,
                files=files,
                ignored=ignored,
                title=name,
                allow_partial=partial,
            )
            return data
        if len(uploads) == 1 and is_markdown(uploads[0].name):
            upload = uploads[0]
            self.source = RunbookSource(
                name=upload.name, text=upload.read(), allow_partial=partial
            )
            return data
        files: dict[str, bytes] = {}
        ignored = []
        for upload in uploads:
            if upload.name in files or upload.name in ignored:
                raise forms.ValidationError(
                    f"Two files are named {upload.name}: rename one, or upload "
                    "them in a zip with their folders."
                )
            if is_markdown(upload.name):
                files[upload.name] = upload.read()
            else:
                ignored.append(upload.name)
        if not files:
            raise forms.ValidationError(
                "None of these is a runbook file: choose .md or .markdown files, "
                "or a .zip of them."
            )
        name = title or "Runbooks"
        self.source = RunbookSource(
            name=name,
            files=sorted(files.items()),
            ignored=sorted(ignored),
            title=name,
            allow_partial=partial,
        )
        return data

    @staticmethod
    def _read_zip(
        data: bytes, limits: dict[str, int]
    ) -> tuple[str, list[tuple[str, bytes]], list[str]]:
        """The Markdown files of a zip (relative POSIX paths), the other files, and
        the one folder everything is in, if any (dropped from the paths, so the
        zip of a folder reads as `manage.py import_runbook FOLDER` does). Refuses
        absolute paths and `..`; skips folders, hidden files (`.git/`,
        `__MACOSX/`) and links; bounds the count and the size both as declared and
        as actually read."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            entries = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise forms.ValidationError(
                "This .zip cannot be read as a zip file (damaged, or not a zip)."
            ) from None
        if len(entries) > limits["files"]:
            raise forms.ValidationError(
                f"The zip holds {len(entries)} entries; at most {limits['files']} "
                "are read."
            )
        chosen: list[tuple[str, zipfile.ZipInfo]] = []
        ignored: list[str] = []
        seen: set[str] = set()
        for entry in entries:
            raw = entry.filename.replace("\\", "/")
            parts = PurePosixPath(raw).parts
            if (
                raw.startswith("/")
                or re.match(r"^[A-Za-z]:", raw)
                or ".." in parts
                or "\x00" in raw
            ):
                raise forms.ValidationError(
                    f"The zip holds an unsafe path ({raw[:200]!r}): absolute paths "
                    "and '..' are refused. Nothing was read."
                )
            if entry.is_dir() or not parts:
                continue
            if any(p.startswith(".") or p == "__MACOSX" for p in parts):
                continue
            path = "/".join(p for p in parts if p != ".")
            if path in seen:
                raise forms.ValidationError(f"The zip holds {path} twice.")
            seen.add(path)
            link = stat.S_ISLNK(entry.external_attr >> 16)
            if link or not is_markdown(path):
                ignored.append(path)
            else:
                chosen.append((path, entry))
        declared = sum(entry.file_size for _, entry in chosen)
        if declared > limits["markdown"]:
            raise forms.ValidationError(
                f"The zip's Markdown files unpack to {filesizeformat(declared)}; at most "
                f"{filesizeformat(limits['markdown'])} are read."
            )
        files: list[tuple[str, bytes]] = []
        left = limits["markdown"]
        for path, entry in chosen:
            try:
                with archive.open(entry) as member:
                    content = member.read(left + 1)
            except (
                zipfile.BadZipFile,
                RuntimeError,
                NotImplementedError,
                OSError,
                EOFError,
                ValueError,
                zlib.error,
            ) as exc:
                raise forms.ValidationError(
                    f"{path} in the zip cannot be read ({exc})."
                ) from None
            left -= len(content)
            if left < 0:
                # The declared sizes lied: stop reading at the limit.
                raise forms.ValidationError(
                    "The zip's Markdown files unpack to more than "
                    f"{filesizeformat(limits['markdown'])}; nothing was imported."
                )
            files.append((path, content))
        folders = {path.split("/", 1)[0] for path in [*seen]}
        folder = ""
        if len(folders) == 1 and all("/" in path for path in seen):
            folder = folders.pop()
            prefix = len(folder) + 1
            files = [(path[prefix:], content) for path, content in files]
            ignored = [path[prefix:] for path in ignored]
        if not files:
            raise forms.ValidationError(
                "The zip holds no .md or .markdown file"
                + (f" ({len(ignored)} other files)." if ignored else ".")
            )
        return folder, sorted(files), sorted(ignored)
