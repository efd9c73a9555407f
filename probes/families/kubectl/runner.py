"""Run a kubectl probe against the Kubernetes API, as kubectl would: `get` asks for
server-side tables (so the columns are the cluster's own), `describe` reads the
object and its events, `logs` reads a pod's log (a `deploy/api` resolved to one of
its pods through the selector, chosen as kubectl chooses), `top` reads
metrics.k8s.io.

Everything runs within one deadline (ctx.timeout), each connection within
ctx.connect_timeout, output is capped, and nothing raises past the caller: a
failure is a Result with a readable summary. The kubeconfig's token and keys are
masked in everything returned."""

from __future__ import annotations

import copy
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import yaml

from ... import redaction, targets
from ...binding import CommandLike
from ...runtime import NOTE_ROOM, Context, Deadline, ParameterError, Result, clip
from . import describe as describing
from .client import ALL, METRICS, TABLE, Api, ApiError, Ask, Resource, discover
from .format import (
    age,
    cell,
    columns,
    label_selector,
    labels,
    mebibytes,
    millicores,
    quantity,
)
from .kubeconfig import KubeconfigError, load

LIST_LIMIT = 500  # kubectl's chunk size: one page is read, the rest noted
MAX_LOG_PODS = 10
SELECTOR_TAIL = 10  # kubectl's default --tail when logs select pods by label
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PLACE = re.compile(
    r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)\}|(?<![$\w{])\{(?P<brace>[A-Za-z_][\w.-]*)\}(?!\})"
)
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
OBJECT_NAME = re.compile(r"[^/\s\x00-\x1f\x7f]{1,253}")
TYPE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,252}")
DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
TEXT_FIELDS = (
    "namespace",
    "context",
    "cluster",
    "user",
    "selector",
    "field_selector",
    "container",
    "tail",
    "since",
    "since_time",
    "limit_bytes",
    "name",
)


# --- parameters ------------------------------------------------------------------


def fill(
    spec: dict[str, Any], params: dict[str, str], *, expand: bool
) -> dict[str, Any]:
    """The spec with `{name}` parameters (and, if `expand`, `${NAME}` targets) put
    in, in one pass: a value put in is never read again. Raises ParameterError for a
    value kubectl would refuse, TargetMissing for an unset target. Without `expand`,
    a field whose runbook text holds a `${NAME}` is not checked (its value is not
    known yet); every other field is."""
    missing: list[str] = []
    unknown: set[str] = set()

    def one(value: str, key: str) -> str:
        def put(m: re.Match) -> str:
            if m["var"]:
                if not expand:
                    unknown.add(key)
                    return m.group(0)
                found = targets.value(m["var"])
                if found is None:
                    missing.append(m["var"])
                return found or ""
            if m["brace"] not in params:
                raise ParameterError(f"No value given for {{{m['brace']}}}.")
            return params[m["brace"]]

        return PLACE.sub(put, value)

    out = copy.deepcopy(spec)
    for key in TEXT_FIELDS:
        if isinstance(out.get(key), str):
            out[key] = one(out[key], key)
    objects = list(out.get("objects") or []) + (
        [out["object"]] if out.get("object") else []
    )
    for i, obj in enumerate(objects):
        obj["type"] = one(obj["type"], f"type{i}").lower()
        if obj.get("name"):
            obj["name"] = one(obj["name"], f"name{i}")
    if out.get("label_columns"):
        out["label_columns"] = [one(c, "label_columns") for c in out["label_columns"]]
    if missing:
        raise targets.TargetMissing(list(dict.fromkeys(missing)))
    _check(out, objects, unknown)
    return out


