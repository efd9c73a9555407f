"""`kubectl describe`, kept reasonable: an object's main fields (what a responder
looks for: status, containers and their restarts, replicas, conditions) and its
events, laid out as kubectl lays them out, not byte for byte.

A secret's values are never printed (only their sizes, as kubectl does), nor the
last-applied-configuration annotation; environment values whose name says secret
are masked."""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

from ... import redaction
from .client import Api, Ask, Resource
from .format import NONE, age, columns, label_selector, timestamp

MAX_OBJECTS = 20  # `describe pods` without a name: the first ones only
EVENT_LIMIT = 500
SKIPPED_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration"}


def events(api: Api, res: Resource, doc: dict) -> list[dict]:
    """The object's events, oldest first, as kubectl finds them (by the involved
    object's kind, name, namespace and uid)."""
    meta = doc.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    fields = {
        "involvedObject.kind": doc.get("kind") or res.kind,
        "involvedObject.name": meta.get("name", ""),
        "involvedObject.namespace": namespace,
    }
    if meta.get("uid"):
        fields["involvedObject.uid"] = meta["uid"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(fields.items()))
    path = (
        f"/api/v1/namespaces/{quote(namespace, safe='')}/events"
        if namespace
        else "/api/v1/events"
    )
    reply = api.get(
        path,
        Ask("list", "events", namespace or None),
        {"fieldSelector": selector, "limit": EVENT_LIMIT},
    )
    items = [e for e in reply.json().get("items") or [] if isinstance(e, dict)]
    return sorted(items, key=lambda e: _last_seen(e) or "")


def _last_seen(event: dict) -> str | None:
    return (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
    )


def warning_summary(found: list[dict]) -> str:
    """`3 warning events (BackOff x2, Unhealthy)`, or ""."""
    reasons: Counter[str] = Counter()
    for event in found:
        if event.get("type") == "Warning":
            reasons[event.get("reason") or "?"] += int(event.get("count") or 1)
    if not reasons:
        return ""
    total = sum(reasons.values())
    listed = ", ".join(
        f"{reason} x{n}" if n > 1 else reason for reason, n in reasons.most_common(3)
    )
    return f"{total} warning event{'s' if total != 1 else ''} ({listed})"


class Sheet:
    """Lines of `Key:  value`, each level indented by two spaces. Top-level values
    line up in one column, as kubectl's tabwriter lines them up."""

    def __init__(self) -> None:
        self.lines: list[str | tuple[str, str]] = []

    def add(
        self, key: str, value: object = None, level: int = 0, width: int = 0
    ) -> None:
        lead = "  " * level
        if value is None:
            self.lines.append(f"{lead}{key}:")
        elif level == 0 and not width:
            self.lines.append((key, str(value)))  # laid out in text()
        else:
            self.lines += self._entry(f"{lead}{key}:", str(value), width)

    @staticmethod
    def _entry(head: str, text: str, width: int) -> list[str]:
        head = head.ljust(max(width, len(head)) + 2)
        first, *rest = text.split("\n") if text else [""]
        return [f"{head}{first}".rstrip()] + [" " * len(head) + line for line in rest]

    def pairs(self, key: str, mapping: object, level: int = 0, width: int = 0) -> None:
        if not isinstance(mapping, dict) or not mapping:
            self.add(key, NONE, level, width)
            return
        self.add(
            key, "\n".join(f"{k}={v}" for k, v in sorted(mapping.items())), level, width
        )

    def text(self) -> str:
        width = max(
            (len(e[0]) + 1 for e in self.lines if isinstance(e, tuple)), default=0
        )
        out: list[str] = []
        for entry in self.lines:
            if isinstance(entry, tuple):
                out += self._entry(f"{entry[0]}:", entry[1], width)
            else:
                out.append(entry)
        return "\n".join(out)


def _annotations(meta: dict) -> dict:
    return {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in SKIPPED_ANNOTATIONS
    }


def _time(text: object) -> str:
    when = timestamp(text)
    return when.strftime("%a, %d %b %Y %H:%M:%S %z") if when else NONE


