from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator

from .access import COMMAND_INCIDENTS, people_who_can
from .models import Incident, Playbook, StepExecution


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
