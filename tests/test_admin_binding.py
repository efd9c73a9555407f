"""An admin corrects a command's binding in the Django admin."""

from __future__ import annotations

from incidents.models import Command


def change_url(command: Command) -> str:
    return f"/admin/incidents/command/{command.pk}/change/"


def form_data(command: Command, **overrides) -> dict:
    data = {
        "kind": command.kind,
        "executor": command.executor,
        "parameters": '["pid"]',
        "spec": "{}",
    }
    data.update(overrides)
    return data


def test_an_admin_can_rebind_a_manual_command_as_an_action(admin_client, yomira):
    command = Command.objects.get(
        playbook__number=5, text="flyctl deploy", step__number=5
    )
    response = admin_client.post(
        change_url(command),
        form_data(command, kind="action", executor="http", parameters='["app"]'),
    )
    assert response.status_code == 302
    command.refresh_from_db()
    assert (command.kind, command.executor, command.parameters) == (
        "action",
        "http",
        ["app"],
    )


def test_a_probe_without_an_executor_is_refused_with_a_message(admin_client, yomira):
    command = Command.objects.get(
        playbook__number=5, text="flyctl deploy", step__number=5
    )
    response = admin_client.post(change_url(command), form_data(command, kind="probe"))
    assert response.status_code == 200
    assert "A probe or an action needs an executor" in response.content.decode()
    command.refresh_from_db()
    assert command.kind == "manual"


def test_parameters_must_be_a_list_of_names(admin_client, yomira):
    command = Command.objects.get(
        playbook__number=5, text="SELECT pg_cancel_backend(pid);"
    )
    response = admin_client.post(
        change_url(command), form_data(command, parameters='"pid"')
    )
    assert "Parameters are a JSON list of names" in response.content.decode()
    command.refresh_from_db()
    assert command.parameters == ["pid"]


def test_the_runbook_text_of_a_command_is_read_only(admin_client, yomira):
    command = Command.objects.get(
        playbook__number=5, text="SELECT pg_cancel_backend(pid);"
    )
    admin_client.post(
        change_url(command), {**form_data(command), "text": "DROP TABLE x;"}
    )
    command.refresh_from_db()
    assert command.text == "SELECT pg_cancel_backend(pid);"
