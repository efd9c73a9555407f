"""The executor families a command can be bound to. Each name has one module under
probes/executors/ (added as execution lands); the admin's choices come from here."""

EXECUTORS: dict[str, str] = {
    "http": "HTTP request (httpx)",
    "sql": "SQL statement (PostgreSQL)",
    "redis": "Redis command",
    "migrate": "golang-migrate schema_migrations",
    "disk": "Disk usage on the worker host",
    "s3": "S3 bucket check",
    "smtp": "SMTP connectivity",
}

EXECUTOR_CHOICES = [(name, label) for name, label in EXECUTORS.items()]
