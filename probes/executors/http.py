"""HTTP requests from the runbook (curl, `PUT /admin/...`), with httpx.

Only to hosts the runbook names (rewritten by TARGET_HOSTS) or a `${VAR}` base URL:
no user-typed URLs, and redirects are never followed (a redirect to another host
would make the console an open proxy); the Location is reported instead."""

from __future__ import annotations

import time
from urllib.parse import quote, urlsplit

import httpx

from .. import targets
from .base import Context, Result, cap, substitute


def request_parts(
    spec: dict, params: dict[str, str]
) -> tuple[str, str, dict, str | None]:
    """(method, URL, headers, body) exactly as they will be sent (secrets included:
    never show this; see preview for the masked form)."""
    url = substitute(spec["url"], params, quote=lambda v: quote(v, safe=""))
    url = targets.expand(url) if spec.get("base_variable") else targets.rewrite(url)
    headers = {k: targets.expand(v) for k, v in (spec.get("headers") or {}).items()}
    body = spec.get("body")
    if body is not None:
        body = targets.expand(substitute(body, params))
        if body.lstrip().startswith(("{", "[")):
            headers.setdefault("Content-Type", "application/json")
    if spec.get("basic_auth"):
        user, _, password = targets.expand(spec["basic_auth"]).partition(":")
        headers["Authorization"] = "Basic " + _basic(user, password)
    return spec["method"], url, headers, body


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    method, url, headers, body = request_parts(command.spec, params)
    if urlsplit(url).scheme not in {"http", "https"}:
        return Result(
            False, f"Refused: {urlsplit(url).scheme or 'no'} scheme in {url!r}."
        )
    timeout = httpx.Timeout(ctx.remaining(), connect=ctx.connect_timeout)
    started = time.monotonic()
    try:
        with httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:
            response = client.request(method, url, headers=headers, content=body)
            text = response.text
    except httpx.ConnectTimeout:
        return Result(
            False,
            f"{method} {url}: no connection within {ctx.connect_timeout:g} s.",
            timed_out=True,
        )
    except httpx.TimeoutException:
        return Result(
            False,
            f"{method} {url}: no answer within {ctx.remaining():.0f} s.",
            timed_out=True,
        )
    except httpx.ConnectError as exc:
        return Result(False, f"{method} {url}: cannot connect ({_reason(exc)}).")
    except httpx.HTTPError as exc:
        return Result(False, f"{method} {url}: {type(exc).__name__}: {exc}.")
    elapsed = (time.monotonic() - started) * 1000
    status = f"{response.status_code} {response.reason_phrase}"
    summary = f"{method} {url} → {status} in {elapsed:.0f} ms"
    if response.is_redirect:
        summary += (
            f" (redirect to {response.headers.get('location', '?')} not followed)"
        )
    head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    output = cap(
        f"HTTP {response.status_code} {response.reason_phrase}\n{head}\n\n{text}",
        ctx.output_cap,
    )
    return Result(
        ok=response.status_code < 400,
        summary=summary,
        output=output,
        data={"status": response.status_code, "elapsed_ms": round(elapsed, 1)},
    )


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text
