"""/drills/: the scenarios, a drill in progress, its scorecard."""

from django.urls import URLPattern

app_name = "drills"
urlpatterns: list[URLPattern] = []
