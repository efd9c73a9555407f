"""The kubectl family against a stand-in Kubernetes API.

The stand-in (pytest-httpserver) serves what a cluster serves for kubectl's reading
commands: discovery, server-side Tables for `get`, PodList and Pod objects,
Deployments, Services, Nodes, Event lists selected by involvedObject, PodMetricsList
and NodeMetricsList, and log text honouring tailLines, container and previous. It
answers 401 without the bearer token, Status objects for 403 and 404, and echoes
the token in places (an event, a log line, an annotation) so redaction is tested.

The faithfulness check runs the real kubectl (v1.32) against the same stand-in: it
must accept the answers, and print what the family prints."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer
from pytest_httpserver.httpserver import METHOD_ALL
from werkzeug import Request, Response

from probes import redaction
from probes.binding import MANUAL, PROBE
from probes.families.kubectl import FAMILY
from probes.families.kubectl.format import human_duration, mebibytes, millicores
from probes.family import Call, Family, Preview
from probes.runtime import Context

TOKEN = "kube-token-7Qx9-Zp2rLw8sVb4NcYd"
SECRET_VALUE = "sk_live_51Hb-api-key-do-not-print"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture(autouse=True)
def _now() -> None:
    """Ages ("2m", "10m") are drawn from the time of the test, not of collection:
    in the whole suite a test may run minutes after this module was imported."""
    global NOW
    NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def ago(**delta: float) -> str:
    return (NOW - dt.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the stand-in cluster ------------------------------------------------------------


def pod(
    name: str,
    *,
    app: str,
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    node: str = "node-1",
    ip: str = "10.244.1.7",
    containers: tuple[str, ...] = ("api",),
    created: str | None = None,
    waiting: str | None = None,
    namespace: str = "yomira",
) -> dict:
    statuses = []
    for c in containers:
        state: dict = (
            {"waiting": {"reason": waiting, "message": "back-off 5m0s restarting"}}
            if waiting
            else {"running": {"startedAt": ago(days=2)}}
        )
        status: dict = {
            "name": c,
            "ready": ready,
            "restartCount": restarts,
            "image": f"ghcr.io/yomira/{c}:1.4.2",
            "imageID": f"ghcr.io/yomira/{c}@sha256:ab12",
            "containerID": f"containerd://{c}0a1b2c3d",
            "started": ready,
            "state": state,
        }
        if restarts:
            status["lastState"] = {
                "terminated": {
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "startedAt": ago(hours=1),
                    "finishedAt": ago(minutes=5),
                }
            }
        statuses.append(status)
    return {
        "metadata": {
            "name": name,
            "generateName": name.rsplit("-", 1)[0] + "-",
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "4711",
            "creationTimestamp": created or ago(days=5),
            "labels": {"app": app, "pod-template-hash": "7d9c6b5f4"},
            "annotations": {"yomira.app/deploy-token": TOKEN}
            if name.endswith("abcde")
            else {},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{app}-7d9c6b5f4",
                    "uid": f"rs-{app}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {
            "containers": [
                {
                    "name": c,
                    "image": f"ghcr.io/yomira/{c}:1.4.2",
                    "ports": [{"containerPort": 8000, "protocol": "TCP"}],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DB_PASSWORD", "value": "hunter2-db-password"},
                        {
                            "name": "API_KEY",
                            "valueFrom": {
                                "secretKeyRef": {"name": "api", "key": "key"}
                            },
                        },
                    ],
                    "resources": {
                        "limits": {"memory": "512Mi"},
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                    },
                }
                for c in containers
            ],
            "nodeName": node,
            "serviceAccountName": "api",
            "restartPolicy": "Always",
        },
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": ago(days=2),
                },
                {"type": "PodScheduled", "status": "True"},
            ],
            "hostIP": "10.0.0.4",
            "podIP": ip,
            "startTime": created or ago(days=5),
            "containerStatuses": statuses,
            "qosClass": "Burstable",
        },
    }


def deployment(name: str, replicas: int, available: int) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "yomira",
            "uid": f"uid-deploy-{name}",
            "creationTimestamp": ago(days=30),
            "labels": {"app": name},
            "annotations": {
                "deployment.kubernetes.io/revision": "7",
                "kubectl.kubernetes.io/last-applied-configuration": '{"spec":{}}',
            },
            "generation": 7,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": name, "image": f"ghcr.io/yomira/{name}:1.4.2"}
                    ]
                },
            },
        },
        "status": {
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": replicas - available,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available else "False",
                    "reason": "MinimumReplicasAvailable",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                },
            ],
        },
    }


def node(name: str, cpu: str, memory: str) -> dict:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": ago(days=90),
            "labels": {"kubernetes.io/hostname": name},
        },
        "spec": {},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.4"}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.4",
                "containerRuntimeVersion": "containerd://1.7.27",
                "osImage": "Ubuntu 24.04.2 LTS",
                "kernelVersion": "6.8.0-1021",
            },
        },
    }


def event(
    name: str,
    obj: dict,
    kind: str,
    *,
    type_: str,
    reason: str,
    message: str,
    count: int = 1,
) -> dict:
    meta = obj["metadata"]
    return {
        "metadata": {"name": name, "namespace": meta.get("namespace", "default")},
        "involvedObject": {
            "kind": kind,
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "v1",
        },
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(minutes=10),
        "lastTimestamp": ago(minutes=2),
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    doc = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        doc["details"] = details
    return doc


POD_COLUMNS = [
    ("Name", "name", 0),
    ("Ready", "", 0),
    ("Status", "", 0),
    ("Restarts", "", 0),
    ("Age", "", 0),
    ("IP", "", 1),
    ("Node", "", 1),
    ("Nominated Node", "", 1),
    ("Readiness Gates", "", 1),
]
DEPLOY_COLUMNS = [
    ("Name", "name", 0),
    ("Ready", "", 0),
    ("Up-to-date", "", 0),
    ("Available", "", 0),
    ("Age", "", 0),
    ("Containers", "", 1),
    ("Images", "", 1),
    ("Selector", "", 1),
]
SERVICE_COLUMNS = [
    ("Name", "name", 0),
    ("Type", "", 0),
    ("Cluster-IP", "", 0),
    ("External-IP", "", 0),
    ("Port(s)", "", 0),
    ("Age", "", 0),
    ("Selector", "", 1),
]
NODE_COLUMNS = [
    ("Name", "name", 0),
    ("Status", "", 0),
    ("Roles", "", 0),
    ("Age", "", 0),
    ("Version", "", 0),
    ("Internal-IP", "", 1),
]


def _age(obj: dict) -> str:
    created = dt.datetime.fromisoformat(
        obj["metadata"]["creationTimestamp"].replace("Z", "+00:00")
    )
    return human_duration((NOW - created).total_seconds())


def pod_cells(p: dict) -> list:
    statuses = p["status"]["containerStatuses"]
    ready = sum(1 for s in statuses if s["ready"])
    restarts = sum(s["restartCount"] for s in statuses)
    reason = next(
        (s["state"]["waiting"]["reason"] for s in statuses if "waiting" in s["state"]),
        p["status"]["phase"],
    )
    shown = f"{restarts} (5m ago)" if restarts else "0"
    return [
        p["metadata"]["name"],
        f"{ready}/{len(statuses)}",
        reason,
        shown,
        _age(p),
        p["status"]["podIP"],
        p["spec"]["nodeName"],
        "<none>",
        "<none>",
    ]


def deploy_cells(d: dict) -> list:
    s = d["status"]
    return [
        d["metadata"]["name"],
        f"{s['readyReplicas']}/{d['spec']['replicas']}",
        s["updatedReplicas"],
        s["availableReplicas"],
        _age(d),
        d["metadata"]["name"],
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        f"app={d['metadata']['name']}",
    ]


def service_cells(s: dict) -> list:
    return [
        s["metadata"]["name"],
        "ClusterIP",
        s["spec"]["clusterIP"],
        "<none>",
        "80/TCP",
        _age(s),
        "app=api",
    ]


def node_cells(n: dict) -> list:
    return [n["metadata"]["name"], "Ready", "<none>", _age(n), "v1.32.4", "10.0.0.4"]


def namespace_cells(n: dict) -> list:
    return [n["metadata"]["name"], "Active", _age(n)]


def secret_cells(x: dict) -> list:
    return [x["metadata"]["name"], x["type"], len(x.get("data") or {}), _age(x)]


@dataclass
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    columns: list
    cells: Any
    short: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


KINDS = {
    "pods": Kind(
        "", "v1", "pods", "Pod", True, POD_COLUMNS, pod_cells, ["po"], ["all"]
    ),
    "services": Kind(
        "",
        "v1",
        "services",
        "Service",
        True,
        SERVICE_COLUMNS,
        service_cells,
        ["svc"],
        ["all"],
    ),
    "nodes": Kind("", "v1", "nodes", "Node", False, NODE_COLUMNS, node_cells, ["no"]),
    "namespaces": Kind(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        [("Name", "name", 0), ("Status", "", 0), ("Age", "", 0)],
        namespace_cells,
        ["ns"],
    ),
    "secrets": Kind(
        "",
        "v1",
        "secrets",
        "Secret",
        True,
        [("Name", "name", 0), ("Type", "", 0), ("Data", "", 0), ("Age", "", 0)],
        secret_cells,
    ),
    "deployments": Kind(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        DEPLOY_COLUMNS,
        deploy_cells,
        ["deploy"],
        ["all"],
    ),
}


def selector_matches(selector: str | None, labels: dict) -> bool:
    for part in filter(None, (selector or "").split(",")):
        if "!=" in part:
            key, value = part.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif labels.get(part.strip()) is None:
            return False
    return True


def field_matches(selector: str | None, obj: dict) -> bool:
    for part in filter(None, (selector or "").split(",")):
        path, _, value = part.partition("=")
        found: Any = obj
        for key in path.split("."):
            found = found.get(key, "") if isinstance(found, dict) else ""
        if str(found) != value:
            return False
    return True


class Cluster:
    """The stand-in API server's state and its request handler."""

    def __init__(self) -> None:
        api = pod("api-7d9c6b5f4-abcde", app="api")
        api2 = pod(
            "api-7d9c6b5f4-fghij",
            app="api",
            ip="10.244.2.9",
            node="node-2",
            created=ago(days=1),
        )
        worker = pod(
            "worker-5c8d7-xk2p9",
            app="worker",
            ready=False,
            restarts=4,
            waiting="CrashLoopBackOff",
            ip="10.244.1.12",
            containers=("worker", "metrics"),
        )
        self.objects: dict[str, list[dict]] = {
            "pods": [api, api2, worker],
            "deployments": [deployment("api", 2, 2), deployment("worker", 1, 0)],
            "services": [
                {
                    "metadata": {
                        "name": "api",
                        "namespace": "yomira",
                        "uid": "uid-svc-api",
                        "creationTimestamp": ago(days=30),
                        "labels": {"app": "api"},
                    },
                    "spec": {
                        "type": "ClusterIP",
                        "clusterIP": "10.96.12.34",
                        "selector": {"app": "api"},
                        "ports": [
                            {
                                "name": "http",
                                "port": 80,
                                "targetPort": 8000,
                                "protocol": "TCP",
                            }
                        ],
                    },
                    "status": {"loadBalancer": {}},
                }
            ],
            "nodes": [
                node("node-1", "4", "16318788Ki"),
                node("node-2", "4", "16318788Ki"),
            ],
            "namespaces": [
                {
                    "metadata": {
                        "name": n,
                        "uid": f"uid-ns-{n}",
                        "creationTimestamp": ago(days=100),
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
                for n in ("default", "kube-system", "yomira")
            ],
            "secrets": [
                {
                    "metadata": {
                        "name": "api",
                        "namespace": "yomira",
                        "uid": "uid-secret-api",
                        "creationTimestamp": ago(days=30),
                        "annotations": {
                            "kubectl.kubernetes.io/last-applied-configuration": (
                                '{"data":{"key":"' + b64(SECRET_VALUE) + '"}}'
                            )
                        },
                    },
                    "type": "Opaque",
                    "data": {"key": b64(SECRET_VALUE), "user": b64("console")},
                }
            ],
        }
        self.events = [
            event(
                "worker.1",
                worker,
                "Pod",
                type_="Warning",
                reason="BackOff",
                message="Back-off restarting failed container worker",
                count=5,
            ),
            event(
                "worker.2",
                worker,
                "Pod",
                type_="Normal",
                reason="Pulled",
                message="Container image already present on machine",
            ),
            event(
                "api.1",
                api,
                "Pod",
                type_="Normal",
                reason="Started",
                message=f"Started container api with token {TOKEN}",
            ),
        ]
        self.metrics = {
            "api-7d9c6b5f4-abcde": {"api": ("12345678n", "87654Ki")},
            "api-7d9c6b5f4-fghij": {"api": ("250m", "300Mi")},
            "worker-5c8d7-xk2p9": {"worker": ("1", "1Gi"), "metrics": ("3m", "20Mi")},
        }
        self.node_metrics = {"node-1": ("1500m", "8Gi"), "node-2": ("250m", "2Gi")}
        self.logs = {
            ("api-7d9c6b5f4-abcde", "api"): [
                f"2025-01-01T10:00:{i:02d}Z INFO request {i} served in {i * 3}ms"
                for i in range(50)
            ]
            + [f"2025-01-01T10:01:00Z DEBUG using bearer token={TOKEN}"],
            ("api-7d9c6b5f4-fghij", "api"): [
                "fghij line 1",
                f"fghij line 2: client sent Authorization {b64(TOKEN)}",
            ],
            ("worker-5c8d7-xk2p9", "worker"): [
                "worker starting",
                "panic: out of memory",
            ],
            ("worker-5c8d7-xk2p9", "metrics"): ["metrics sidecar up"],
        }
        self.previous = {
            ("worker-5c8d7-xk2p9", "worker"): ["the run before: OOMKilled"]
        }
        self.forbidden: set[str] = set()  # namespaces this token may not list
        self.metrics_installed = True
        self.forbidden_events = False
        self.client_certs = False  # the TLS layer checked a client certificate
        self.delay = 0.0  # seconds before answering anything but discovery
        self.seen: list[Request] = []

    # --- routing --------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        self.seen.append(request)
        authorized = request.headers.get("Authorization") == f"Bearer {TOKEN}"
        if not (authorized or self.client_certs):
            return self.json(status(401, "Unauthorized", "Unauthorized"), 401)
        path = request.path
        if self.delay:
            time.sleep(self.delay)
        fixed = {
            "/version": {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.4",
                "platform": "linux/amd64",
            },
            "/api": {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}
                ],
            },
            "/apis": self.groups(),
            "/api/v1": self.resources("v1", ""),
            "/apis/apps/v1": self.resources("apps/v1", "apps"),
            "/apis/metrics.k8s.io/v1beta1": {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": "metrics.k8s.io/v1beta1",
                "resources": [
                    {
                        "name": "nodes",
                        "singularName": "",
                        "namespaced": False,
                        "kind": "NodeMetrics",
                        "verbs": ["get", "list"],
                    },
                    {
                        "name": "pods",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "PodMetrics",
                        "verbs": ["get", "list"],
                    },
                ],
            },
        }
        if path in fixed:
            return self.json(fixed[path])
        if path.startswith("/apis/metrics.k8s.io") and not self.metrics_installed:
            return self.json(
                status(
                    404, "NotFound", "the server could not find the requested resource"
                ),
                404,
            )
        if path.startswith("/apis/metrics.k8s.io/v1beta1/"):
            return self.metrics_answer(request, path)
        m = re.fullmatch(
            r"/(?:api/v1|apis/apps/v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)"
            r"(?:/(?P<name>[^/]+))?(?P<log>/log)?",
            path,
        )
        if not m:
            return self.json(
                status(
                    404, "NotFound", "the server could not find the requested resource"
                ),
                404,
            )
        ns, plural, name = m["ns"], m["plural"], m["name"]
        if (ns and ns in self.forbidden) or (
            plural == "events" and self.forbidden_events
        ):
            verb = "get" if name else "list"
            return self.json(
                status(
                    403,
                    "Forbidden",
                    f'{plural} is forbidden: User "system:serviceaccount:yomira:console" '
                    f'cannot {verb} resource "{plural}" in API group "" in the '
                    f'namespace "{ns}"',
                    {"kind": plural},
                ),
                403,
            )
        if plural == "events":
            items = [
                e
                for e in self.events
                if (not ns or e["metadata"]["namespace"] == ns)
                and field_matches(request.args.get("fieldSelector"), e)
            ]
            return self.json(
                {
                    "kind": "EventList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "4711"},
                    "items": items,
                }
            )
        if plural not in self.objects:
            return self.json(
                status(
                    404, "NotFound", "the server could not find the requested resource"
                ),
                404,
            )
        kind = KINDS[plural]
        items = [
            o
            for o in self.objects[plural]
            if not ns or not kind.namespaced or o["metadata"].get("namespace") == ns
        ]
        if name:
            found = [o for o in items if o["metadata"]["name"] == name]
            if not found:
                return self.json(
                    status(
                        404,
                        "NotFound",
                        f'{plural} "{name}" not found',
                        {"name": name, "kind": plural},
                    ),
                    404,
                )
            if m["log"]:
                return self.log_answer(request, found[0])
            return self.answer(request, kind, found, single=True)
        items = [
            o
            for o in items
            if selector_matches(
                request.args.get("labelSelector"), o["metadata"].get("labels") or {}
            )
        ]
        return self.answer(request, kind, items, single=False)

    @staticmethod
    def json(doc: dict, code: int = 200) -> Response:
        return Response(json.dumps(doc), code, content_type="application/json")

    def groups(self) -> dict:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{group}/{v}", "version": v},
                }
                for group, v in (("apps", "v1"), ("metrics.k8s.io", "v1beta1"))
                if group != "metrics.k8s.io" or self.metrics_installed
            ],
        }

    def resources(self, group_version: str, group: str) -> dict:
        listed = [
            {
                "name": k.plural,
                "singularName": k.kind.lower(),
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": ["get", "list", "watch"],
                "shortNames": k.short,
                "categories": k.categories,
            }
            for k in KINDS.values()
            if k.group == group
        ]
        if group == "":
            listed += [
                {
                    "name": "pods/log",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get"],
                },
                {
                    "name": "events",
                    "singularName": "event",
                    "namespaced": True,
                    "kind": "Event",
                    "verbs": ["get", "list"],
                    "shortNames": ["ev"],
                },
            ]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": listed,
        }

    def answer(self, request: Request, kind: Kind, items: list[dict], single: bool):  # noqa: ANN201
        api_version = f"{kind.group}/{kind.version}" if kind.group else kind.version
        if "as=Table" in request.headers.get("Accept", ""):
            include = request.args.get("includeObject", "Metadata")
            rows = []
            for obj in items:
                row: dict = {"cells": kind.cells(obj)}
                if include == "Metadata":
                    meta = copy.deepcopy(obj["metadata"])
                    meta.pop("managedFields", None)
                    row["object"] = {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": meta,
                    }
                elif include == "Object":
                    row["object"] = {
                        "kind": kind.kind,
                        "apiVersion": api_version,
                        **obj,
                    }
                rows.append(row)
            return self.json(
                {
                    "kind": "Table",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": {"resourceVersion": "4711"},
                    "columnDefinitions": [
                        {
                            "name": n,
                            "type": "string",
                            "format": f,
                            "description": f"{n} of the object.",
                            "priority": p,
                        }
                        for n, f, p in kind.columns
                    ],
                    "rows": rows,
                }
            )
        if single:
            return self.json({"kind": kind.kind, "apiVersion": api_version, **items[0]})
        return self.json(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": "4711"},
                "items": items,
            }
        )

    def log_answer(self, request: Request, found: dict) -> Response:
        name = found["metadata"]["name"]
        names = [c["name"] for c in found["spec"]["containers"]]
        container = request.args.get("container")
        if not container:
            if len(names) > 1:
                return self.json(
                    status(
                        400,
                        "BadRequest",
                        f"a container name must be specified for pod {name}, choose one "
                        f"of: [{' '.join(names)}]",
                    ),
                    400,
                )
            container = names[0]
        if container not in names:
            return self.json(
                status(
                    400,
                    "BadRequest",
                    f"container {container} is not valid for pod {name}",
                ),
                400,
            )
        store = self.previous if request.args.get("previous") == "true" else self.logs
        if (name, container) not in store:
            return self.json(
                status(
                    400,
                    "BadRequest",
                    f"previous terminated container "
                    f'"{container}" in pod "{name}" not found',
                ),
                400,
            )
        lines = store[(name, container)]
        if request.args.get("tailLines"):
            lines = (
                lines[-int(request.args["tailLines"]) :]
                if int(request.args["tailLines"])
                else []
            )
        text = "".join(line + "\n" for line in lines)
        return Response(text, 200, content_type="text/plain")

    def metrics_answer(self, request: Request, path: str) -> Response:
        rest = path.removeprefix("/apis/metrics.k8s.io/v1beta1/")
        m = re.fullmatch(
            r"(?:namespaces/(?P<ns>[^/]+)/)?(?P<what>pods|nodes)(?:/(?P<name>[^/]+))?",
            rest,
        )
        if not m:
            return self.json(
                status(
                    404, "NotFound", "the server could not find the requested resource"
                ),
                404,
            )
        window = {"timestamp": ago(seconds=20), "window": "20.044s"}
        if m["what"] == "nodes":
            items = [
                {
                    "metadata": {"name": n, "creationTimestamp": NOW.isoformat()},
                    **window,
                    "usage": {"cpu": cpu, "memory": mem},
                }
                for n, (cpu, mem) in self.node_metrics.items()
            ]
            kind = "NodeMetrics"
        else:
            pods = {p["metadata"]["name"]: p for p in self.objects["pods"]}
            items = [
                {
                    "metadata": {
                        "name": n,
                        "namespace": pods[n]["metadata"]["namespace"],
                        "creationTimestamp": NOW.isoformat(),
                        "labels": pods[n]["metadata"]["labels"],
                    },
                    **window,
                    "containers": [
                        {"name": c, "usage": {"cpu": cpu, "memory": mem}}
                        for c, (cpu, mem) in usage.items()
                    ],
                }
                for n, usage in self.metrics.items()
                if (not m["ns"] or pods[n]["metadata"]["namespace"] == m["ns"])
                and selector_matches(
                    request.args.get("labelSelector"), pods[n]["metadata"]["labels"]
                )
            ]
            kind = "PodMetrics"
        if m["name"]:
            found = [i for i in items if i["metadata"]["name"] == m["name"]]
            if not found:
                return self.json(
                    status(
                        404,
                        "NotFound",
                        f'{m["what"]}.metrics.k8s.io "{m["name"]}" not found',
                        {
                            "name": m["name"],
                            "group": "metrics.k8s.io",
                            "kind": m["what"],
                        },
                    ),
                    404,
                )
            return self.json(
                {"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1", **found[0]}
            )
        return self.json(
            {
                "kind": f"{kind}List",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {},
                "items": items,
            }
        )


