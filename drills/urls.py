"""/drills/: the scenarios, a drill in progress, its scorecard."""

from django.urls import path

from . import views

app_name = "drills"
urlpatterns = [
    path("", views.scenario_list, name="scenario_list"),
    path("start/<slug:slug>", views.drill_start, name="drill_start"),
    path("<int:pk>/", views.drill_detail, name="drill_detail"),
    path("<int:pk>/check", views.drill_check, name="drill_check"),
    path("<int:pk>/abandon", views.drill_abandon, name="drill_abandon"),
    path("incident/<int:pk>", views.drill_of_incident, name="drill_of_incident"),
    path(
        "incident/<int:pk>/commands/<int:command_id>/simulate",
        views.command_simulate,
        name="command_simulate",
    ),
]
