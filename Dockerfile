# The console's image: web (gunicorn), worker and beat all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# psql and pg_isready for operators; everything else is pure Python.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml ./
COPY yomira_console ./yomira_console
COPY incidents ./incidents
COPY probes ./probes
RUN pip install -e .
COPY . .

# Static files are collected at build time and served by whitenoise.
# (DATABASE_URL is required by production settings; collectstatic never connects.)
RUN DEBUG=false SECRET_KEY=build-only AUDIT_HMAC_KEY=build-only \
    DATABASE_URL=postgres://build@localhost/build python manage.py collectstatic --no-input -v0

# var/offline and var/metrics exist in the image so that their named volumes start
# owned by yomira.
RUN useradd --system --uid 10001 --home /app yomira \
    && mkdir -p /app/var/offline /app/var/metrics && chown -R yomira /app/var
USER yomira

EXPOSE 8000
# gunicorn also reads ./gunicorn.conf.py: its hooks for /metrics' multiprocess mode.
# gthread workers: a Run click waiting for its result (up to RUN_WAIT_SECONDS, cut
# short by the run's NOTIFY: incidents/wakeup.py) holds one thread, not a process.
CMD ["gunicorn", "yomira_console.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--workers", "3", "--worker-class", "gthread", "--threads", "4", "--timeout", "30", \
     "--access-logfile", "-"]
