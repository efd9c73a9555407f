"""HTTP requests from the runbook (curl, `PUT /admin/...`), with httpx.

Only to hosts the runbook names (rewritten by TARGET_HOSTS) or a `${VAR}` base URL:
no user-typed URLs, and redirects are never followed (a redirect to another host
would make the console an open proxy); the Location is reported instead.

Plain `http://` (issue 13): a request that carries credentials (an Authorization,
Cookie or API-key header, `-u user:password`, or any `${NAME}` target value in its
URL, headers or body) is sent over plain http only to a loopback or private
address, or to a URL the operator configured (a `${NAME}` base URL, or a host
TARGET_HOSTS rewrites). A runbook's own `http://public.host` with a token is
refused before anything is sent: the token would cross the network in clear text.
Without credentials a plain-http request is sent as written (nothing secret
travels).

The runbook's text is a template in which `${NAME}` is a target value and `{name}`
or `/:name` a responder's parameter. Both are filled in one pass, so nothing put in
is read again: a parameter value is data, never expanded, and is encoded for where
it goes (percent-encoded in the URL, JSON-escaped in a JSON body, form-encoded in a
form body). What a person sees is the same template with `${NAME}` left as the name
and the runbook's own host (`shown_parts`)."""

from __future__ import annotations

import base64
import bisect
import ipaddress
import json
import re
import time
from collections.abc import Callable
from urllib.parse import quote, quote_plus, urlsplit

import httpx

from ... import targets
from ...runtime import Context, Deadline, Result, clip, shutdown
from ...tables import http_head

PLACE = re.compile(
    r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)\}"
    r"|(?<![$\w{])\{(?P<brace>[A-Za-z_][\w.-]*)\}(?!\})"
    r"|(?<=/):(?P<path>[A-Za-z_]\w*)"
)
JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
# Read this much past the cap, so that a secret cut by the end of what was read
# lies wholly past the cap once redacted, and is dropped rather than half-masked.
READ_SLACK = 8 * 1024


def _string_spans(text: str) -> list[int]:
    """Start and end offsets of the JSON string literals in `text`, flattened:
    an offset is inside a string when bisect puts it at an odd index."""
    spans, inside, escaped = [], False, False
    for i, ch in enumerate(text):
        if inside and escaped:
            escaped = False
        elif inside and ch == "\\":
            escaped = True
        elif ch == '"':
            spans.append(i)
            inside = not inside
    return spans


def render(
    template: str,
    params: dict[str, str],
    *,
    param: Callable[[str, bool], str],
    target: Callable[[str, bool], str],
    json_body: bool = False,
) -> str:
    """Fill `${NAME}` with `target(name, in_json_string)` and parameters with
    `param(value, in_json_string)`, in one pass (see the module docstring)."""
    spans = _string_spans(template) if json_body else []

    def fill(m: re.Match) -> str:
        in_string = bisect.bisect_right(spans, m.start()) % 2 == 1
        if m["var"]:
            return target(m["var"], in_string)
        name = m["brace"] or m["path"]
        if name not in params:
            return m.group(0)
        return param(params[name], in_string)

    return PLACE.sub(fill, template)


def _json_value(value: str, in_string: bool) -> str:
    if in_string:
        return json.dumps(value)[1:-1]
    # A bare `{n}` where JSON wants a value: a number stays a number, anything
    # else becomes a JSON string (never raw JSON from a responder).
    return value if JSON_NUMBER.fullmatch(value) else json.dumps(value)


def _body_kind(headers: dict[str, str], body: str) -> str:
    content_type = next(
        (v.lower() for k, v in headers.items() if k.lower() == "content-type"), ""
    )
    if "json" in content_type or (
        not content_type and body.lstrip().startswith(("{", "["))
    ):
        return "json"
    if not content_type or "x-www-form-urlencoded" in content_type:
        return "form"  # curl -d sends a form unless told otherwise
    return "text"


def _fill_body(
    body: str,
    headers: dict[str, str],
    params: dict[str, str],
    target: Callable[[str, bool], str],
) -> str:
    kind = _body_kind(headers, body)
    if kind == "json":
        return render(body, params, param=_json_value, target=target, json_body=True)
    if kind == "form":
        return render(body, params, param=lambda v, _: quote_plus(v), target=target)
    return render(body, params, param=lambda v, _: v, target=target)


