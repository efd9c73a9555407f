"""The API object: /api/v1/, its token auth, its one error shape, its docs."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger

from . import errors
from .auth import PersonalToken
from .endpoints import router

api = NinjaAPI(
    title="Yomira incident console",
    version="1",
    description=(
        "Everything a script or chat bot needs during an incident, with the "
        "rights of the person whose token it sends (`Authorization: Bearer "
        "yom_…`, made at /account/tokens/). Errors all have one shape: "
        '`{"error": {"status", "code", "message", "fields"}}`.'
    ),
    urls_namespace="api",
    auth=PersonalToken(),
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
    # The docs page and schema are for people signed in to the console.
    docs_decorator=login_required,
)
errors.install(api)
api.add_router("/", router)
