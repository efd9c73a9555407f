"""Who acts: a person (from a request, with its address) or a named system
identity, and what each may do through the services (deny by default)."""

# The safety matrix's world is imported by name, so tests name it as an argument:
# that is how pytest uses it, not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from incidents import services
from incidents.actors import Actor
from incidents.models import AuditEvent, Incident, Playbook, StepExecution
from probes.commands import confirm_word
from tests.test_safety_matrix import targets_and_no_broker, world  # noqa: F401 - fixtures

State = StepExecution.State


def test_a_person_from_a_request_is_its_user_and_its_client_address(make_user):
    rita = make_user("rita")
    request = RequestFactory().post("/incidents/", REMOTE_ADDR="192.0.2.44")
    request.user = rita
    actor = Actor.from_request(request)
    assert actor == Actor(name="rita", user=rita, ip="192.0.2.44")
    assert not actor.is_system
    assert Actor.person(rita) == Actor(name="rita", user=rita, ip="")


def test_someone_not_signed_in_is_nobody_with_an_address():
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.7")
    request.user = AnonymousUser()
    assert Actor.from_request(request) == Actor(ip="198.51.100.7")
    assert Actor.anonymous("mallory", "198.51.100.7") == Actor(
        name="mallory", ip="198.51.100.7"
    )


def test_a_system_actor_is_a_name_without_an_account():
    sweeper = Actor.system("sweeper")
    assert (sweeper.name, sweeper.user, sweeper.ip, sweeper.is_system) == (
        "sweeper",
        None,
        "",
        True,
    )
    assert sweeper.is_one_of({"sweeper", "console"})
    assert not sweeper.is_one_of({"alert-intake"})
    assert not Actor.person(None).is_one_of({""})  # a person is never an identity
    with pytest.raises(ValueError, match="needs a name"):
        Actor.system(" ")


def test_the_audit_log_records_the_actors_name_account_and_address(world):
    cole = world.people["commander"]
    request = RequestFactory().post("/incidents/new/", REMOTE_ADDR="192.0.2.45")
    request.user = cole
    incident = services.open_incident(
        playbook=world.incident.playbook,
        title="from the browser",
        actor=Actor.from_request(request),
    )
    event = AuditEvent.objects.get(verb="incident.opened", incident=incident)
    assert (event.actor_id, event.actor_name, event.ip) == (
        cole.pk,
        "cole",
        "192.0.2.45",
    )


def denials() -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(verb="permission.denied").values_list(
            "actor_name", "data__permission"
        )
    )


@pytest.mark.parametrize("command", ["ping", "policy"])
def test_a_system_actor_may_not_run_what_a_person_without_permission_may_not(
    world, command
):
    """No service lets a system identity run a command: like a person without the
    permission it is refused, the refusal audited, and nothing is queued."""
    target = getattr(world, command)  # a probe, an action
    asked = {
        "incident": world.incident,
        "command": target,
        "params": {},
        "confirmation": confirm_word(target),
    }
    for actor in (Actor.person(world.people["viewer"]), Actor.system("alert-intake")):
        with pytest.raises(PermissionDenied):
            services.request_run(actor=actor, **asked)
    permission = f"incidents.run_{target.kind}s"
    assert denials() == [("vera", permission), ("alert-intake", permission)]
    assert not StepExecution.objects.filter(command=target).exists()
    # The same request from a person who holds the permission goes through.
    run = services.request_run(actor=Actor.person(world.people["granted"]), **asked)
    assert run.created and run.execution.requested_by == world.people["granted"]