def _url_param(value: str, _in_string: bool) -> str:
    return quote(value, safe="")  # cannot add a path segment, a query or a host


def request_parts(
    spec: dict, params: dict[str, str]
) -> tuple[str, str, dict, str | None]:
    """(method, URL, headers, body) exactly as they will be sent (secrets included:
    never show or store this; `shown_parts` is what a person sees)."""
    absent = targets.missing(
        targets.VARIABLE.findall(
            " ".join(
                [spec["url"], spec.get("body") or "", spec.get("basic_auth") or ""]
                + list((spec.get("headers") or {}).values())
            )
        )
    )
    if absent:
        raise targets.TargetMissing(absent)

    def value(name: str, in_string: bool) -> str:
        found = targets.value(name) or ""
        return json.dumps(found)[1:-1] if in_string else found

    url = render(spec["url"], params, param=_url_param, target=value)
    if not spec.get("base_variable"):
        url = targets.rewrite(url)
    headers = {
        k: render(v, {}, param=lambda v, _: v, target=value)
        for k, v in (spec.get("headers") or {}).items()
    }
    body = spec.get("body")
    if body is not None:
        body = _fill_body(body, headers, params, value)
        if body.lstrip().startswith(("{", "[")):
            headers.setdefault("Content-Type", "application/json")
    if spec.get("basic_auth"):
        auth = render(spec["basic_auth"], {}, param=lambda v, _: v, target=value)
        user, _, password = auth.partition(":")
        headers["Authorization"] = "Basic " + _basic(user, password)
    return spec["method"], url, headers, body


def shown_parts(
    spec: dict, params: dict[str, str]
) -> tuple[str, str, dict, str | None]:
    """The request as a person sees it: the runbook's text with parameters filled
    (encoded as they will be sent) and `${NAME}` left as the name. Nothing in it
    comes from a target value."""

    def name(var: str, _in_string: bool) -> str:
        return "${" + var + "}"

    url = render(spec["url"], params, param=_url_param, target=name)
    headers = dict(spec.get("headers") or {})
    body = spec.get("body")
    if body is not None:
        body = _fill_body(body, headers, params, name)
    if spec.get("basic_auth"):
        headers["Authorization"] = f"Basic ({spec['basic_auth']})"
    return spec["method"], url, headers, body


SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth-token",
        "private-token",
    }
)


def credentials_in(spec: dict) -> str:
    """What in this request is a credential, in words ("" if nothing is)."""
    headers = spec.get("headers") or {}
    if spec.get("basic_auth"):
        return "a user and password (-u)"
    for name, value in headers.items():
        if name.lower() in SENSITIVE_HEADERS:
            return f"the {name} header"
        if targets.VARIABLE.search(value):
            return f"a target value in its {name} header"
    if targets.VARIABLE.search(spec.get("url") or ""):
        return "a target value in its URL"
    if targets.VARIABLE.search(spec.get("body") or ""):
        return "a target value in its body"
    return ""


def _local(host: str) -> bool:
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: where it resolves is not ours to trust
    return address.is_loopback or address.is_private or address.is_link_local


