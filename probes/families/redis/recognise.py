"""`redis-cli` commands: reading ones (PING, INFO, LLEN, CONFIG GET, latency modes)
are probes, the rest (CONFIG SET, DEL, FLUSH*) actions."""

from __future__ import annotations

from ...binding import ACTION, MANUAL, PROBE, Binding
from ...text import brace_parameters, target_of, unique, variables_in

REDIS_PROBES = {
    "PING",
    "INFO",
    "LLEN",
    "GET",
    "MGET",
    "EXISTS",
    "TTL",
    "PTTL",
    "TYPE",
    "STRLEN",
    "HGET",
    "HGETALL",
    "HLEN",
    "HKEYS",
    "HMGET",
    "SCARD",
    "SMEMBERS",
    "SISMEMBER",
    "ZCARD",
    "ZRANGE",
    "ZSCORE",
    "LRANGE",
    "LINDEX",
    "XLEN",
    "XINFO",
    "DBSIZE",
    "SCAN",
    "KEYS",
    "TIME",
    "ROLE",
    "LASTSAVE",
    "ECHO",
    "CONFIG GET",
    "CLIENT LIST",
    "CLIENT INFO",
    "SLOWLOG GET",
    "SLOWLOG LEN",
    "MEMORY USAGE",
    "MEMORY STATS",
    "MEMORY DOCTOR",
    "LATENCY LATEST",
    "LATENCY DOCTOR",
    "LATENCY HISTORY",
    "CLUSTER INFO",
    "CLUSTER NODES",
    "OBJECT ENCODING",
    "OBJECT FREQ",
    "OBJECT IDLETIME",
    "PUBSUB CHANNELS",
    "PUBSUB NUMSUB",
}
REDIS_TWO_WORD = {
    "CONFIG",
    "CLIENT",
    "SLOWLOG",
    "MEMORY",
    "LATENCY",
    "CLUSTER",
    "OBJECT",
    "PUBSUB",
    "SCRIPT",
    "ACL",
    "DEBUG",
    "FUNCTION",
    "MODULE",
    "XINFO",
}
REDIS_MODES = {
    "--latency",
    "--latency-history",
    "--latency-dist",
    "--bigkeys",
    "--memkeys",
    "--stat",
    "--scan",
    "--hotkeys",
}
REDIS_OPTS_WITH_VALUE = {
    "-h",
    "-p",
    "-a",
    "-u",
    "-n",
    "-i",
    "-r",
    "-d",
    "-s",
    "--user",
    "--pass",
    "--pattern",
    "--count",
    "--cacert",
    "--cert",
    "--key",
    "--sni",
    "-x",
    "--memkeys-samples",
}


def recognise_redis(tokens: list[str], text: str, grep: dict | None) -> Binding:
    target, host, mode, interval = "REDIS_URL", None, None, None
    args: list[str] = []
    it = iter(tokens[1:])
    for tok in it:
        if args:
            args.append(tok)
        elif tok in REDIS_MODES:
            mode = tok.lstrip("-")
        elif tok in REDIS_OPTS_WITH_VALUE:
            value = next(it, "")
            if tok == "-u":
                target = target_of(value, "REDIS_URL")
            elif tok == "-h":
                host = value
            elif tok == "-i":
                interval = value
        elif tok.startswith("-"):
            continue
        else:
            args.append(tok)
    spec: dict = {"target": target}
    if host:
        spec["host"] = host
    if grep:
        spec["filter"] = grep
    variables = unique([target, *variables_in(text)])
    if mode:
        spec.update(
            {"mode": mode, "interval": interval} if interval else {"mode": mode}
        )
        return Binding(PROBE, "redis", brace_parameters(text), variables, spec)
    if not args:
        return Binding(MANUAL, None, [], variables_in(text), {})  # interactive session
    name = args[0].upper()
    if name in REDIS_TWO_WORD and len(args) > 1:
        name = f"{name} {args[1].upper()}"
    spec.update({"command": name, "args": args})
    kind = PROBE if name in REDIS_PROBES else ACTION
    return Binding(kind, "redis", brace_parameters(" ".join(args)), variables, spec)