def _check(spec: dict[str, Any], objects: list[dict], unknown: set[str]) -> None:
    def known(key: str, value: object) -> bool:
        return isinstance(value, str) and key not in unknown

    ns = spec.get("namespace")
    if known("namespace", ns) and not NAMESPACE.fullmatch(ns):
        raise ParameterError(
            f"{ns!r} is not a namespace name (lowercase letters, digits and '-', "
            "at most 63)."
        )
    for i, obj in enumerate(objects):
        if known(f"type{i}", obj["type"]) and not TYPE_NAME.fullmatch(obj["type"]):
            raise ParameterError(f"{obj['type']!r} is not a resource type.")
        name = obj.get("name")
        if known(f"name{i}", name) and (
            not OBJECT_NAME.fullmatch(name) or name in {".", ".."}
        ):
            raise ParameterError(
                f"{name!r} is not an object name (no '/', spaces or control characters)."
            )
    name = spec.get("name")
    if known("name", name) and (not OBJECT_NAME.fullmatch(name) or name in {".", ".."}):
        raise ParameterError(f"{name!r} is not an object name.")
    container = spec.get("container")
    if known("container", container) and not NAMESPACE.fullmatch(container):
        raise ParameterError(f"{container!r} is not a container name.")
    for key in ("tail", "limit_bytes"):
        value = spec.get(key)
        if known(key, value):
            try:
                number = int(value)
            except ValueError:
                number = None
            if number is None or number < (-1 if key == "tail" else 1):
                what = "a number of lines (-1 for all)" if key == "tail" else "bytes"
                raise ParameterError(
                    f"--{key.replace('_', '-')} needs {what}: {value!r}."
                )
    since = spec.get("since")
    if known("since", since) and not DURATION.fullmatch(since):
        raise ParameterError(f"--since needs a duration such as 10m or 1h: {since!r}.")
    since_time = spec.get("since_time")
    if known("since_time", since_time) and not RFC3339.fullmatch(since_time):
        raise ParameterError(f"--since-time needs an RFC 3339 time: {since_time!r}.")
    for key in ("selector", "field_selector"):
        value = spec.get(key)
        if known(key, value) and (len(value) > 2000 or any(ord(c) < 32 for c in value)):
            raise ParameterError(f"{value[:80]!r} is not a selector.")


