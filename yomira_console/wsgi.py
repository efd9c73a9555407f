import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yomira_console.settings")
application = get_wsgi_application()

# Each web process (gunicorn's workers, runserver) checks on start-up that the
# playbook pages kept for a database outage match the current runbooks.
from yomira_console.offline import refresh_in_background  # noqa: E402

refresh_in_background()
