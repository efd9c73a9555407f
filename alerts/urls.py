from django.urls import path

from . import views

app_name = "alerts"

hooks = [
    path("alertmanager/<slug:source>", views.alertmanager_hook, name="alertmanager"),
    path("grafana/<slug:source>", views.grafana_hook, name="grafana"),
]

pages = [
    path("", views.alert_list, name="alert_list"),
    path("groups/<int:pk>/pick", views.triage_pick, name="triage_pick"),
    path("groups/<int:pk>/dismiss", views.triage_dismiss, name="triage_dismiss"),
]