def cleartext_problem(spec: dict, url: str) -> str:
    """Why this request may not be sent as it is (credentials over plain http to a
    host the operator did not choose), or ""."""
    parts = urlsplit(url)
    if parts.scheme != "http" or _local(parts.hostname or ""):
        return ""
    what = credentials_in(spec)
    if not what:
        return ""
    if spec.get("base_variable"):
        return ""  # the operator's own URL (`${ES_URL}` = http://es.internal:9200)
    written = urlsplit(spec["url"].replace("{", "%7B").replace("}", "%7D"))
    if (written.hostname or "").lower() in targets.host_map():
        return ""  # the operator sends this host there on purpose (TARGET_HOSTS)
    return (
        f"Refused: this request carries {what} and would send it in clear text "
        f"over http:// to {parts.hostname}. Nothing was sent. Use https, or map "
        "the host in TARGET_HOSTS to where it should go."
    )


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    """Send the request; read the answer as a stream, up to the output cap and
    within one deadline for the whole call. Whatever happens, a Result."""
    method, url, headers, body = request_parts(command.spec, params)
    shown = shown_parts(command.spec, params)[1]
    if urlsplit(url).scheme not in {"http", "https"}:
        return Result(
            False,
            f"Refused: {urlsplit(url).scheme or 'no'} scheme in {shown!r} "
            "(only http and https).",
        )
    if problem := cleartext_problem(command.spec, url):
        return Result(False, problem)
    # A compressed answer could expand far past the cap inside a single chunk.
    if not any(k.lower() == "accept-encoding" for k in headers):
        headers["Accept-Encoding"] = "identity"
    timeout = httpx.Timeout(
        ctx.remaining(), connect=min(ctx.connect_timeout, ctx.remaining())
    )
    started = time.monotonic()
    limit = ctx.output_cap + READ_SLACK
    received = bytearray()
    response: httpx.Response | None = None
    cut = finished = False
    with Deadline(ctx) as deadline:

        def trace(event: str, info: dict) -> None:
            if event == "connection.connect_tcp.complete" and info.get("return_value"):
                sock = info["return_value"].get_extra_info("socket")
                deadline.on_expiry(lambda: shutdown(sock))

        try:
            with (
                httpx.Client(
                    timeout=timeout, follow_redirects=False, trust_env=False
                ) as client,
                client.stream(
                    method,
                    url,
                    headers=headers,
                    content=body,
                    extensions={"trace": trace},
                ) as response,
            ):
                for chunk in response.iter_bytes():
                    received += chunk
                    if len(received) >= limit:
                        cut = True  # stop reading: the rest is never kept
                        break
                else:
                    finished = True
        except httpx.ConnectTimeout:
            return Result(
                False,
                f"{method} {shown}: no connection within {ctx.connect_timeout:g} s.",
                timed_out=True,
            )
        except httpx.ConnectError as exc:
            if not deadline.expired:
                return Result(
                    False, f"{method} {shown}: cannot connect ({_reason(exc)})."
                )
        except httpx.TimeoutException:
            pass  # reported below, with what was read
        except httpx.HTTPError as exc:
            if not deadline.expired:
                return Result(False, f"{method} {shown}: {type(exc).__name__}: {exc}.")
        # Read once: the timer may still fire after the call is over.
        complete = (cut or finished) and not deadline.expired
    elapsed = (time.monotonic() - started) * 1000
    if response is None or (not complete and not received):
        return Result(
            False,
            f"{method} {shown}: no answer within {ctx.timeout:g} s.",
            timed_out=True,
            data={"elapsed_ms": round(elapsed, 1)},
        )
    status = f"{response.status_code} {response.reason_phrase}"
    headers = list(response.headers.items())
    # httpx's encoding is one Python knows (an unknown charset falls back to utf-8).
    text = received.decode(response.encoding or "utf-8", "replace")
    output = http_head(status, headers) + text
    data = {"status": response.status_code, "elapsed_ms": round(elapsed, 1)}
    answer = {
        "method": method,
        "status": response.status_code,
        "reason": response.reason_phrase,
        "elapsed_ms": round(elapsed, 1),
        "headers": [list(h) for h in headers],
        "truncated": cut or not complete,
    }
    if not complete:
        return Result(
            False,
            f"{method} {shown} → {status}, but the body did not finish within "
            f"{ctx.timeout:g} s",
            clip(output, ctx, note=f"the answer did not finish in {ctx.timeout:g} s"),
            {**data, "truncated": True},
            timed_out=True,
            structured={"http": answer},
        )
    summary = f"{method} {shown} → {status} in {elapsed:.0f} ms"
    if response.is_redirect:
        summary += (
            f" (redirect to {response.headers.get('location', '?')} not followed)"
        )
    if cut:
        summary += f" (body cut at {ctx.output_cap // 1024} KB)"
        data["truncated"] = True
    note = f"read only the first {ctx.output_cap // 1024} KB" if cut else None
    return Result(
        ok=response.status_code < 400,
        summary=summary,
        output=clip(output, ctx, note=note),
        data=data,
        structured={"http": answer},
    )


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text