def test_a_system_actor_may_open_an_incident_only_where_the_service_names_it(world):
    playbook = Playbook.objects.current().get(number=4)
    opened = services.open_incident(
        playbook=playbook, title="RedisDown", actor=Actor.system("alert-intake")
    )
    assert (opened.opened_by, opened.commander) == (None, None)
    event = AuditEvent.objects.get(verb="incident.opened", incident=opened)
    assert (event.actor_id, event.actor_name, event.ip) == (None, "alert-intake", None)
    before = Incident.objects.count()
    for actor in (Actor.system("sweeper"), Actor.person(world.people["viewer"])):
        with pytest.raises(PermissionDenied):
            services.open_incident(playbook=playbook, title="no", actor=actor)
    assert Incident.objects.count() == before
    assert denials() == [
        ("sweeper", "incidents.add_incident"),
        ("vera", "incidents.add_incident"),
    ]


def test_a_request_key_belongs_to_the_actor_that_sent_it(world):
    """A system identity's one-time key finds its own incident, never a person's."""
    playbook = Playbook.objects.current().get(number=4)
    key = "alert-group-123"
    first = services.open_incident(
        playbook=playbook,
        title="RedisDown",
        actor=Actor.system("alert-intake"),
        request_key=key,
    )
    again = services.open_incident(
        playbook=playbook,
        title="RedisDown",
        actor=Actor.system("alert-intake"),
        request_key=key,
    )
    theirs = services.open_incident(
        playbook=playbook,
        title="RedisDown",
        actor=Actor.person(world.people["commander"]),
        request_key=key,
    )
    assert again == first and theirs != first


def test_only_the_sweeper_and_the_console_expire_approval_requests(world):
    waiting = services.request_run(
        incident=world.pool,
        command=world.terminate,
        params={"pid": "4242"},
        actor=Actor.person(world.people["granted"]),
        confirmation="terminate",
    ).execution
    assert waiting.state == State.AWAITING_APPROVAL
    for actor in (Actor.system("alert-intake"), Actor.person(world.people["admin"])):
        with pytest.raises(PermissionDenied):
            services.expire(execution=waiting, actor=actor)
    waiting.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL
    # Each refusal is on the incident's record, saying what was refused and why.
    refusals = AuditEvent.objects.filter(verb="permission.denied").order_by("seq")
    assert [(e.actor_name, e.incident_id, e.data) for e in refusals] == [
        (
            name,
            world.pool.pk,
            {
                "permission": "expire approval requests",
                "why": "only the sweeper and the console expire approval requests",
            },
        )
        for name in ("alert-intake", world.people["admin"].get_username())
    ]
    assert services.expire(execution=waiting, actor=Actor.system("sweeper"))
    waiting.refresh_from_db()
    assert waiting.state == State.CANCELLED
    event = AuditEvent.objects.get(verb="execution.expired")
    assert (event.actor_id, event.actor_name) == (None, "sweeper")


def test_a_system_actor_cannot_approve_or_tick_or_take_command(world):
    waiting = services.request_run(
        incident=world.pool,
        command=world.terminate,
        params={"pid": "4242"},
        actor=Actor.person(world.people["granted"]),
        confirmation="terminate",
    ).execution
    bot = Actor.system("alert-intake")
    with pytest.raises(services.RunRefused, match="may not approve"):
        services.decide_approval(execution=waiting, approve=True, actor=bot)
    step = world.pool.playbook.steps.first()
    with pytest.raises(PermissionDenied):
        services.tick_step(
            incident=world.pool, step=step, state="done", expected=None, actor=bot
        )
    with pytest.raises(PermissionDenied):
        services.add_note(incident=world.pool, text="hello", actor=bot)
    # The intake may move an incident's status (a flap reopens it; a playbook set
    # to resolve with its source resolves it), never its commander; no other
    # system identity may do either.
    with pytest.raises(PermissionDenied):
        services.change_commander(incident=world.pool, commander=None, actor=bot)
    with pytest.raises(PermissionDenied):
        services.change_status(
            incident=world.pool, to="resolved", actor=Actor.system("sweeper")
        )
    waiting.refresh_from_db()
    world.pool.refresh_from_db()
    assert waiting.state == State.AWAITING_APPROVAL
    assert world.pool.status == Incident.Status.OPEN
    assert not world.pool.executions.filter(state=State.DONE).exists()
