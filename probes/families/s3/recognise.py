"""`aws s3api head-bucket` and `aws s3 ls`: S3 probes; other aws commands manual."""

from __future__ import annotations

from ...binding import MANUAL, PROBE, Binding
from ...text import brace_parameters, variables_in


def recognise_aws(tokens: list[str], text: str) -> Binding:
    endpoint = None
    words: list[str] = []
    opts: dict[str, str] = {}
    it = iter(tokens[1:])
    for tok in it:
        if tok.startswith("--"):
            value = next(it, "")
            if tok == "--endpoint-url":
                endpoint = value
            opts[tok[2:]] = value
        else:
            words.append(tok)
    spec: dict = {"endpoint": endpoint} if endpoint else {}
    if words[:2] == ["s3api", "head-bucket"] and "bucket" in opts:
        spec.update({"operation": "head_bucket", "bucket": opts["bucket"]})
    elif words[:2] == ["s3", "ls"]:
        location = words[2] if len(words) > 2 else ""
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        spec.update({"operation": "list", "bucket": bucket, "prefix": prefix})
    else:
        return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    return Binding(PROBE, "s3", brace_parameters(text), variables_in(text), spec)