# --- a CA, the API server's certificate and a client certificate ----------------------


@dataclass
class Pki:
    ca: bytes
    server_cert: Path
    server_key: Path
    client_cert: bytes
    client_key: bytes
    other_ca: bytes  # a CA that signed nothing here


def _key():  # noqa: ANN202
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key,
    issuer_key=None,
    issuer: str | None = None,
    *,  # noqa: ANN001
    ca: bool = False,
    server: bool = False,
) -> bytes:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issued_by = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issued_by)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem(key) -> bytes:  # noqa: ANN001
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key, other_key = _key(), _key(), _key(), _key()
    ca = _cert("stand-in CA", ca_key, ca=True)
    (folder / "server.pem").write_bytes(
        _cert("kube-apiserver", server_key, ca_key, "stand-in CA", server=True)
    )
    (folder / "server.key").write_bytes(_pem(server_key))
    return Pki(
        ca=ca,
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=_cert("console", client_key, ca_key, "stand-in CA"),
        client_key=_pem(client_key),
        other_ca=_cert("another CA", other_key, ca=True),
    )


def tls_context(pki: Pki, *, client_certs: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=pki.ca.decode())
    return context


def b64(data: bytes | str) -> str:
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def serve(handler, context: ssl.SSLContext | None) -> HTTPServer:  # noqa: ANN001
    httpd = HTTPServer(host="127.0.0.1", port=0, ssl_context=context, threaded=True)
    httpd.expect_request(re.compile(r"^/.*"), method=METHOD_ALL).respond_with_handler(
        handler
    )
    httpd.start()
    return httpd


