"""`kubectl` commands: `get`, `describe`, `logs` and `top` are probes (they read the
Kubernetes API and change nothing); everything else (`scale`, `rollout restart`,
`delete`, `apply`, `exec`, `edit`, `port-forward`, `cp`...) stays manual, and so do
the reading commands that never end (`logs -f`, `get -w`) or that we would not run
as written (an output format we do not print, a flag we do not know, a secret's
values as JSON or YAML, credentials or impersonation given on the command line).

The spec holds everything the runner needs, with `{name}` parameters and `${NAME}`
target variables left in place: they are filled, and checked, when it runs."""

from __future__ import annotations

from typing import Any

from ...binding import MANUAL, PROBE, Binding
from ...text import VARIABLE, brace_parameters, variables_in

DEFAULT_TARGET = "KUBECONFIG"
PROBE_VERBS = ("get", "describe", "logs", "top")
OUTPUTS = {"", "wide", "name", "json", "yaml"}

# Global flags that take a value, and what the spec calls them (None: ignored,
# the console has its own timeouts and verbosity).
GLOBAL_VALUE = {
    "-n": "namespace",
    "--namespace": "namespace",
    "--context": "context",
    "--cluster": "cluster",
    "--user": "user",
    "--kubeconfig": "kubeconfig",
    "--request-timeout": None,
    "-v": None,
    "--v": None,
    "--cache-dir": None,
}
# Flags that would make us run with other credentials or another server than the
# worker's kubeconfig says: a person runs those commands, not the console.
FOREIGN = {
    "-s",
    "--server",
    "--token",
    "--as",
    "--as-group",
    "--as-uid",
    "--username",
    "--password",
    "--certificate-authority",
    "--client-certificate",
    "--client-key",
    "--insecure-skip-tls-verify",
    "--tls-server-name",
}

# Per verb: flags with a value -> spec key (None: accepted and ignored), and boolean
# flags -> spec key. A flag not listed makes the command manual.
VALUE_FLAGS: dict[str, dict[str, str | None]] = {
    "get": {
        "-o": "output",
        "--output": "output",
        "-l": "selector",
        "--selector": "selector",
        "--field-selector": "field_selector",
        "-L": "label_columns",
        "--label-columns": "label_columns",
        "--chunk-size": None,
    },
    "describe": {
        "-l": "selector",
        "--selector": "selector",
        "--chunk-size": None,
    },
    "logs": {
        "-c": "container",
        "--container": "container",
        "-l": "selector",
        "--selector": "selector",
        "--tail": "tail",
        "--since": "since",
        "--since-time": "since_time",
        "--limit-bytes": "limit_bytes",
        "--max-log-requests": None,
        "--pod-running-timeout": None,
    },
    "top": {
        "-l": "selector",
        "--selector": "selector",
        "--sort-by": "sort_by",
    },
}
BOOL_FLAGS: dict[str, dict[str, str | None]] = {
    "get": {
        "-A": "all_namespaces",
        "--all-namespaces": "all_namespaces",
        "--no-headers": "no_headers",
        "--show-labels": "show_labels",
        "--ignore-not-found": "ignore_not_found",
        "--show-kind": "show_kind",
        "-w": "watch",
        "--watch": "watch",
        "--watch-only": "watch",
    },
    "describe": {
        "-A": "all_namespaces",
        "--all-namespaces": "all_namespaces",
        "--show-events": "show_events",
    },
    "logs": {
        "-p": "previous",
        "--previous": "previous",
        "--timestamps": "timestamps",
        "--all-containers": "all_containers",
        "--prefix": "prefix",
        "--ignore-errors": None,
        "-f": "follow",
        "--follow": "follow",
    },
    "top": {
        "-A": "all_namespaces",
        "--all-namespaces": "all_namespaces",
        "--containers": "containers",
        "--no-headers": "no_headers",
        "--use-protocol-buffers": None,
    },
}

SECRET_TYPES = {"secret", "secrets"}
TOP_KINDS = {"pod": "pods", "pods": "pods", "po": "pods"} | {
    "node": "nodes",
    "nodes": "nodes",
    "no": "nodes",
}


class Manual(Exception):
    """Recognised as kubectl, but not something the console runs."""


def manual(text: str) -> Binding:
    return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})


# OpenShift's `oc` speaks the same API with the same reading verbs and flags
# (`oc get clusterversion`, `oc -n x logs pod/y`); its own verbs (`oc adm`, `oc
# rsh`, `oc debug`) are not reading verbs, so they stay manual like kubectl's.
PROGRAMS = frozenset({"kubectl", "oc"})


def recognise_kubectl(tokens: list[str], text: str) -> Binding | None:
    if not tokens or tokens[0].rsplit("/", 1)[-1] not in PROGRAMS:
        return None
    try:
        spec = parse(tokens[1:])
    except Manual:
        return manual(text)
    return Binding(PROBE, "kubectl", brace_parameters(text), variables_in(text), spec)


def _bool(value: str | None, flag: str) -> bool:
    if value is None or value.lower() in {"true", "1", "t"}:
        return True
    if value.lower() in {"false", "0", "f"}:
        return False
    raise Manual(f"{flag}={value}")


def _split_flag(token: str) -> tuple[str, str | None]:
    """`--tail=20` -> ("--tail", "20"); `-n=x` and `-nx` -> ("-n", "x")."""
    if token.startswith("--"):
        name, sep, value = token.partition("=")
        return name, value if sep else None
    if len(token) > 2:
        rest = token[2:]
        return token[:2], rest[1:] if rest.startswith("=") else rest
    return token, None


