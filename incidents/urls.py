from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("playbooks/", views.playbook_list, name="playbook_list"),
    path("playbooks/<slug:slug>/", views.playbook_detail, name="playbook_detail"),
]