def _seconds(duration: str) -> int:
    total = sum(float(n) * UNIT_SECONDS[u] for n, u in DURATION_PART.findall(duration))
    return max(1, int(-(-total // 1)))  # kubectl rounds up to whole seconds


# --- the entry point --------------------------------------------------------------


def run(command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
    started = time.monotonic()
    try:
        spec = fill(command.spec, params, expand=True)
        value = targets.require(spec.get("target") or "KUBECONFIG")
    except (ParameterError, targets.TargetMissing) as exc:
        return Result(False, str(exc))
    try:
        conn = load(
            value,
            context=spec.get("context"),
            cluster=spec.get("cluster"),
            user=spec.get("user"),
        )
    except KubeconfigError as exc:
        target = spec.get("target") or "KUBECONFIG"
        return Result(
            False, redaction.redact(f"TARGET_{target} cannot be used: {exc}.")
        )
    namespace = spec.get("namespace") or conn.namespace
    verb = VERBS[spec["verb"]]
    api: Api | None = None
    with Deadline(ctx) as deadline:
        try:
            api = Api(conn, ctx, deadline)
            result = verb(api, spec, namespace, ctx)
        except ApiError as exc:
            result = Result(
                False,
                exc.summary.rstrip(".") + ".",
                clip(api.mask(exc.output), ctx) if api and exc.output else "",
                {"status": exc.status} if exc.status else {},
                timed_out=exc.timed_out,
            )
        except Exception as exc:  # noqa: BLE001 - a failure is a Result, never a crash
            result = Result(False, f"{type(exc).__name__}: {exc}")
        finally:
            if api is not None:
                api.close()
    mask = api.mask if api is not None else redaction.redact
    result.summary = mask(result.summary)
    result.data.update(
        {
            "context": conn.context,
            "namespace": namespace,
            "requests": api.requests if api else 0,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        }
    )
    return result


def _where(res: Resource, namespace: str, all_namespaces: bool) -> str | None:
    return namespace if res.namespaced and not all_namespaces else None


def _resources(
    api: Api, objects: list[dict]
) -> tuple[list[tuple[Resource, list[str | None]]], set[Resource]]:
    """The resources asked for, each with its names (None: list them all), and
    those only `all` asked for: a cluster that does not serve one of those (404)
    is skipped, as kubectl only expands `all` to what the cluster serves."""
    grouped: dict[Resource, list[str | None]] = {}
    named: set[Resource] = set()
    for obj in objects:
        for typed in ALL if obj["type"] == "all" else (obj["type"],):
            res = discover(api, typed)
            grouped.setdefault(res, []).append(obj.get("name"))
            if obj["type"] != "all":
                named.add(res)
    return list(grouped.items()), set(grouped) - named


def _skippable(exc: ApiError, name: str | None, res: Resource, optional: set) -> bool:
    return exc.status == 404 and name is None and res in optional


def _none_found(namespace: str | None) -> str:
    return (
        f"No resources found in {namespace} namespace."
        if namespace
        else ("No resources found")
    )


# --- get --------------------------------------------------------------------------


def _fetch(
    api: Api,
    spec: dict[str, Any],
    res: Resource,
    names: list[str | None],
    optional: set[Resource],
    namespace: str,
    all_ns: bool,
    errors: list[str],
    *,
    table: bool = True,
) -> Iterator[tuple[str | None, dict]]:
    """Each named object of one type, or its list (by selector), as the API answers:
    a server-side table for `get`'s columns, the objects themselves for -o
    json/yaml/name. A type the cluster does not serve is skipped where optional; a
    missing named object is an error unless --ignore-not-found."""
    where = _where(res, namespace, all_ns)
    for name in names:
        params: dict[str, Any] = {"includeObject": "Metadata"} if table else {}
        if not name:
            params |= {
                "limit": LIST_LIMIT,
                "labelSelector": spec.get("selector"),
                "fieldSelector": spec.get("field_selector"),
            }
        ask = Ask("get" if name else "list", res.plural, where, name, res.singular)
        extra = {"accept": TABLE} if table else {}
        try:
            doc = api.get(res.path(where, name), ask, params, **extra).json()
        except ApiError as exc:
            if _skippable(exc, name, res, optional):
                continue
            if name and exc.status == 404:
                if not spec.get("ignore_not_found"):
                    errors.append(exc.summary)
                continue
            raise
        yield name, doc


def get(api: Api, spec: dict[str, Any], namespace: str, ctx: Context) -> Result:
    all_ns = bool(spec.get("all_namespaces"))
    groups, optional = _resources(api, spec["objects"])
    if spec["output"] in {"json", "yaml", "name"}:
        return _get_objects(api, spec, groups, optional, namespace, all_ns, ctx)
    many = (
        len(groups) > 1
        or any(o["type"] == "all" for o in spec["objects"])
        or bool(spec.get("show_kind"))
    )
    blocks: list[str] = []
    errors: list[str] = []
    counts: dict[str, int] = {}
    statuses: Counter[str] = Counter()
    more = False
    for res, names in groups:
        columns_doc: list[dict] = []
        rows: list[dict] = []
        fetched = _fetch(api, spec, res, names, optional, namespace, all_ns, errors)
        for _name, doc in fetched:
            more |= bool((doc.get("metadata") or {}).get("continue"))
            defs, found = _as_table(doc)
            columns_doc = columns_doc or defs
            rows += found
        if not rows:
            continue
        counts[res.plural] = len(rows)
        block, status = _render(res, columns_doc, rows, spec, all_ns, many)
        statuses.update(status)
        blocks.append(block)
    total = sum(counts.values())
    shown_ns = None if all_ns else namespace
    text = "\n\n".join(blocks)
    if not total and not errors:
        scope = (
            namespace if any(r.namespaced for r, _ in groups) and not all_ns else None
        )
        return Result(True, _none_found(scope).rstrip("."), _none_found(scope))
    if errors:
        text = "\n".join(filter(None, [text, *(f"Error: {e}" for e in errors)]))
    summary = _count_summary(counts, groups, spec, shown_ns, all_ns)
    if statuses:
        summary += ": " + ", ".join(f"{n} {s}" for s, n in statuses.most_common())
    if more:
        summary += f" (only the first {LIST_LIMIT} of each type: narrow with -l)"
    if errors:
        summary = "; ".join(errors) + (f"; {summary}" if total else "")
    return Result(
        not errors,
        summary,
        clip(api.mask(text), ctx),
        {"items": total, "truncated": more},
    )


def _count_summary(
    counts: dict[str, int],
    groups: list[tuple[Resource, list]],
    spec: dict,
    namespace: str | None,
    all_ns: bool,
) -> str:
    where = " in all namespaces" if all_ns else ""
    if namespace and any(r.namespaced for r, _ in groups):
        where = f" in namespace {namespace}"
    if len(counts) == 1:
        (plural, n), res = next(iter(counts.items())), groups[0][0]
        names = [n for _, ns in groups for n in ns if n]
        if n == 1 and len(names) == 1:
            return f"{res.singular} {names[0]}{where}"
        return f"{n} {plural if n != 1 else res.singular}{where}"
    parts = ", ".join(f"{n} {p}" for p, n in counts.items())
    return f"{sum(counts.values())} objects ({parts}){where}"


def _as_table(doc: dict) -> tuple[list[dict], list[dict]]:
    """(column definitions, rows) of a meta.k8s.io Table, or of a plain object or
    list when the server (an old aggregated API) does not make tables."""
    if doc.get("kind") == "Table":
        return doc.get("columnDefinitions") or [], doc.get("rows") or []
    items = doc.get("items") if isinstance(doc.get("items"), list) else [doc]
    defs = [
        {"name": "Name", "type": "string", "format": "name", "priority": 0},
        {"name": "Age", "type": "string", "format": "", "priority": 0},
    ]
    rows = [
        {
            "cells": [
                (item.get("metadata") or {}).get("name", ""),
                age((item.get("metadata") or {}).get("creationTimestamp")),
            ],
            "object": {"metadata": item.get("metadata") or {}},
        }
        for item in items
        if isinstance(item, dict)
    ]
    return defs, rows


def _render(
    res: Resource,
    defs: list[dict],
    rows: list[dict],
    spec: dict,
    all_ns: bool,
    many: bool,
) -> tuple[str, Counter[str]]:
    wide = spec.get("output") == "wide"
    keep = [i for i, c in enumerate(defs) if wide or not c.get("priority")]
    header = [str(defs[i].get("name", "")).upper() for i in keep]
    name_at = next(
        (j for j, i in enumerate(keep) if defs[i].get("format") == "name"), 0
    )
    status_at = next(
        (j for j, i in enumerate(keep) if defs[i].get("name") == "Status"), None
    )
    label_columns = spec.get("label_columns") or []
    header += [c.rsplit("/", 1)[-1].upper() for c in label_columns]
    if spec.get("show_labels"):
        header.append("LABELS")
    namespaced = all_ns and res.namespaced
    if namespaced:
        header.insert(0, "NAMESPACE")
    table = [] if spec.get("no_headers") else [header]
    statuses: Counter[str] = Counter()
    for row in rows:
        cells = row.get("cells") or []
        values = [cell(cells[i]) if i < len(cells) else "" for i in keep]
        if status_at is not None and res.kind == "Pod":
            statuses[values[status_at]] += 1
        if many and values:
            values[name_at] = f"{res.shown}/{values[name_at]}"
        meta = (row.get("object") or {}).get("metadata") or {}
        row_labels = meta.get("labels") or {}
        values += [str(row_labels.get(c, "")) for c in label_columns]
        if spec.get("show_labels"):
            values.append(labels(row_labels))
        if namespaced:
            values.insert(0, str(meta.get("namespace", "")))
        table.append(values)
    return columns(table), statuses


def _tidy(obj: dict, res: Resource) -> dict:
    """An object as kubectl prints it: apiVersion and kind set, managedFields
    left out, and (should a secret get here) its values masked."""
    obj.setdefault("apiVersion", res.api_version)
    obj.setdefault("kind", res.kind)
    meta = obj.get("metadata") or {}
    meta.pop("managedFields", None)
    if obj.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(obj.get(key), dict):
                obj[key] = {k: redaction.MASK for k in obj[key]}
        if LAST_APPLIED in (meta.get("annotations") or {}):
            meta["annotations"][LAST_APPLIED] = redaction.MASK
    return obj


def _get_objects(
    api: Api,
    spec: dict,
    groups: list[tuple[Resource, list[str | None]]],
    optional: set[Resource],
    namespace: str,
    all_ns: bool,
    ctx: Context,
) -> Result:
    found: list[tuple[Resource, dict]] = []
    errors: list[str] = []
    more = False
    for res, names in groups:
        fetched = _fetch(
            api, spec, res, names, optional, namespace, all_ns, errors, table=False
        )
        for name, doc in fetched:
            if name:
                found.append((res, _tidy(doc, res)))
            else:
                more |= bool((doc.get("metadata") or {}).get("continue"))
                found += [(res, _tidy(i, res)) for i in doc.get("items") or []]
    output = spec["output"]
    single = (
        len(spec["objects"]) == 1 and spec["objects"][0].get("name") and len(found) == 1
    )
    if output == "name":
        text = "\n".join(
            f"{res.shown}/{(o.get('metadata') or {}).get('name', '')}"
            for res, o in found
        )
    else:
        doc = (
            found[0][1]
            if single
            else {
                "apiVersion": "v1",
                "items": [o for _, o in found],
                "kind": "List",
                "metadata": {"resourceVersion": ""},
            }
        )
        if output == "json":
            text = json.dumps(doc, indent=4, ensure_ascii=False)
        else:
            text = yaml.safe_dump(doc, default_flow_style=False, allow_unicode=True)
    if errors:
        text = "\n".join(filter(None, [text, *(f"Error: {e}" for e in errors)]))
    kinds = Counter(res.plural for res, _ in found)
    summary = (
        ", ".join(f"{n} {p}" for p, n in kinds.items()) if found else "no objects"
    ) + f" as {output}"
    if more:
        summary += f" (only the first {LIST_LIMIT}: narrow with -l)"
    if errors:
        summary = "; ".join(errors) + f"; {summary}"
    return Result(not errors, summary, clip(api.mask(text), ctx), {"items": len(found)})


# --- describe ---------------------------------------------------------------------


def describe(api: Api, spec: dict[str, Any], namespace: str, ctx: Context) -> Result:
    all_ns = bool(spec.get("all_namespaces"))
    texts: list[str] = []
    described: list[str] = []
    seen: list[dict] = []
    cut = False
    groups, optional = _resources(api, spec["objects"])
    for res, names in groups:
        where = _where(res, namespace, all_ns)
        for name in names:
            if name:
                ask = Ask("get", res.plural, where, name, res.singular)
                docs = [api.get(res.path(where, name), ask).json()]
            else:
                ask = Ask("list", res.plural, where)
                query = {
                    "limit": describing.MAX_OBJECTS + 1,
                    "labelSelector": spec.get("selector"),
                }
                try:
                    listed = api.get(res.path(where), ask, query).json()
                except ApiError as exc:
                    if _skippable(exc, name, res, optional):
                        continue
                    raise
                docs = listed.get("items") or []
                if len(docs) > describing.MAX_OBJECTS:
                    cut, docs = True, docs[: describing.MAX_OBJECTS]
            for doc in docs:
                events, unread = None, None
                if spec.get("show_events", True):
                    try:
                        events = describing.events(api, res, doc)
                    except ApiError as exc:
                        if exc.timed_out or exc.status is None:
                            raise
                        unread = exc.summary  # kubectl shows the object all the same
                seen += events or []
                texts.append(describing.describe(res, doc, events, unread))
                meta = doc.get("metadata") or {}
                described.append(f"{res.singular}/{meta.get('name', '')}")
    if not texts:
        return Result(True, _none_found(namespace).rstrip("."), _none_found(namespace))
    text = "\n\n\n".join(texts)
    if cut:
        text += (
            f"\n\n(only the first {describing.MAX_OBJECTS} described: "
            "narrow with a name or -l)"
        )
    warnings = describing.warning_summary(seen)
    kinds = Counter(d.split("/")[0] for d in described)
    summary = (
        f"described {described[0]}"
        if len(described) == 1
        else "described " + ", ".join(f"{n} {k}s" for k, n in kinds.items())
    )
    if all_ns:
        summary += " in all namespaces"
    elif any(r.namespaced for r, _ in groups):
        summary += f" in namespace {namespace}"
    if warnings:
        summary += f": {warnings}"
    return Result(True, summary, clip(api.mask(text), ctx), {"items": len(texts)})


# --- logs -------------------------------------------------------------------------


def _ready(pod: dict) -> tuple[bool, str]:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", cond.get("lastTransitionTime") or ""
    return False, ""


def _logging_order(pod: dict) -> tuple:
    """kubectl's podutils.ByLogging: assigned, running, ready, ready longest, most
    restarts, oldest first."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = {"Unknown": 1, "Pending": 2}.get(status.get("phase", ""), 0)
    ready, since = _ready(pod)
    restarts = max(
        [c.get("restartCount", 0) for c in status.get("containerStatuses") or []] or [0]
    )
    created = (pod.get("metadata") or {}).get("creationTimestamp") or "~"
    return (
        0 if spec.get("nodeName") else 1,
        phase,
        0 if ready else 1,
        (since or "~") if ready else "",
        -restarts,
        created,
    )


def _list_pods(api: Api, namespace: str, selector: str) -> list[dict]:
    ask = Ask("list", "pods", namespace)
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods"
    doc = api.get(path, ask, {"labelSelector": selector, "limit": LIST_LIMIT}).json()
    return [p for p in doc.get("items") or [] if isinstance(p, dict)]


def _pod_for(api: Api, res: Resource, name: str, namespace: str) -> tuple[dict, int]:
    """The pod kubectl would read for `logs TYPE/NAME`, and how many there were."""
    where = namespace if res.namespaced else None
    obj = api.get(
        res.path(where, name), Ask("get", res.plural, where, name, res.singular)
    ).json()
    selector = label_selector((obj.get("spec") or {}).get("selector"))
    if not selector:
        raise ApiError(f"{res.shown}/{name} has no pod selector: logs need a pod")
    pods = _list_pods(api, namespace, selector)
    if not pods:
        raise ApiError(
            f"{res.shown}/{name} has no pods (selector {selector}) in namespace "
            f"{namespace}"
        )
    return sorted(pods, key=_logging_order)[0], len(pods)


def _containers(pod: dict, spec: dict, notes: list[str]) -> list[str]:
    pod_spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in pod_spec.get("containers") or []]
    if spec.get("all_containers"):
        return (
            [c.get("name", "") for c in pod_spec.get("initContainers") or []]
            + names
            + [c.get("name", "") for c in pod_spec.get("ephemeralContainers") or []]
        )
    if spec.get("container"):
        return [spec["container"]]
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    default = annotations.get("kubectl.kubernetes.io/default-container")
    chosen = default if default in names else (names[0] if names else "")
    if len(names) > 1:
        notes.append(f'Defaulted container "{chosen}" out of: {", ".join(names)}')
    return [chosen] if chosen else []


def logs(api: Api, spec: dict[str, Any], namespace: str, ctx: Context) -> Result:
    notes: list[str] = []
    tail = spec.get("tail")
    if spec.get("selector"):
        pods = _list_pods(api, namespace, spec["selector"])
        if not pods:
            return Result(
                True,
                f"No pods match {spec['selector']} in namespace {namespace}",
                _none_found(namespace),
            )
        if tail is None:
            tail = SELECTOR_TAIL
        if len(pods) > MAX_LOG_PODS:
            notes.append(f"{len(pods)} pods match; read the first {MAX_LOG_PODS}")
            pods = pods[:MAX_LOG_PODS]
    else:
        obj = spec["object"]
        res = discover(api, obj["type"])
        if res.kind == "Pod":
            path = res.path(namespace, obj["name"])
            pods = [
                api.get(path, Ask("get", "pods", namespace, obj["name"], "pod")).json()
            ]
        else:
            pod, count = _pod_for(api, res, obj["name"], namespace)
            if count > 1:
                notes.append(f"Found {count} pods, using pod/{pod['metadata']['name']}")
            pods = [pod]
    streams = [
        ((p.get("metadata") or {}).get("name", ""), c)
        for p in pods
        for c in _containers(p, spec, notes)
    ]
    budget = max(4096, ctx.output_cap - NOTE_ROOM - 512)
    parts: list[str] = []
    skipped = 0
    for pod_name, container in streams:
        params = {
            "container": container,
            "tailLines": None if tail in (None, "-1", -1) else int(tail),
            "sinceSeconds": _seconds(spec["since"]) if spec.get("since") else None,
            "sinceTime": spec.get("since_time"),
            "previous": bool(spec.get("previous")),
            "timestamps": bool(spec.get("timestamps")),
            "limitBytes": spec.get("limit_bytes"),
        }
        path = (
            f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/"
            f"{quote(pod_name, safe='')}/log"
        )
        ask = Ask("get", "pods/log", namespace, pod_name, "pod")
        try:
            reply = api.get(path, ask, params, accept="*/*", limit=budget, keep="tail")
        except ApiError as exc:
            if exc.timed_out and exc.partial:
                exc.output = _tail_text(exc.partial, budget)[0]
            raise
        text = reply.text()
        skipped += reply.skipped
        if reply.skipped:
            text = text.split("\n", 1)[-1]  # the first line was cut in two
        if spec.get("prefix"):
            text = "".join(
                f"[pod/{pod_name}/{container}] {line}\n" for line in text.splitlines()
            )
        parts.append(text)
    text = "".join(p if p.endswith("\n") or not p else p + "\n" for p in parts)
    text, dropped = _tail_text(api.mask(text).encode(), budget)
    skipped += dropped
    lines = text.count("\n")
    subject = (
        f"pod/{streams[0][0]} ({streams[0][1]})"
        if len(streams) == 1
        else f"{len(streams)} containers in {len({s[0] for s in streams})} pods"
    )
    summary = f"logs of {subject}: {lines} line{'s' if lines != 1 else ''}"
    if skipped:
        summary += f", the last {len(text.encode()) // 1024} KB shown"
        text = f"… {skipped} earlier bytes not shown\n{text}"
    if notes:
        summary += f" ({'; '.join(notes)})"
    return Result(
        True,
        summary,
        clip(text, ctx),
        {
            "lines": lines,
            "skipped_bytes": skipped,
            "pods": len({s[0] for s in streams}),
        },
    )


def _tail_text(raw: bytes, limit: int) -> tuple[str, int]:
    """The last `limit` bytes of `raw`, from a line start, and how many were dropped."""
    if len(raw) <= limit:
        return raw.decode("utf-8", "replace"), 0
    kept = raw[len(raw) - limit :]
    cut = kept.find(b"\n")
    if 0 <= cut < len(kept) - 1:
        kept = kept[cut + 1 :]
    return kept.decode("utf-8", "replace"), len(raw) - len(kept)


# --- top --------------------------------------------------------------------------


def _metrics_missing(exc: ApiError, name: str | None, what: str) -> ApiError:
    if exc.status == 404 and name and exc.details.get("name"):
        return ApiError(
            f"No metrics for {what} {name}: no such {what}, or metrics-server has "
            "not measured it yet",
            exc.output,
            status=404,
        )
    if exc.status in {404, 503}:
        return ApiError(
            "The metrics API (metrics.k8s.io/v1beta1) is not available: is "
            "metrics-server installed and running?",
            exc.output,
            status=exc.status,
        )
    return exc


def top(api: Api, spec: dict[str, Any], namespace: str, ctx: Context) -> Result:
    if spec["what"] == "nodes":
        return _top_nodes(api, spec, ctx)
    all_ns = bool(spec.get("all_namespaces"))
    name = spec.get("name")
    if all_ns:
        path, where = f"{METRICS}/pods", None
    else:
        path, where = (
            f"{METRICS}/namespaces/{quote(namespace, safe='')}/pods",
            namespace,
        )
    if name:
        path += f"/{quote(name, safe='')}"
    ask = Ask("get" if name else "list", "pods.metrics.k8s.io", where, name, "pod")
    try:
        doc = api.get(path, ask, {"labelSelector": spec.get("selector")}).json()
    except ApiError as exc:
        raise _metrics_missing(exc, name, "pod") from None
    items = (
        [doc] if name else [i for i in doc.get("items") or [] if isinstance(i, dict)]
    )
    if not items:
        return Result(True, _none_found(where).rstrip("."), _none_found(where))
    rows: list[
        tuple[str, str, str, Decimal, Decimal]
    ] = []  # ns, pod, container, cpu, mem
    for item in items:
        meta = item.get("metadata") or {}
        per = sorted(
            (
                c.get("name", ""),
                quantity((c.get("usage") or {}).get("cpu", "0")),
                quantity((c.get("usage") or {}).get("memory", "0")),
            )
            for c in item.get("containers") or []
        )
        if spec.get("containers"):
            rows += [(meta.get("namespace", ""), meta.get("name", ""), *c) for c in per]
        else:
            rows.append(
                (
                    meta.get("namespace", ""),
                    meta.get("name", ""),
                    "",
                    sum((c[1] for c in per), Decimal(0)),
                    sum((c[2] for c in per), Decimal(0)),
                )
            )
    if spec.get("sort_by"):
        at = 3 if spec["sort_by"] == "cpu" else 4
        rows.sort(key=lambda r: r[at], reverse=True)
    header = ["POD", "NAME"] if spec.get("containers") else ["NAME"]
    header += ["CPU(cores)", "MEMORY(bytes)"]
    if all_ns:
        header.insert(0, "NAMESPACE")
    table = [] if spec.get("no_headers") else [header]
    for ns, pod, container, cpu, mem in rows:
        row = [pod, container] if spec.get("containers") else [pod]
        row += [f"{millicores(cpu)}m", f"{mebibytes(mem)}Mi"]
        if all_ns:
            row.insert(0, ns)
        table.append(row)
    total_cpu = sum((r[3] for r in rows), Decimal(0))
    total_mem = sum((r[4] for r in rows), Decimal(0))
    busiest = max(rows, key=lambda r: r[3])
    where_text = " in all namespaces" if all_ns else f" in namespace {namespace}"
    count = len(items)
    summary = (
        f"{count} pod{'s' if count != 1 else ''}{where_text}: "
        f"{millicores(total_cpu)}m CPU, {mebibytes(total_mem)}Mi memory in all"
    )
    if count > 1:
        summary += f"; most CPU: {busiest[1]} ({millicores(busiest[3])}m)"
    return Result(True, summary, clip(api.mask(columns(table)), ctx), {"items": count})


def _top_nodes(api: Api, spec: dict[str, Any], ctx: Context) -> Result:
    name = spec.get("name")
    path = f"{METRICS}/nodes" + (f"/{quote(name, safe='')}" if name else "")
    ask = Ask("get" if name else "list", "nodes.metrics.k8s.io", None, name, "node")
    selector = {"labelSelector": spec.get("selector")}
    try:
        doc = api.get(path, ask, selector).json()
    except ApiError as exc:
        raise _metrics_missing(exc, name, "node") from None
    items = (
        [doc] if name else [i for i in doc.get("items") or [] if isinstance(i, dict)]
    )
    if not items:
        return Result(True, "No resources found", "No resources found")
    nodes_path = "/api/v1/nodes" + (f"/{quote(name, safe='')}" if name else "")
    nodes_doc = api.get(
        nodes_path,
        Ask("get" if name else "list", "nodes", None, name, "node"),
        selector,
    ).json()
    nodes = [nodes_doc] if name else nodes_doc.get("items") or []
    allocatable = {
        (n.get("metadata") or {}).get("name"): (n.get("status") or {}).get(
            "allocatable"
        )
        or {}
        for n in nodes
    }
    rows = []
    for item in items:
        node = (item.get("metadata") or {}).get("name", "")
        usage = item.get("usage") or {}
        cpu, mem = quantity(usage.get("cpu", "0")), quantity(usage.get("memory", "0"))
        alloc = allocatable.get(node) or {}
        cpu_pct = _percent(cpu, alloc.get("cpu"))
        mem_pct = _percent(mem, alloc.get("memory"))
        rows.append((node, cpu, cpu_pct, mem, mem_pct))
    if spec.get("sort_by"):
        at = 1 if spec["sort_by"] == "cpu" else 3
        rows.sort(key=lambda r: r[at], reverse=True)
    table = (
        []
        if spec.get("no_headers")
        else [["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]]
    )
    for node, cpu, cpu_pct, mem, mem_pct in rows:
        table.append(
            [node, f"{millicores(cpu)}m", cpu_pct, f"{mebibytes(mem)}Mi", mem_pct]
        )
    hottest = max(rows, key=lambda r: (r[2] != "<unknown>", _pct(r[2])))
    summary = f"{len(rows)} node{'s' if len(rows) != 1 else ''}"
    summary += f"; busiest CPU: {hottest[0]} at {hottest[2]}"
    return Result(
        True, summary, clip(api.mask(columns(table)), ctx), {"items": len(rows)}
    )


def _percent(used: Decimal, total: object) -> str:
    try:
        whole = quantity(total) if total is not None else Decimal(0)
    except ValueError:
        whole = Decimal(0)
    if not whole:
        return "<unknown>"
    return f"{int(used * 100 / whole)}%"


def _pct(text: str) -> int:
    return int(text.rstrip("%")) if text.rstrip("%").isdigit() else -1


VERBS = {"get": get, "describe": describe, "logs": logs, "top": top}