# One TLS server for the module (stopping one takes half a second); each test gets
# it cleared, answering from that test's own cluster.
@pytest.fixture(scope="module")
def tls_server(pki: Pki):  # noqa: ANN201
    httpd = serve(lambda request: Response("", 500), tls_context(pki))
    yield httpd
    httpd.clear()
    httpd.stop()


@pytest.fixture
def server(cluster: Cluster, tls_server: HTTPServer) -> HTTPServer:
    tls_server.clear()
    tls_server.expect_request(
        re.compile(r"^/.*"), method=METHOD_ALL
    ).respond_with_handler(cluster)
    return tls_server


def write_kubeconfig(
    path: Path,
    server_url: str,
    ca: bytes | None,
    *,
    token: str = TOKEN,
    namespace: str = "yomira",
    user: dict | None = None,
    cluster: dict | None = None,
) -> Path:
    if cluster is None:
        cluster = {"server": server_url}
        if ca:
            cluster["certificate-authority-data"] = b64(ca)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "stand-in",
        "clusters": [
            {"name": "stand-in", "cluster": cluster},
            {"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:9"}},
        ],
        "users": [{"name": "console", "user": user or {"token": token}}],
        "contexts": [
            {
                "name": "stand-in",
                "context": {
                    "cluster": "stand-in",
                    "user": "console",
                    "namespace": namespace,
                },
            },
            {
                "name": "other",
                "context": {
                    "cluster": "stand-in",
                    "user": "console",
                    "namespace": "default",
                },
            },
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def kubeconfig(
    tmp_path: Path, server: HTTPServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> Path:
    url = server.url_for("").rstrip("/")
    path = write_kubeconfig(tmp_path / "kubeconfig", url, pki.ca)
    monkeypatch.setenv("TARGET_KUBECONFIG", str(path))
    redaction._forms.cache_clear()
    return path


@dataclass
class Cmd:
    """A bound command, as the engine hands one to a family."""

    text: str
    kind: str
    executor: str | None
    parameters: list[str]
    variables: list[str]
    spec: dict


def bind(text: str) -> Cmd:
    binding = FAMILY.recognise(Call(shlex.split(text), text))
    assert binding is not None
    return Cmd(
        text,
        binding.kind,
        binding.executor,
        binding.parameters,
        binding.variables,
        binding.spec,
    )


def run(text: str, params: dict[str, str] | None = None, **limits: float):  # noqa: ANN201
    command = bind(text)
    assert command.kind == PROBE, f"{text!r} is {command.kind}"
    return FAMILY.run(command, params or {}, Context(**limits))


def secrets_absent(result, *secrets: str) -> None:  # noqa: ANN001
    blob = json.dumps(
        {"summary": result.summary, "output": result.output, "data": result.data},
        ensure_ascii=False,
    )
    for secret in secrets:
        assert secret not in blob
        assert b64(secret) not in blob


# --- recognition ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kubectl get pods -n yomira -l app=api -o wide",
            {
                "verb": "get",
                "namespace": "yomira",
                "selector": "app=api",
                "output": "wide",
                "objects": [{"type": "pods", "name": None}],
            },
        ),
        (
            "kubectl --context prod get po/api-1 svc/api",
            {
                "verb": "get",
                "context": "prod",
                "objects": [
                    {"type": "po", "name": "api-1"},
                    {"type": "svc", "name": "api"},
                ],
            },
        ),
        (
            "kubectl get pods api-1 api-2 --no-headers",
            {
                "no_headers": True,
                "objects": [
                    {"type": "pods", "name": "api-1"},
                    {"type": "pods", "name": "api-2"},
                ],
            },
        ),
        (
            "kubectl get deploy,svc -A -o name",
            {
                "output": "name",
                "all_namespaces": True,
                "objects": [
                    {"type": "deploy", "name": None},
                    {"type": "svc", "name": None},
                ],
            },
        ),
        (
            "kubectl describe deploy api --namespace=yomira",
            {
                "verb": "describe",
                "namespace": "yomira",
                "objects": [{"type": "deploy", "name": "api"}],
            },
        ),
        (
            "kubectl -n yomira logs deploy/api -c api --tail 50 --since=15m -p",
            {
                "verb": "logs",
                "namespace": "yomira",
                "container": "api",
                "tail": "50",
                "since": "15m",
                "previous": True,
                "object": {"type": "deploy", "name": "api"},
            },
        ),
        (
            "kubectl logs api-1 worker",
            {
                "verb": "logs",
                "object": {"type": "pod", "name": "api-1"},
                "container": "worker",
            },
        ),
        (
            "kubectl logs -l app=api --all-containers --prefix --timestamps",
            {
                "verb": "logs",
                "selector": "app=api",
                "all_containers": True,
                "prefix": True,
                "timestamps": True,
            },
        ),
        (
            "kubectl top pods -A --containers --sort-by=memory",
            {
                "verb": "top",
                "what": "pods",
                "all_namespaces": True,
                "containers": True,
                "sort_by": "memory",
            },
        ),
        ("kubectl top node node-1", {"verb": "top", "what": "nodes", "name": "node-1"}),
        (
            "kubectl get pods -nkube-system --context=staging --request-timeout=5s",
            {"namespace": "kube-system", "context": "staging"},
        ),
    ],
)
def test_reading_commands_are_probes_with_everything_in_the_spec(
    text: str, expected: dict
) -> None:
    command = bind(text)
    assert (command.kind, command.executor) == (PROBE, "kubectl")
    assert command.spec["target"] == "KUBECONFIG"
    for key, value in expected.items():
        assert command.spec[key] == value, key