def parse(args: list[str]) -> dict[str, Any]:
    """The spec of a reading kubectl command; raises Manual for anything else."""
    spec: dict[str, Any] = {"target": DEFAULT_TARGET}
    positional: list[str] = []
    verb = None
    it = iter(args)
    for token in args:  # flag values too (`-n $NAMESPACE`)
        if token.lstrip("0123456789&").startswith((">", "<")):
            raise Manual("a redirect")  # `-o yaml > backup.yaml` writes a file
        if "$" in VARIABLE.sub("", token) or "`" in token:
            # `$NODE_NAME` is the author's shell variable (set by hand a step
            # before), `$(...)` a command: the console cannot know either value.
            raise Manual("a shell variable")
    for token in it:
        if token == "--":
            raise Manual("arguments after --")  # `exec ... -- cmd`
        if not token.startswith("-") or token == "-":
            if verb is None:
                verb = token
                if verb not in PROBE_VERBS:
                    raise Manual(verb)
            else:
                positional.append(token)
            continue
        name, value = _split_flag(token)
        if name in FOREIGN:
            raise Manual(name)
        if name in GLOBAL_VALUE:
            if value is None:
                value = next(it, None)
                if value is None:
                    raise Manual(f"{name} without a value")
            key = GLOBAL_VALUE[name]
            if key == "kubeconfig":
                # `--kubeconfig ${STAGING_KUBECONFIG}` names the target; a literal
                # path is the author's machine's, so the worker's target is used.
                if m := VARIABLE.fullmatch(value.strip()):
                    spec["target"] = m.group(1)
            elif key:
                spec[key] = value
            continue
        if verb is None:
            raise Manual(name)  # a verb-specific flag before any verb
        values, bools = VALUE_FLAGS[verb], BOOL_FLAGS[verb]
        if name in values:
            if value is None:
                value = next(it, None)
                if value is None:
                    raise Manual(f"{name} without a value")
            if values[name]:
                spec[values[name]] = value
        elif name in bools:
            if bools[name]:
                spec[bools[name]] = _bool(value, name)
        else:
            raise Manual(name)
    if verb is None:
        raise Manual("no verb")
    spec["verb"] = verb
    return {"get": _get, "describe": _describe, "logs": _logs, "top": _top}[verb](
        spec, positional
    )


def _objects(positional: list[str]) -> list[dict[str, str | None]]:
    """kubectl's argument forms: `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...`."""
    if not positional:
        raise Manual("no resource type")
    if any("/" in p for p in positional):
        if not all(p.count("/") == 1 and all(p.split("/")) for p in positional):
            raise Manual("mixed TYPE/NAME and TYPE NAME forms")
        return [{"type": p.split("/")[0], "name": p.split("/")[1]} for p in positional]
    types = [t for t in positional[0].split(",") if t]
    names = positional[1:]
    if not types:
        raise Manual("no resource type")
    if names and len(types) > 1:
        raise Manual("names with several types")
    if not names:
        return [{"type": t, "name": None} for t in types]
    return [{"type": types[0], "name": n} for n in names]


def _is_secret(kind: str) -> bool:
    return kind.split(".")[0].lower() in SECRET_TYPES


def _get(spec: dict[str, Any], positional: list[str]) -> dict[str, Any]:
    if spec.pop("watch", False):
        raise Manual("--watch never ends")
    output = spec.get("output", "")
    if output not in OUTPUTS:
        raise Manual(f"-o {output}")  # jsonpath, custom-columns, go-template...
    spec["output"] = output
    spec["objects"] = _objects(positional)
    if output in {"json", "yaml"} and any(
        _is_secret(o["type"]) for o in spec["objects"]
    ):
        raise Manual("a secret's values")  # they would be stored with the run
    _by_name_everywhere(spec)
    if "label_columns" in spec:
        spec["label_columns"] = [c for c in spec["label_columns"].split(",") if c]
    return spec


def _by_name_everywhere(spec: dict[str, Any]) -> None:
    named = any(o["name"] for o in spec.get("objects") or []) or spec.get("name")
    if named and spec.get("all_namespaces"):
        # kubectl: "a resource cannot be retrieved by name across all namespaces"
        raise Manual("a name with --all-namespaces")


def _describe(spec: dict[str, Any], positional: list[str]) -> dict[str, Any]:
    spec["objects"] = _objects(positional)
    _by_name_everywhere(spec)
    spec.setdefault("show_events", True)
    return spec


def _logs(spec: dict[str, Any], positional: list[str]) -> dict[str, Any]:
    if spec.pop("follow", False):
        raise Manual("--follow never ends")
    if len(positional) > 2 or (not positional and not spec.get("selector")):
        raise Manual("logs needs one pod, TYPE/NAME or -l")
    if positional and spec.get("selector"):
        raise Manual("both a name and a selector")
    if positional:
        kind, _, name = positional[0].rpartition("/")
        if not name or positional[0].count("/") > 1 or positional[0].startswith("/"):
            raise Manual(positional[0])
        spec["object"] = {"type": kind or "pod", "name": name}
        if len(positional) == 2:  # the old `kubectl logs POD CONTAINER` form
            if spec.get("container"):
                raise Manual("two container names")
            spec["container"] = positional[1]
    return spec


def _top(spec: dict[str, Any], positional: list[str]) -> dict[str, Any]:
    if not positional or positional[0].lower() not in TOP_KINDS or len(positional) > 2:
        raise Manual("top needs pod or node")
    spec["what"] = TOP_KINDS[positional[0].lower()]
    if len(positional) == 2:
        spec["name"] = positional[1]
    _by_name_everywhere(spec)
    if spec["what"] == "nodes" and spec.get("containers"):
        raise Manual("--containers is for pods")
    if spec.get("sort_by") not in {None, "cpu", "memory"}:
        raise Manual(f"--sort-by {spec['sort_by']}")
    return spec
