from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

import alerts.urls
from api import urls as api_urls
from api.api import api as json_api
from incidents.forms import SignInForm
from incidents.views import home
from sso import views as sso_views

from . import health, metrics

accounts = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=SignInForm
        ),
        name="login",
    ),
    # Ends the identity provider's session too, for someone signed in through it.
    path("logout/", sso_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts)),
    path("sso/", include("sso.urls")),
    path("account/tokens/", include(api_urls.pages)),
    path("api/v1/", json_api.urls),
    path("health/ready", health.ready, name="health_ready"),
    path("health/live", health.live, name="health_live"),
    path("metrics", metrics.scrape, name="metrics"),
    path("hooks/", include((alerts.urls.hooks, "hooks"))),
    path("alerts/", include((alerts.urls.pages, "alerts"))),
    path("drills/", include("drills.urls")),
    path("", include("incidents.urls")),
]