@pytest.mark.parametrize(
    "text",
    [
        "kubectl scale deploy/orders-consumer --replicas=12",
        "kubectl rollout restart deploy/api -n yomira",
        "kubectl rollout status deploy/api",
        "kubectl delete pod kafka-2",
        "kubectl apply -f deploy.yaml",
        "kubectl exec -it etcd-0 -- etcdctl member list",
        "kubectl edit deploy/api",
        "kubectl port-forward svc/api 8000:80",
        "kubectl cp api-1:/tmp/dump ./dump",
        "kubectl create job --from=cronjob/invoices invoices-manual",
        "kubectl logs -f deploy/api",
        "kubectl logs --follow api-1",
        "kubectl logs --follow=true api-1",
        "kubectl get pods -w",
        "kubectl get pods --watch",
        "kubectl get pods -o jsonpath={.items[*].metadata.name}",
        "kubectl get pods -o custom-columns=NAME:.metadata.name",
        "kubectl get secret api -o yaml",
        "kubectl get secrets -o json",
        "kubectl get pods --sort-by=.metadata.creationTimestamp",
        "kubectl get pods --token=abc",
        "kubectl --server https://10.0.0.1 get pods",
        "kubectl get pods --as=system:admin",
        "kubectl get pod api-1 --all-namespaces",  # kubectl refuses it too
        "kubectl top pod api-1 -A",
        "kubectl get",
        "kubectl logs",
        "kubectl top",
        "kubectl",
    ],
)
def test_changing_and_endless_commands_stay_manual(text: str) -> None:
    binding = FAMILY.recognise(Call(shlex.split(text), text))
    assert binding is not None
    assert (binding.kind, binding.executor, binding.spec) == (MANUAL, None, {})


