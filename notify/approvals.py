"""Approval requests, told to the people who may decide them: when a request is
filed (its audit event committed), one message per channel that carries approval
requests (Slack, email; never PagerDuty) among the playbook's escalation
channels and the channels an admin marked for every approval request. Sent by the
workers like every notification, and recorded on the incident's timeline."""

from __future__ import annotations

from functools import partial

from django.db import transaction

from incidents.models import AuditEvent, StepExecution

from . import services
from .channels import kind
from .models import Channel, Notification

Event = Notification.Event
REQUESTED = "execution.approval_requested"


def channels_for(execution: StepExecution) -> list[Channel]:
    """The playbook's escalation channels and those marked for every approval
    request, each once, that carry approval requests."""
    named, _ = services.channels_for(execution.incident.playbook.escalation)
    found = {channel.pk: channel for channel in named}
    for channel in Channel.objects.filter(all_approvals=True):
        found.setdefault(channel.pk, channel)
    return [c for c in found.values() if Event.APPROVAL in kind(c.kind).events]


def queue(execution: StepExecution) -> list[Notification]:
    """One queued row per channel for this request (a repeat makes none), handed
    to the workers once the transaction commits."""
    created = []
    with transaction.atomic():
        for channel in channels_for(execution):
            notification, new = Notification.objects.get_or_create(
                execution=execution,
                channel=channel,
                defaults={
                    "incident": execution.incident,
                    "event": Event.APPROVAL,
                    "note": f"asked by {execution.requester_name}"[:200],
                    "dedup_key": Notification.dedup_key_for(execution.incident_id),
                },
            )
            if new:
                created.append(notification)
                transaction.on_commit(partial(services.dispatch, notification.pk))
    return created


def on_audit_event(event: AuditEvent) -> bool:
    """Queue the notices of a request just filed; False for any other event."""
    if event.verb != REQUESTED or event.object_type != "stepexecution":
        return False
    execution = (
        StepExecution.objects.select_related("incident__playbook", "requested_by")
        .filter(pk=event.object_id)
        .first()
    )
    if execution is not None:
        queue(execution)
    return True
