"""The executor families a command can be bound to (see probes/executors/). The
admin's choices come from here."""

from .executors import REGISTRY

EXECUTORS: dict[str, str] = {
    "http": "HTTP request (httpx)",
    "sql": "SQL statement (PostgreSQL)",
    "redis": "Redis command",
    "migrate": "golang-migrate schema_migrations",
    "disk": "Disk usage on the worker host",
    "s3": "S3 bucket check",
    "smtp": "SMTP connectivity",
}
assert set(EXECUTORS) == set(REGISTRY)

EXECUTOR_CHOICES = [(name, label) for name, label in EXECUTORS.items()]