def test_other_programs_are_not_its_own() -> None:
    assert FAMILY.recognise(Call(["helm", "list"], "helm list")) is None
    assert FAMILY.recognise_text("kubectl get pods", "inline") is None


def test_parameters_are_named_filled_and_checked() -> None:
    command = bind("kubectl logs {pod} -n {namespace} --tail={lines} -c api")
    assert command.parameters == ["pod", "namespace", "lines"]
    good = {"pod": "api-7d9c6b5f4-abcde", "namespace": "yomira", "lines": "20"}
    assert FAMILY.parameter_problem(command, good) is None
    for bad, words in [
        ({"pod": "../../nodes/node-1"}, "not an object name"),
        ({"pod": "api 1"}, "not an object name"),
        ({"namespace": "Yomira Prod"}, "not a namespace name"),
        ({"lines": "many"}, "--tail needs a number"),
    ]:
        problem = FAMILY.parameter_problem(command, good | bad)
        assert problem and words in problem, (bad, problem)
    assert "No value given for {lines}" in (
        FAMILY.parameter_problem(command, {"pod": "a", "namespace": "b"}) or ""
    )
    # A manual command keeps its parameters (the person fills them in to copy it).
    manual = FAMILY.recognise(
        Call(shlex.split("kubectl delete pod {pod}"), "kubectl delete pod {pod}")
    )
    assert manual is not None and manual.kind == MANUAL and manual.parameters == ["pod"]