def describe(
    res: Resource, doc: dict, found: list[dict] | None, unread: str | None = None
) -> str:
    """The object's sheet; `found` its events (None: not asked for), `unread` why
    they could not be read."""
    meta = doc.get("metadata") or {}
    kind = doc.get("kind") or res.kind
    sheet = Sheet()
    sheet.add("Name", meta.get("name", ""))
    if res.namespaced:
        sheet.add("Namespace", meta.get("namespace", ""))
    if kind != "Pod":
        sheet.add(
            "CreationTimestamp",
            _time(meta.get("creationTimestamp")),
        )
    sheet.pairs("Labels", meta.get("labels"))
    annotations = _annotations(meta)
    if annotations:
        sheet.add(
            "Annotations",
            "\n".join(f"{k}: {v}" for k, v in sorted(annotations.items())),
        )
    else:
        sheet.add("Annotations", NONE)
    spec, status = doc.get("spec") or {}, doc.get("status") or {}
    {
        "Pod": _pod,
        "Deployment": _workload,
        "StatefulSet": _workload,
        "ReplicaSet": _workload,
        "DaemonSet": _daemonset,
        "Service": _service,
        "Node": _node,
        "Secret": _secret,
        "ConfigMap": _configmap,
    }.get(kind, _generic)(sheet, doc, spec, status)
    owners = meta.get("ownerReferences") or []
    controller = next((o for o in owners if o.get("controller")), None)
    if controller and kind != "Pod":
        sheet.add(
            "Controlled By",
            f"{controller.get('kind')}/{controller.get('name')}",
        )
    if unread:
        sheet.add("Events", f"<not read: {unread}>")
    elif found is not None:
        _events(sheet, found)
    return sheet.text()


def _conditions(sheet: Sheet, status: dict, with_reason: bool = False) -> None:
    conditions = status.get("conditions") or []
    if not conditions:
        return
    sheet.add("Conditions")
    head = ["Type", "Status"] + (["Reason"] if with_reason else [])
    rows = [head] + ([["-" * len(h) for h in head]] if with_reason else [])
    for cond in conditions:
        row = [str(cond.get("type", "")), str(cond.get("status", ""))]
        if with_reason:
            row.append(str(cond.get("reason") or ""))
        rows.append(row)
    sheet.lines += ["  " + line for line in columns(rows, padding=2).split("\n")]


def _state(state: object) -> tuple[str, list[tuple[str, str]]]:
    if not isinstance(state, dict) or not state:
        return "Waiting", []
    name, body = next(iter(state.items()))
    body = body or {}
    details = []
    if body.get("reason"):
        details.append(("Reason", str(body["reason"])))
    if body.get("message"):
        details.append(("Message", str(body["message"])))
    if "exitCode" in body:
        details.append(("Exit Code", str(body["exitCode"])))
    if body.get("startedAt"):
        details.append(("Started", _time(body["startedAt"])))
    if body.get("finishedAt"):
        details.append(("Finished", _time(body["finishedAt"])))
    return name.capitalize(), details


def _env(container: dict) -> list[tuple[str, str]]:
    """(name, value) pairs; a value whose name says secret is masked whatever its
    source, a secret reference named, never read."""
    found = []
    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        source = var.get("valueFrom") or {}
        if redaction.SECRET_NAME.search(name):
            value = redaction.MASK
        elif "value" in var:
            value = str(var.get("value"))
        elif source.get("secretKeyRef"):
            ref = source["secretKeyRef"]
            value = f"<set to the key '{ref.get('key')}' in secret '{ref.get('name')}'>"
        elif source.get("configMapKeyRef"):
            ref = source["configMapKeyRef"]
            value = (
                f"<set to the key '{ref.get('key')}' of config map '{ref.get('name')}'>"
            )
        elif source.get("fieldRef"):
            value = f"({source['fieldRef'].get('fieldPath')})"
        else:
            value = ""
        found.append((name, value))
    return found


def _container(sheet: Sheet, container: dict, status: dict | None, level: int) -> None:
    w = 18
    sheet.add(container.get("name", ""), None, level)
    if status and status.get("containerID"):
        sheet.add("Container ID", status["containerID"], level + 1, w)
    sheet.add("Image", container.get("image", ""), level + 1, w)
    ports = [
        f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}"
        for p in container.get("ports") or []
    ]
    sheet.add(
        "Port" + ("s" if len(ports) > 1 else ""), ", ".join(ports) or NONE, level + 1, w
    )
    if container.get("command"):
        sheet.add("Command", "\n".join(map(str, container["command"])), level + 1, w)
    if container.get("args"):
        sheet.add("Args", "\n".join(map(str, container["args"])), level + 1, w)
    if status is not None:
        name, details = _state(status.get("state"))
        sheet.add("State", name, level + 1, w)
        for key, value in details:
            sheet.add(key, value, level + 2, w)
        if status.get("lastState"):
            name, details = _state(status.get("lastState"))
            sheet.add("Last State", name, level + 1, w)
            for key, value in details:
                sheet.add(key, value, level + 2, w)
        sheet.add("Ready", str(bool(status.get("ready"))), level + 1, w)
        sheet.add("Restart Count", status.get("restartCount", 0), level + 1, w)
    resources = container.get("resources") or {}
    for key in ("limits", "requests"):
        if resources.get(key):
            sheet.add(key.capitalize(), None, level + 1)
            for name, value in sorted(resources[key].items()):
                sheet.add(name, value, level + 2, w)
    env = _env(container)
    if env:
        sheet.add("Environment", None, level + 1)
        width = max(len(n) for n, _ in env) + 2 * (level + 2) + 1
        for name, value in env:
            sheet.add(name, value, level + 2, width)
    else:
        sheet.add("Environment", NONE, level + 1, w)


