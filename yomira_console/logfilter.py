"""A logging filter that redacts every record before a handler writes it.

Libraries log what they are given: httpx logs each request's full URL (with any
password in it) at INFO, psycopg and redis put connection strings in exception
messages. Settings put this filter on every handler of the console's own
LOGGING, so secrets never reach its log stream."""

from __future__ import annotations

import logging

from probes import redaction


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and any traceback, in place
    (later handlers and formatters see the redacted record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is still logged
            message = str(record.msg)
        record.msg, record.args = redaction.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redaction.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redaction.redact(record.stack_info)
        return True


def redact_handlers(logger: logging.Logger, **_: object) -> None:
    """Put the filter on every handler of `logger`. For Celery's
    `after_setup_logger`: the worker replaces the root handlers that settings
    configured with its own, and the worker is where executors log their errors."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