def test_a_parameter_value_is_never_read_as_a_target(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARGET_SECRET_NS", "kube-system")
    result = run("kubectl get pods -n {ns}", {"ns": "${SECRET_NS}"})
    assert not result.ok and "not a namespace name" in result.summary


def test_the_kubeconfig_target_is_kubeconfig_unless_the_command_names_one() -> None:
    assert FAMILY.targets(bind("kubectl get pods")) == ["KUBECONFIG"]
    # A literal path is the author's machine's: the worker's target is used.
    assert FAMILY.targets(bind("kubectl --kubeconfig ~/.kube/prod get pods")) == [
        "KUBECONFIG"
    ]
    staging = bind("kubectl --kubeconfig ${STAGING_KUBECONFIG} get pods")
    assert FAMILY.targets(staging) == ["STAGING_KUBECONFIG"]
    assert staging.variables == ["STAGING_KUBECONFIG"]


def test_the_family_answers_the_whole_protocol() -> None:
    assert isinstance(FAMILY, Family)
    assert FAMILY.name == "kubectl" and FAMILY.programs == frozenset({"kubectl", "oc"})
    assert FAMILY.languages == frozenset()
    for language, text in FAMILY.examples:
        assert language == "bash"
        command = bind(text)
        assert command.kind == PROBE
        assert FAMILY.needs_approval(command) is False
        assert FAMILY.confirm_word(command) in text
        values = {p: "1" for p in command.parameters}
        assert FAMILY.parameter_problem(command, values) is None
        seen = FAMILY.preview(command, values, Context())
        assert isinstance(seen, Preview) and not seen.possible
        assert "change nothing" in seen.headline
        assert FAMILY.display(command, values, text) == text
    seen = FAMILY.preview(bind("kubectl logs deploy/api -n yomira"), {}, Context())
    assert "read the logs of deploy/api in namespace yomira" in seen.headline
    assert "target: TARGET_KUBECONFIG" in seen.facts


# --- get ------------------------------------------------------------------------------


def test_get_pods_prints_the_servers_table(kubeconfig: Path, cluster: Cluster) -> None:
    result = run("kubectl get pods")
    assert result.ok, result.summary
    assert result.summary == "3 pods in namespace yomira: 2 Running, 1 CrashLoopBackOff"
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[0].startswith("NAME                  READY   STATUS")
    assert lines[3].split() == [
        "worker-5c8d7-xk2p9",
        "0/2",
        "CrashLoopBackOff",
        "8",
        "(5m",
        "ago)",
        "5d",
    ]
    asked = [r for r in cluster.seen if r.path == "/api/v1/namespaces/yomira/pods"][-1]
    assert "as=Table;v=v1;g=meta.k8s.io" in asked.headers["Accept"]
    assert asked.args["limit"] == "500"
    assert result.data["context"] == "stand-in" and result.data["namespace"] == "yomira"


def test_get_wide_in_all_namespaces_with_labels(kubeconfig: Path) -> None:
    result = run("kubectl get pods -A -o wide -L app")
    assert result.ok
    header = result.output.splitlines()[0].split()
    assert header[:2] == ["NAMESPACE", "NAME"]
    assert header[2:] == (
        [
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES",
            "APP",
        ]
    )
    assert "10.244.2.9" in result.output and "node-2" in result.output
    assert result.summary.startswith("3 pods in all namespaces")


def test_get_several_types_names_each_row_by_kind(kubeconfig: Path) -> None:
    result = run("kubectl get deploy,svc -l app=api")
    assert result.ok
    assert "deployment.apps/api" in result.output and "service/api" in result.output
    assert "\n\n" in result.output  # one table per type
    assert result.summary == "2 objects (1 deployments, 1 services) in namespace yomira"


def test_get_by_name_reports_the_missing_ones(kubeconfig: Path) -> None:
    result = run("kubectl get pod api-7d9c6b5f4-abcde nope")
    assert not result.ok
    assert result.summary.startswith("No pod named nope in namespace yomira")
    assert "api-7d9c6b5f4-abcde" in result.output
    ignored = run("kubectl get pod nope --ignore-not-found")
    assert ignored.ok and "No resources found" in ignored.output


def test_get_names_json_and_yaml(kubeconfig: Path) -> None:
    names = run("kubectl get pods -o name")
    assert names.output.splitlines() == [
        "pod/api-7d9c6b5f4-abcde",
        "pod/api-7d9c6b5f4-fghij",
        "pod/worker-5c8d7-xk2p9",
    ]
    listed = json.loads(run("kubectl get deploy -o json").output)
    assert listed["kind"] == "List"
    assert [i["kind"] for i in listed["items"]] == ["Deployment", "Deployment"]
    assert listed["items"][0]["apiVersion"] == "apps/v1"
    one = yaml.safe_load(run("kubectl get pod worker-5c8d7-xk2p9 -o yaml").output)
    assert one["kind"] == "Pod" and one["metadata"]["name"] == "worker-5c8d7-xk2p9"
    assert "managedFields" not in one["metadata"]


def test_the_contexts_namespace_and_another_context(kubeconfig: Path) -> None:
    other = run("kubectl --context other get pods")
    assert other.ok and other.output == "No resources found in default namespace."
    assert other.data["context"] == "other"
    named = run("kubectl get pods -n kube-system")
    assert named.summary == "No resources found in kube-system namespace"
    missing = run("kubectl --context nope get pods")
    assert not missing.ok
    assert "no context named 'nope' (it has: other, stand-in)" in missing.summary


def test_a_type_the_server_does_not_have(kubeconfig: Path) -> None:
    result = run("kubectl get widgets")
    assert not result.ok
    assert 'does not have a resource type "widgets"' in result.summary


# --- describe -------------------------------------------------------------------------


def test_describe_pod_shows_its_state_and_events(
    kubeconfig: Path, cluster: Cluster
) -> None:
    result = run("kubectl describe pod worker-5c8d7-xk2p9")
    assert result.ok, result.summary
    assert result.summary == (
        "described pod/worker-5c8d7-xk2p9 in namespace yomira: "
        "5 warning events (BackOff x5)"
    )
    text = result.output
    for expected in [
        "Name:             worker-5c8d7-xk2p9",
        "Node:             node-1/10.0.0.4",
        "Controlled By:    ReplicaSet/worker-7d9c6b5f4",
        "      Reason:       CrashLoopBackOff",
        "    Last State:     Terminated",
        "      Reason:       OOMKilled",
        "      Exit Code:    137",
        "    Restart Count:  4",
        "      LOG_LEVEL:    info",
    ]:
        assert expected in text, expected
    # Ages are counted from now, as kubectl counts them.
    assert re.search(
        r"Warning  BackOff  2m\S* \(x5 over 10m\S*\) +kubelet  Back-off restarting",
        text,
    )
    assert re.search(r"Normal   Pulled   10m\S* +kubelet  Container image", text)
    assert "hunter2-db-password" not in text  # an env value named like a secret
    events = [r for r in cluster.seen if r.path.endswith("/events")][-1]
    assert events.args["fieldSelector"] == (
        "involvedObject.kind=Pod,involvedObject.name=worker-5c8d7-xk2p9,"
        "involvedObject.namespace=yomira,involvedObject.uid=uid-worker-5c8d7-xk2p9"
    )


def test_describe_without_leave_to_read_events(
    kubeconfig: Path, cluster: Cluster
) -> None:
    cluster.forbidden_events = True
    result = run("kubectl describe pod worker-5c8d7-xk2p9")
    assert result.ok and "Restart Count:  4" in result.output
    assert (
        "Events:           <not read: Forbidden (403): the kubeconfig's user (console) "
        "may not list events in namespace yomira>" in result.output
    )


def test_describe_deployment_and_node(kubeconfig: Path) -> None:
    deploy = run("kubectl describe deploy worker")
    assert deploy.ok
    assert (
        "Replicas:               1 desired | 1 updated | 1 total | 0 available | "
        "1 unavailable" in deploy.output
    )
    assert "Available    False" in deploy.output
    assert "last-applied-configuration" not in deploy.output
    node_result = run("kubectl describe node node-1")
    assert node_result.summary == "described node/node-1"
    assert "Ready  True    KubeletReady" in node_result.output
    several = run("kubectl describe pods -l app=api --show-events=false")
    assert several.summary == "described 2 pods in namespace yomira"
    assert "Events:" not in several.output


# --- logs -----------------------------------------------------------------------------


def test_logs_of_a_pod_with_tail(kubeconfig: Path, cluster: Cluster) -> None:
    result = run("kubectl logs api-7d9c6b5f4-fghij --tail=1 --timestamps")
    assert result.ok
    assert result.summary == "logs of pod/api-7d9c6b5f4-fghij (api): 1 line"
    asked = cluster.seen[-1]
    assert asked.path.endswith("/pods/api-7d9c6b5f4-fghij/log")
    assert asked.args["tailLines"] == "1" and asked.args["timestamps"] == "true"
    assert asked.args["container"] == "api"


def test_logs_of_a_deployment_read_the_pod_kubectl_would(kubeconfig: Path) -> None:
    result = run("kubectl logs deploy/api --tail=3 --since=15m")
    assert result.ok
    assert "Found 2 pods, using pod/api-7d9c6b5f4-abcde" in result.summary
    assert result.output.splitlines()[0].endswith("INFO request 48 served in 144ms")


def test_logs_default_container_previous_and_selector(
    kubeconfig: Path, cluster: Cluster
) -> None:
    default = run("kubectl logs worker-5c8d7-xk2p9")
    assert default.output == "worker starting\npanic: out of memory\n"
    assert 'Defaulted container "worker" out of: worker, metrics' in default.summary
    previous = run("kubectl logs worker-5c8d7-xk2p9 -c worker --previous")
    assert previous.output == "the run before: OOMKilled\n"
    prefixed = run("kubectl logs -l app=worker --all-containers --prefix")
    assert "[pod/worker-5c8d7-xk2p9/metrics] metrics sidecar up" in prefixed.output
    assert cluster.seen[-1].args["tailLines"] == "10"  # kubectl's default for -l
    wrong = run("kubectl logs worker-5c8d7-xk2p9 -c nope")
    assert not wrong.ok
    assert "container nope is not valid for pod worker-5c8d7-xk2p9" in wrong.summary


# --- top ------------------------------------------------------------------------------


def test_top_pods_and_containers(kubeconfig: Path) -> None:
    result = run("kubectl top pods")
    assert result.ok
    assert result.output.splitlines() == [
        "NAME                  CPU(cores)   MEMORY(bytes)",
        "api-7d9c6b5f4-abcde   13m          85Mi",
        "api-7d9c6b5f4-fghij   250m         300Mi",
        "worker-5c8d7-xk2p9    1003m        1044Mi",
    ]
    assert result.summary == (
        "3 pods in namespace yomira: 1266m CPU, 1429Mi memory in all; "
        "most CPU: worker-5c8d7-xk2p9 (1003m)"
    )
    containers = run("kubectl top pods -l app=worker --containers --sort-by=memory")
    assert containers.output.splitlines()[1:] == [
        "worker-5c8d7-xk2p9   worker    1000m        1024Mi",
        "worker-5c8d7-xk2p9   metrics   3m           20Mi",
    ]


def test_top_nodes_with_percentages(kubeconfig: Path) -> None:
    result = run("kubectl top nodes")
    assert result.ok
    assert result.output.splitlines()[1].split() == [
        "node-1",
        "1500m",
        "37%",
        "8192Mi",
        "51%",
    ]
    assert result.summary == "2 nodes; busiest CPU: node-1 at 37%"


def test_top_without_metrics_server_or_pod(kubeconfig: Path, cluster: Cluster) -> None:
    missing = run("kubectl top pod nope")
    assert not missing.ok and missing.summary.startswith("No metrics for pod nope")
    cluster.metrics_installed = False
    result = run("kubectl top pods")
    assert not result.ok
    assert "metrics API (metrics.k8s.io/v1beta1) is not available" in result.summary


def test_quantities_as_kubectl_prints_them() -> None:
    assert millicores("12345678n") == 13 and millicores("1") == 1000
    assert millicores("250m") == 250 and millicores("1.5") == 1500
    assert mebibytes("87654Ki") == 85 and mebibytes("1Gi") == 1024
    assert mebibytes("1e9") == 953 and mebibytes("500M") == 476
    assert human_duration(119) == "119s" and human_duration(125) == "2m5s"
    assert human_duration(3 * 3600 + 60) == "3h1m" and human_duration(9 * 86400) == "9d"


# --- failures -------------------------------------------------------------------------


def test_401_with_a_revoked_token_never_shows_it(
    tmp_path: Path, server: HTTPServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked = "revoked-token-Hx81-aa92-QQ"
    path = write_kubeconfig(
        tmp_path / "kc", server.url_for("").rstrip("/"), pki.ca, token=revoked
    )
    monkeypatch.setenv("TARGET_KUBECONFIG", str(path))
    result = run("kubectl get pods")
    assert not result.ok and result.data["status"] == 401
    assert result.summary.startswith("Unauthorized (401): the API server at https://")
    assert (
        "does not accept the kubeconfig's user (console)'s credentials"
        in result.summary
    )
    secrets_absent(result, revoked)


def test_403_says_what_the_user_may_not_do(kubeconfig: Path, cluster: Cluster) -> None:
    cluster.forbidden = {"kube-system"}
    result = run("kubectl get pods -n kube-system")
    assert not result.ok
    assert result.summary == (
        "Forbidden (403): the kubeconfig's user (console) may not list pods in "
        "namespace kube-system."
    )
    assert 'cannot list resource "pods"' in result.output


def test_404_names_the_missing_object(kubeconfig: Path) -> None:
    for text in ("kubectl describe pod nope", "kubectl logs nope"):
        result = run(text)
        assert not result.ok
        assert result.summary == "No pod named nope in namespace yomira.", text
    deploy = run("kubectl logs deploy/nope")
    assert deploy.summary == "No deployment named nope in namespace yomira."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_api(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    path = write_kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{port}", pki.ca)
    monkeypatch.setenv("TARGET_KUBECONFIG", str(path))
    started = time.monotonic()
    result = run("kubectl get pods")
    assert time.monotonic() - started < 2
    assert not result.ok and not result.timed_out
    assert result.summary == (
        f"Cannot reach the Kubernetes API at https://127.0.0.1:{port} "
        "(connection refused)."
    )


def test_a_server_that_never_finishes_the_handshake(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as listener:  # accepts TCP (backlog), never answers TLS
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        monkeypatch.setenv(
            "TARGET_KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", url, pki.ca))
        )
        started = time.monotonic()
        result = run("kubectl get pods", connect_timeout=0.5, timeout=2)
        elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok
    assert 0.4 < elapsed < 1.5
    assert (
        result.summary == f"No connection to the Kubernetes API at {url} within 0.5 s."
    )


def test_a_server_that_hangs_past_the_deadline(
    kubeconfig: Path, cluster: Cluster
) -> None:
    cluster.delay = 5
    started = time.monotonic()
    result = run("kubectl get pods", connect_timeout=1, timeout=1.5)
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok
    assert 1.4 < elapsed < 2.2, elapsed
    assert (
        "did not answer within 1.5 s (list pods in namespace yomira)" in result.summary
    )


def test_a_log_trickling_past_the_deadline_is_cut_with_what_came(
    kubeconfig: Path, cluster: Cluster, server: HTTPServer
) -> None:
    def trickle(request: Request) -> Response:
        if not request.path.endswith("/log"):
            return cluster(request)

        def lines():  # noqa: ANN202
            for i in range(100):
                yield f"tick {i}\n".encode()
                time.sleep(0.2)

        return Response(lines(), 200, content_type="text/plain")

    server.clear()
    server.expect_request(re.compile(r"^/.*"), method=METHOD_ALL).respond_with_handler(
        trickle
    )
    started = time.monotonic()
    result = run("kubectl logs api-7d9c6b5f4-fghij", connect_timeout=1, timeout=1.5)
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok
    assert 1.4 < elapsed < 2.2, elapsed
    assert "tick 0\n" in result.output and "tick 20" not in result.output


# --- secrets and limits ---------------------------------------------------------------


def test_the_token_never_appears(kubeconfig: Path) -> None:
    for text in (
        "kubectl logs api-7d9c6b5f4-abcde",  # `token=...` in a log line
        "kubectl logs api-7d9c6b5f4-fghij",  # the token base64-encoded
        "kubectl describe pod api-7d9c6b5f4-abcde",  # in an event and an annotation
        "kubectl get pod api-7d9c6b5f4-abcde -o json",
        "kubectl get pods -l app=api --show-labels",
    ):
        result = run(text)
        assert result.ok, (text, result.summary)
        secrets_absent(result, TOKEN)
    described = run("kubectl describe pod api-7d9c6b5f4-abcde")
    assert f"Started container api with token {redaction.MASK}" in described.output


def test_client_certificates_and_their_key_stay_hidden(
    tmp_path: Path, pki: Pki, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_line = next(
        line
        for line in pki.client_key.decode().splitlines()
        if not line.startswith("-")
    )
    cluster.client_certs = True
    cluster.logs[("api-7d9c6b5f4-fghij", "api")].append(f"mounted key: {key_line}")
    httpd = serve(cluster, tls_context(pki, client_certs=True))
    try:
        user = {
            "client-certificate-data": b64(pki.client_cert),
            "client-key-data": b64(pki.client_key),
        }
        path = write_kubeconfig(
            tmp_path / "kc", httpd.url_for("").rstrip("/"), pki.ca, user=user
        )
        monkeypatch.setenv("TARGET_KUBECONFIG", str(path))
        result = run("kubectl logs api-7d9c6b5f4-fghij")
        assert result.ok, result.summary
        assert "mounted key: " in result.output
        secrets_absent(result, key_line, b64(pki.client_key))
        # Without the certificate the server's TLS refuses the handshake.
        path.write_text(
            path.read_text()
            .replace("client-certificate-data", "x-cert")
            .replace("client-key-data", "x-key")
        )
        refused = run("kubectl get pods")
        assert not refused.ok
        assert refused.summary.startswith("Cannot reach the Kubernetes API at https://")
    finally:
        httpd.stop()
    assert not list(Path(tempfile.gettempdir()).glob("kubectl-*/key.pem"))


def test_tls_is_verified_against_the_kubeconfigs_ca(
    tmp_path: Path, server: HTTPServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.url_for("").rstrip("/")
    monkeypatch.setenv(
        "TARGET_KUBECONFIG", str(write_kubeconfig(tmp_path / "a", url, pki.other_ca))
    )
    result = run("kubectl get pods")
    assert not result.ok and "TLS failed" in result.summary
    assert "certificate verify failed" in result.summary
    insecure = {"server": url, "insecure-skip-tls-verify": True}
    monkeypatch.setenv(
        "TARGET_KUBECONFIG",
        str(write_kubeconfig(tmp_path / "b", url, None, cluster=insecure)),
    )
    assert run("kubectl get pods").ok


def test_no_token_is_sent_over_plain_http(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpd = serve(cluster, None)
    try:
        url = httpd.url_for("").rstrip("/")
        monkeypatch.setenv(
            "TARGET_KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", url, None))
        )
        result = run("kubectl get pods")
    finally:
        httpd.stop()
    assert not result.ok
    assert "none are sent to a plain http:// server" in result.summary
    assert all("Authorization" not in r.headers for r in cluster.seen)


def test_a_secrets_values_are_never_shown(kubeconfig: Path) -> None:
    listed = run("kubectl get secrets")
    assert listed.ok and listed.output.splitlines()[1].split()[:3] == [
        "api",
        "Opaque",
        "2",
    ]
    described = run("kubectl describe secret api")
    assert f"key:  {len(SECRET_VALUE)} bytes" in described.output
    assert "user:  7 bytes" in described.output
    # Recognition keeps `-o yaml` of secrets manual; a parameter naming the type
    # gets past it, and the runner masks the values all the same.
    shown = run("kubectl get {kind} api -o yaml", {"kind": "secret"})
    assert shown.ok
    doc = yaml.safe_load(shown.output)
    assert doc["data"] == {"key": redaction.MASK, "user": redaction.MASK}
    for result in (listed, described, shown):
        secrets_absent(result, SECRET_VALUE)


def test_get_all_lists_what_the_cluster_serves(kubeconfig: Path) -> None:
    result = run("kubectl get all")
    assert result.ok  # no daemonsets, replicasets... here: skipped, as kubectl does
    assert result.summary.startswith("6 objects (3 pods, 1 services, 2 deployments)")


def test_the_output_is_capped(kubeconfig: Path, cluster: Cluster) -> None:
    big = run("kubectl get pods -o json", output_cap=2048)
    assert big.ok and len(big.output.encode()) <= 2048
    assert "output trimmed" in big.output
    cluster.logs[("api-7d9c6b5f4-fghij", "api")] = [
        f"line {i:05d} " + "x" * 60 for i in range(5000)
    ]
    logs = run("kubectl logs api-7d9c6b5f4-fghij", output_cap=8192)
    assert logs.ok and len(logs.output.encode()) <= 8192
    assert logs.output.startswith("… ") and "earlier bytes not shown" in logs.output
    assert logs.output.rstrip().endswith("line 04999 " + "x" * 60)  # the newest kept
    assert "the last 7 KB shown" in logs.summary


def test_kubeconfig_problems_are_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TARGET_KUBECONFIG", raising=False)
    unset = run("kubectl get pods")
    assert not unset.ok and "set TARGET_KUBECONFIG" in unset.summary
    monkeypatch.setenv("TARGET_KUBECONFIG", str(tmp_path / "absent"))
    absent = run("kubectl get pods")
    assert absent.summary.startswith("TARGET_KUBECONFIG cannot be used: cannot read")
    broken = tmp_path / "broken"
    broken.write_text(f"users:\n- name: u\n  user: {{token: {TOKEN}\n")
    monkeypatch.setenv("TARGET_KUBECONFIG", str(broken))
    result = run("kubectl get pods")
    assert "is not valid YAML (line" in result.summary
    secrets_absent(result, TOKEN)
    plugin = {"exec": {"command": "aws", "args": ["eks", "get-token"]}}
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", None, user=plugin)
    monkeypatch.setenv("TARGET_KUBECONFIG", str(path))
    refused = run("kubectl get pods")
    assert "authenticates with an exec plugin, which the console does not run" in (
        refused.summary
    )


def test_the_kubeconfig_may_be_the_yaml_itself(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARGET_KUBECONFIG", kubeconfig.read_text())
    redaction._forms.cache_clear()
    result = run("kubectl get pods -o name")
    assert result.ok and "pod/worker-5c8d7-xk2p9" in result.output


# --- faithfulness: the real kubectl against the same stand-in ------------------------

FAITHFUL = [
    "kubectl get pods",
    "kubectl get all",
    "kubectl get secrets",
    "kubectl get pods -L app,pod-template-hash --no-headers",
    "kubectl get pods -o wide",
    "kubectl get pods -A",
    "kubectl get pods -l app=api --show-labels",
    "kubectl get deploy,svc",
    "kubectl get nodes",
    "kubectl get pods -o name",
    "kubectl top pods",
    "kubectl top pods -A --containers",
    "kubectl top nodes",
    "kubectl logs worker-5c8d7-xk2p9 -c worker --previous",
]


@pytest.mark.skipif(
    not os.access(KUBECTL, os.X_OK), reason=f"no kubectl binary at {KUBECTL}"
)
@pytest.mark.parametrize("text", FAITHFUL)
def test_the_real_kubectl_accepts_the_stand_in_and_prints_the_same(
    text: str, kubeconfig: Path, tmp_path: Path
) -> None:
    real = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(tmp_path / "cache"),
            *shlex.split(text)[1:],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert real.returncode == 0, real.stderr
    ours = run(text)
    assert ours.ok, ours.summary

    def lines(out: str) -> list[str]:
        return [line.rstrip() for line in out.strip("\n").splitlines()]

    if "--containers" in text:  # kubectl orders a pod's containers by name, as we do
        assert sorted(lines(real.stdout)) == sorted(lines(ours.output))
    assert lines(real.stdout) == lines(ours.output)
