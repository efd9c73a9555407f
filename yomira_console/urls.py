from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import health

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="incidents:playbook_list"), name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("health/ready", health.ready, name="health_ready"),
    path("", include("incidents.urls")),
]
