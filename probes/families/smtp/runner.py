"""SMTP connectivity: connect, EHLO, STARTTLS when offered, NOOP, QUIT. No mail is
sent. The host may be rewritten by TARGET_HOSTS (`smtp.example.com=smtp://127.0.0.1:2525`)."""

from __future__ import annotations

import smtplib
import ssl
import time
from urllib.parse import urlsplit

from ... import targets
from ...runtime import Context, Deadline, Result, shutdown


def address(spec: dict) -> tuple[str, int]:
    host, port = spec["host"], int(spec.get("port") or 25)
    mapped = targets.host_map().get(host.lower())
    if mapped:
        parts = urlsplit(mapped if "://" in mapped else f"smtp://{mapped}")
        host, port = parts.hostname or host, parts.port or port
    return host, port


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    host, port = address(command.spec)
    lines = []
    started = time.monotonic()
    deadline = Deadline(ctx)
    try:
        # No host here, so no connection yet: the deadline is armed before the
        # connection and its banner (a socket timeout is per read, and a server
        # can trickle its banner for ever).
        with deadline, smtplib.SMTP(timeout=ctx.connect_timeout) as smtp:
            deadline.on_expiry(lambda: shutdown(smtp.sock))
            smtp.connect(host, port)
            smtp.sock.settimeout(ctx.remaining())
            code, banner = smtp.ehlo()
            lines.append(
                f"EHLO → {code} {banner.decode(errors='replace').splitlines()[0]}"
            )
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                code, _ = smtp.ehlo()
                lines.append(f"STARTTLS → TLS established, EHLO {code}")
            else:
                lines.append("STARTTLS not offered")
            code, _ = smtp.noop()
            lines.append(f"NOOP → {code}")
    except TimeoutError:
        return Result(
            False,
            f"{host}:{port} did not answer in time.",
            "\n".join(lines),
            timed_out=True,
        )
    except (ConnectionRefusedError, OSError, smtplib.SMTPException) as exc:
        if deadline.expired:
            return Result(
                False,
                f"{host}:{port} did not finish within {ctx.timeout:g} s.",
                "\n".join(lines),
                timed_out=True,
            )
        return Result(False, f"{host}:{port}: {exc}", "\n".join(lines))
    elapsed = (time.monotonic() - started) * 1000
    return Result(True, f"{host}:{port} answers ({elapsed:.0f} ms)", "\n".join(lines))
