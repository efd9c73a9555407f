from django.urls import path

from . import views
from .views.approvals import approval_decide
from .views.incidents import incident_runs
from .views.runbook_import import runbook_import, runbook_import_confirm

app_name = "incidents"

urlpatterns = [
    path("playbooks/", views.playbook_list, name="playbook_list"),
    path("playbooks/<slug:slug>/", views.playbook_detail, name="playbook_detail"),
    path("incidents/", views.incident_list, name="incident_list"),
    path("incidents/new/", views.incident_new, name="incident_new"),
    path("incidents/<int:pk>/", views.incident_detail, name="incident_detail"),
    path("incidents/<int:pk>/status", views.incident_status, name="incident_status"),
    path(
        "incidents/<int:pk>/commander",
        views.incident_commander,
        name="incident_commander",
    ),
    path(
        "incidents/<int:pk>/steps/<int:number>/tick", views.step_tick, name="step_tick"
    ),
    path("incidents/<int:pk>/notes", views.note_add, name="note_add"),
    path("incidents/<int:pk>/changes", views.incident_changes, name="incident_changes"),
    path("incidents/<int:pk>/runs/", incident_runs, name="incident_runs"),
    path(
        "incidents/<int:pk>/commands/<int:command_id>/run",
        views.command_run,
        name="command_run",
    ),
    path(
        "incidents/<int:pk>/executions/<int:execution_id>",
        views.execution_detail,
        name="execution_detail",
    ),
    path(
        "incidents/<int:pk>/commands/<int:command_id>/preview",
        views.command_preview,
        name="command_preview",
    ),
    path(
        "incidents/<int:pk>/executions/<int:execution_id>/decide",
        views.execution_decide,
        name="execution_decide",
    ),
    path("approvals/", views.approval_queue, name="approval_queue"),
    path(
        "approvals/<int:execution_id>/decide", approval_decide, name="approval_decide"
    ),
    path(
        "playbooks/<slug:slug>/access/", views.playbook_access, name="playbook_access"
    ),
    path(
        "playbooks/<slug:slug>/access/grants",
        views.playbook_grant,
        name="playbook_grant",
    ),
    path("targets/", views.target_status, name="target_status"),
    path("runbooks/import/", runbook_import, name="runbook_import"),
    path(
        "runbooks/import/confirm",
        runbook_import_confirm,
        name="runbook_import_confirm",
    ),
    path(
        "incidents/<int:pk>/postmortem.md",
        views.export_postmortem,
        name="export_postmortem",
    ),
    path(
        "incidents/<int:pk>/timeline.json",
        views.export_timeline_json,
        name="export_json",
    ),
    path(
        "incidents/<int:pk>/timeline.csv", views.export_timeline_csv, name="export_csv"
    ),
]