def _pod(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    sheet.add("Service Account", spec.get("serviceAccountName") or NONE)
    node = spec.get("nodeName") or NONE
    if status.get("hostIP"):
        node = f"{node}/{status['hostIP']}"
    sheet.add("Node", node)
    sheet.add("Start Time", _time(status.get("startTime")))
    phase = status.get("phase", "")
    if (doc.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    sheet.add("Status", phase)
    if status.get("reason"):
        sheet.add("Reason", status["reason"])
    if status.get("message"):
        sheet.add("Message", status["message"])
    sheet.add("IP", status.get("podIP") or NONE)
    owners = (doc.get("metadata") or {}).get("ownerReferences") or []
    controller = next((o for o in owners if o.get("controller")), None)
    if controller:
        sheet.add(
            "Controlled By",
            f"{controller.get('kind')}/{controller.get('name')}",
        )
    for key, spec_key, status_key in (
        ("Init Containers", "initContainers", "initContainerStatuses"),
        ("Containers", "containers", "containerStatuses"),
    ):
        containers = spec.get(spec_key) or []
        if not containers:
            continue
        by_name = {s.get("name"): s for s in status.get(status_key) or []}
        sheet.add(key)
        for container in containers:
            _container(sheet, container, by_name.get(container.get("name"), {}), 1)
    _conditions(sheet, status)
    sheet.add("QoS Class", status.get("qosClass") or NONE)
    sheet.pairs("Node-Selectors", spec.get("nodeSelector"))


def _template(sheet: Sheet, spec: dict) -> None:
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    sheet.add("Pod Template")
    sheet.pairs("Labels", (template.get("metadata") or {}).get("labels"), 1, 18)
    sheet.add("Containers", None, 1)
    for container in pod_spec.get("containers") or []:
        _container(sheet, container, None, 2)


def _workload(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    sheet.add("Selector", label_selector(spec.get("selector")) or NONE)
    desired = spec.get("replicas", 1)
    if doc.get("kind") == "Deployment":
        total = status.get("replicas", 0)
        available = status.get("availableReplicas", 0)
        sheet.add(
            "Replicas",
            f"{desired} desired | {status.get('updatedReplicas', 0)} updated | "
            f"{total} total | {available} available | "
            f"{status.get('unavailableReplicas', 0)} unavailable",
        )
        strategy = spec.get("strategy") or {}
        sheet.add("StrategyType", strategy.get("type", ""))
        rolling = strategy.get("rollingUpdate") or {}
        if rolling:
            sheet.add(
                "RollingUpdateStrategy",
                f"{rolling.get('maxUnavailable', '')} max unavailable, "
                f"{rolling.get('maxSurge', '')} max surge",
            )
    else:
        sheet.add(
            "Replicas",
            f"{status.get('replicas', 0)} current / {desired} desired",
        )
        sheet.add(
            "Pods Status",
            f"{status.get('readyReplicas', 0)} Ready / "
            f"{status.get('availableReplicas', 0)} Available",
        )
    _template(sheet, spec)
    _conditions(sheet, status, with_reason=True)


def _daemonset(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    sheet.add("Selector", label_selector(spec.get("selector")) or NONE)
    sheet.add(
        "Desired Number of Nodes Scheduled",
        status.get("desiredNumberScheduled", 0),
    )
    sheet.add(
        "Current Number of Nodes Scheduled", status.get("currentNumberScheduled", 0)
    )
    sheet.add(
        "Number of Nodes Scheduled with Up-to-date Pods",
        status.get("updatedNumberScheduled", 0),
    )
    sheet.add(
        "Number of Nodes Scheduled with Available Pods",
        status.get("numberAvailable", 0),
    )
    sheet.add("Number of Nodes Misscheduled", status.get("numberMisscheduled", 0))
    sheet.add("Pods Status", f"{status.get('numberReady', 0)} Ready")
    _template(sheet, spec)


def _service(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    sheet.pairs("Selector", spec.get("selector"))
    sheet.add("Type", spec.get("type", "ClusterIP"))
    sheet.add("IP", spec.get("clusterIP") or NONE)
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        sheet.add(
            "LoadBalancer Ingress",
            ", ".join(i.get("ip") or i.get("hostname") or "" for i in ingress),
        )
    for port in spec.get("ports") or []:
        label = port.get("name") or NONE
        sheet.add(
            "Port",
            f"{label}  {port.get('port')}/{port.get('protocol', 'TCP')}",
        )
        sheet.add(
            "TargetPort",
            f"{port.get('targetPort', port.get('port'))}/{port.get('protocol', 'TCP')}",
        )
        if port.get("nodePort"):
            sheet.add(
                "NodePort",
                f"{label}  {port['nodePort']}/{port.get('protocol', 'TCP')}",
            )


def _node(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    sheet.add(
        "Unschedulable",
        str(bool(spec.get("unschedulable"))).lower(),
    )
    taints = [
        f"{t.get('key')}"
        + (f"={t['value']}" if t.get("value") else "")
        + f":{t.get('effect')}"
        for t in spec.get("taints") or []
    ]
    sheet.add("Taints", "\n".join(taints) or NONE)
    conditions = status.get("conditions") or []
    if conditions:
        sheet.add("Conditions")
        rows = [
            ["Type", "Status", "Reason", "Message"],
            ["----", "------", "------", "-------"],
        ]
        rows += [
            [
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "")),
                str(c.get("message", "")),
            ]
            for c in conditions
        ]
        sheet.lines += ["  " + line for line in columns(rows, padding=2).split("\n")]
    addresses = status.get("addresses") or []
    if addresses:
        sheet.add("Addresses")
        for address in addresses:
            sheet.add(address.get("type", ""), address.get("address", ""), 1, 14)
    for key in ("capacity", "allocatable"):
        if status.get(key):
            sheet.add(key.capitalize())
            for name, value in sorted(status[key].items()):
                sheet.add(name, value, 1, 20)
    info = status.get("nodeInfo") or {}
    if info:
        sheet.add("System Info")
        for key, label in (
            ("kubeletVersion", "Kubelet Version"),
            ("containerRuntimeVersion", "Container Runtime Version"),
            ("osImage", "OS Image"),
            ("kernelVersion", "Kernel Version"),
        ):
            if info.get(key):
                sheet.add(label, info[key], 1, 28)


def _secret(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    sheet.add("Type", doc.get("type", ""))
    sheet.lines += ["", "Data", "===="]
    for key, value in sorted((doc.get("data") or {}).items()):
        size = len(value or "") * 3 // 4 - str(value or "").count("=")
        sheet.lines.append(f"{key}:  {size} bytes")


def _configmap(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    sheet.lines += ["", "Data", "===="]
    for key, value in sorted((doc.get("data") or {}).items()):
        sheet.lines += [f"{key}:", "----", str(value), ""]


def _generic(sheet: Sheet, doc: dict, spec: dict, status: dict) -> None:
    """Any other kind: its spec's plain fields, then its status's conditions."""
    shown = {k: v for k, v in spec.items() if isinstance(v, str | int | float | bool)}
    if shown:
        sheet.add("Spec")
        for key, value in sorted(shown.items()):
            sheet.add(key, value, 1, 24)
    plain = {k: v for k, v in status.items() if isinstance(v, str | int | float | bool)}
    if plain:
        sheet.add("Status")
        for key, value in sorted(plain.items()):
            sheet.add(key, value, 1, 24)
    _conditions(sheet, status, with_reason=True)


def _events(sheet: Sheet, found: list[dict]) -> None:
    if not found:
        sheet.add("Events", NONE)
        return
    sheet.add("Events")
    rows = [
        ["Type", "Reason", "Age", "From", "Message"],
        ["----", "------", "----", "----", "-------"],
    ]
    for event in found:
        count = int(event.get("count") or 0)
        first = age(event.get("eventTime") or event.get("firstTimestamp"))
        series = event.get("series") or {}
        if series:
            seen = f"{age(series.get('lastObservedTime'))} (x{series.get('count')} over {first})"
        elif count > 1:
            seen = f"{age(event.get('lastTimestamp'))} (x{count} over {first})"
        else:
            seen = first
        source = (
            (event.get("source") or {}).get("component")
            or event.get("reportingComponent")
            or ""
        )
        rows.append(
            [
                str(event.get("type", "")),
                str(event.get("reason", "")),
                seen,
                str(source),
                " ".join(str(event.get("message", "")).split()),
            ]
        )
    sheet.lines += ["  " + line for line in columns(rows, padding=2).split("\n")]
