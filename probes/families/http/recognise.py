"""HTTP requests: `curl` commands, request lines (`PATCH /admin/x {"a": 1}`) in
blocks, inline code and comments. GET/HEAD/OPTIONS are probes, other methods
actions; `{name}` and `/:name` in the URL are parameters."""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import SplitResult, urlsplit

from ...binding import ACTION, MANUAL, PROBE, Binding
from ...text import PATH_PARAM, brace_parameters, unique, variables_in

HTTP_LINE = re.compile(
    r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)\s+((?:https?://|/)\S*)(?:\s+(\S.*))?$",
    re.S,
)

BASE_VARIABLE = re.compile(r"^\$\{([A-Za-z_]\w*)\}")
CURL_URL = re.compile(r"^(?:https?://|\$\{[A-Za-z_]\w*\})")


def url_parameters(url: str) -> list[str]:
    params = brace_parameters(url)
    path = url
    if "://" in url:
        parts = urlsplit(url.replace("{", "%7B").replace("}", "%7D"))
        path = parts.path
    params += PATH_PARAM.findall(path)
    return unique(params)


def _http_binding(
    method: str,
    url: str,
    headers: dict[str, str],
    body: str | None,
    text: str,
    **extra: object,
) -> Binding:
    method = method.upper()
    spec: dict = {"method": method, "url": url, "headers": headers}
    if body is not None:
        spec["body"] = body
    spec.update({k: v for k, v in extra.items() if v})
    if url.startswith("/"):
        spec["path"] = url
    elif base := BASE_VARIABLE.match(url):
        spec["base_variable"] = base.group(1)  # `${ES_URL}/_cluster/health`
    else:
        spec["host"] = (
            urlsplit(url.replace("{", "%7B").replace("}", "%7D")).hostname or ""
        )
    return Binding(
        kind=PROBE if method in {"GET", "HEAD", "OPTIONS"} else ACTION,
        executor="http",
        parameters=url_parameters(url),
        variables=variables_in(text),
        spec=spec,
    )


def recognise_curl(tokens: list[str], text: str) -> Binding:
    method: str | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    url: str | None = None
    follow = False
    auth = None
    get_with_data = False
    it = iter(tokens[1:])
    for tok in it:
        if tok in {"-X", "--request"}:
            method = next(it, "GET")
        elif tok.startswith("-X") and len(tok) > 2:
            method = tok[2:]
        elif tok in {"-H", "--header"}:
            name, _, value = next(it, "").partition(":")
            headers[name.strip()] = value.strip()
        elif tok in {"-d", "--data", "--data-raw", "--data-binary", "--data-ascii"}:
            body = next(it, "")
        elif tok == "--json":
            body = next(it, "")
            headers.setdefault("Content-Type", "application/json")
            headers.setdefault("Accept", "application/json")
        elif tok in {"-I", "--head"}:
            method = "HEAD"
        elif tok in {"-G", "--get"}:
            get_with_data = True
        elif tok in {"-L", "--location"}:
            follow = True
        elif tok in {
            "-u",
            "--user",
            "-o",
            "--output",
            "-m",
            "--max-time",
            "-w",
            "--write-out",
            "--connect-timeout",
            "-A",
            "--user-agent",
            "-e",
            "--referer",
            "-b",
            "--cookie",
            "--url",
            "-F",
            "--form",
        }:
            value = next(it, "")
            if tok == "--url":
                url = value
            elif tok in {"-u", "--user"}:
                auth = value
            elif tok in {"-F", "--form", "-o", "--output"}:
                # Uploads and output files belong on a person's machine.
                return Binding(
                    kind=MANUAL,
                    variables=variables_in(text),
                    parameters=brace_parameters(text),
                )
        elif tok.startswith("-"):
            continue
        elif url is None:
            url = tok
    if not url or not CURL_URL.match(url):
        return Binding(
            kind=MANUAL, variables=variables_in(text), parameters=brace_parameters(text)
        )
    if method is None:
        method = "POST" if body is not None and not get_with_data else "GET"
    return _http_binding(
        method, url, headers, body, text, follow_redirects=follow, basic_auth=auth
    )


def recognise_http_line(text: str) -> Binding | None:
    """`PATCH /admin/crawler/sources/:id {"isactive": false}`: a method, a path or
    URL, and an optional JSON body."""
    m = HTTP_LINE.match(text.strip())
    if not m:
        return None
    body = m.group(3)
    if body is not None:
        body = body.strip()
        try:
            json.loads(body)
        except ValueError:
            if not body.startswith(("{", "[")):
                return None
    return _http_binding(m.group(1), m.group(2), {}, body, text)


def resolve_http_paths(bindings: list[Binding]) -> None:
    """Give path-only HTTP commands (`PUT /admin/settings`) the base URL that the
    runbook's own curl commands use for the same API (`https://api.../api/v1`), and
    that curl's Authorization header: the runbook writes it once, the API wants it
    on every admin call."""
    sources = [b for b in bindings if b.executor == "http" and "host" in b.spec]
    if not sources:
        return
    parsed = [
        (b, urlsplit(b.spec["url"].replace("{", "%7B").replace("}", "%7D")))
        for b in sources
    ]
    # The most used host; on a tie, the first one the runbook uses.
    common = Counter((p.scheme, p.netloc) for _, p in parsed).most_common(1)[0][0]
    # Each `/segment/` of a source's path -> the first source (in runbook order)
    # whose path has it after a prefix, and where its first occurrence starts. One
    # pass over the sources instead of one per path-only command: 1,000 playbooks
    # made that a million path searches.
    by_segment: dict[str, tuple[Binding, SplitResult, int]] = {}
    for candidate, parts in parsed:
        slashes = [i for i, ch in enumerate(parts.path) if ch == "/"]
        first_seen: dict[str, int] = {}
        for start, end in zip(slashes, slashes[1:], strict=False):
            first_seen.setdefault(parts.path[start + 1 : end], start)
        for segment, at in first_seen.items():
            if at > 0:
                by_segment.setdefault(segment, (candidate, parts, at))
    for binding in bindings:
        path = binding.spec.get("path") if binding.executor == "http" else None
        if not path:
            continue
        base, source = f"{common[0]}://{common[1]}", None
        found = by_segment.get(path.strip("/").split("/", 1)[0])
        if found is not None:
            source, parts, at = found
            base = f"{parts.scheme}://{parts.netloc}{parts.path[:at]}"
        binding.spec["url"] = base + path
        binding.spec["host"] = urlsplit(base).hostname or ""
        auth = (
            (source.spec.get("headers") or {}).get("Authorization") if source else None
        )
        if auth and not binding.spec.get("headers"):
            binding.spec["headers"] = {"Authorization": auth}
            binding.variables.extend(
                v for v in variables_in(auth) if v not in binding.variables
            )
