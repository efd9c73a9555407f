"""Speaking the Kubernetes API as kubectl does, with httpx: GETs only, one client
per run, every request inside the run's deadline (the connect timeout for each new
connection, the rest of the run's time for each read, and a timer that shuts the
sockets at the deadline), bodies read as streams up to a bound.

A failure is an ApiError whose summary a tired responder can read ("the
kubeconfig's user may not list pods in namespace x", "no pod named x"); the runner
turns it into a Result. Nothing here puts a token or key into a message: the
kubeconfig's secrets are masked (with their encoded forms) before redaction."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ... import redaction
from ...runtime import Context, Deadline, shutdown
from .kubeconfig import Connection

TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
# An answer larger than this is not read whole (a list is asked for 500 at a time).
MAX_BODY = 32 * 1024 * 1024
SOCKET_EVENTS = {"connection.connect_tcp.complete", "connection.start_tls.complete"}
USER_AGENT = "yomira-console/kubectl-family (read-only)"


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def shown(self) -> str:
        """kubectl's `-o name` prefix: `pod`, `deployment.apps`."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if self.namespaced and namespace:
            root += f"/namespaces/{quote(namespace, safe='')}"
        root += f"/{self.plural}"
        return f"{root}/{quote(name, safe='')}" if name else root


def _r(
    group: str, version: str, plural: str, kind: str, *aliases: str, ns: bool = True
) -> list[tuple[str, Resource]]:
    res = Resource(group, version, plural, kind, ns)
    return [(a, res) for a in (plural, kind.lower(), *aliases)]


BUILTIN: dict[str, Resource] = dict(
    _r("", "v1", "pods", "Pod", "po")
    + _r("", "v1", "services", "Service", "svc")
    + _r("", "v1", "endpoints", "Endpoints", "ep")
    + _r("", "v1", "events", "Event", "ev")
    + _r("", "v1", "configmaps", "ConfigMap", "cm")
    + _r("", "v1", "secrets", "Secret")
    + _r("", "v1", "serviceaccounts", "ServiceAccount", "sa")
    + _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", "pvc")
    + _r("", "v1", "replicationcontrollers", "ReplicationController", "rc")
    + _r("", "v1", "resourcequotas", "ResourceQuota", "quota")
    + _r("", "v1", "limitranges", "LimitRange", "limits")
    + _r("", "v1", "nodes", "Node", "no", ns=False)
    + _r("", "v1", "namespaces", "Namespace", "ns", ns=False)
    + _r("", "v1", "persistentvolumes", "PersistentVolume", "pv", ns=False)
    + _r("apps", "v1", "deployments", "Deployment", "deploy")
    + _r("apps", "v1", "replicasets", "ReplicaSet", "rs")
    + _r("apps", "v1", "statefulsets", "StatefulSet", "sts")
    + _r("apps", "v1", "daemonsets", "DaemonSet", "ds")
    + _r("batch", "v1", "jobs", "Job")
    + _r("batch", "v1", "cronjobs", "CronJob", "cj")
    + _r(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        "hpa",
    )
    + _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", "pdb")
    + _r("networking.k8s.io", "v1", "ingresses", "Ingress", "ing")
    + _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", "netpol")
    + _r("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
    + _r("coordination.k8s.io", "v1", "leases", "Lease")
    + _r("storage.k8s.io", "v1", "storageclasses", "StorageClass", "sc", ns=False)
    + _r("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", "pc", ns=False)
    + _r(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        "crd",
        "crds",
        ns=False,
    )
)
# kubectl's `all` category.
ALL = (
    "pods",
    "services",
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
    "horizontalpodautoscalers",
    "cronjobs",
    "jobs",
)
METRICS = "/apis/metrics.k8s.io/v1beta1"


class ApiError(Exception):
    def __init__(
        self,
        summary: str,
        output: str = "",
        *,
        status: int | None = None,
        timed_out: bool = False,
        partial: bytes = b"",
        message: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(summary)
        self.summary = summary
        self.output = output
        self.status = status
        self.timed_out = timed_out
        self.partial = partial
        self.message = message  # the API's own words (a Status's message)
        self.details = details or {}


@dataclass
class Ask:
    """What a request asks, in kubectl's words, for its error messages."""

    verb: str  # get, list
    resource: str  # pods, deployments.apps, podmetrics
    namespace: str | None = None
    name: str | None = None
    singular: str = ""

    def where(self) -> str:
        return f" in namespace {self.namespace}" if self.namespace else ""


@dataclass
class Reply:
    status: int
    body: bytes
    cut: bool = False  # stopped reading at the bound
    skipped: int = 0  # bytes dropped from the front (keep="tail")

    def json(self) -> Any:
        if self.cut:
            raise ApiError(
                f"The API server's answer is larger than {MAX_BODY // 2**20} MB: "
                "narrow it with a name, -l or --field-selector"
            )
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(
                f"The API server's answer is not JSON ({len(self.body)} bytes)",
                self.body[:2000].decode("utf-8", "replace"),
            ) from None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Api:
    def __init__(self, conn: Connection, ctx: Context, deadline: Deadline) -> None:
        self.conn = conn
        self.ctx = ctx
        self.deadline = deadline
        self.requests = 0
        forms: set[str] = set()
        for secret in conn.secrets:
            if len(secret) >= 4:
                forms |= {f for f in redaction.encoded_forms(secret) if len(f) >= 4}
        self._forms = sorted(forms, key=len, reverse=True)

        def trace(event: str, info: dict) -> None:
            # Both sockets: wrapping a socket in TLS detaches the plain one, so
            # shutting that one down would no longer reach the connection.
            if event in SOCKET_EVENTS and info.get("return_value"):
                sock = info["return_value"].get_extra_info("socket")
                deadline.on_expiry(lambda: shutdown(sock))

        self._trace = trace
        self.client = httpx.Client(
            base_url=conn.server,
            verify=conn.ssl_context if conn.ssl_context is not None else True,
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, **conn.headers},
        )

    def close(self) -> None:
        self.client.close()

    def mask(self, text: str) -> str:
        """`text` without the kubeconfig's secrets, then redacted as everything is."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, redaction.MASK)
        return redaction.redact(text)

    def get(
        self,
        path: str,
        ask: Ask,
        params: dict[str, Any] | None = None,
        *,
        accept: str = "application/json",
        limit: int = MAX_BODY,
        keep: str = "head",
        allow: tuple[int, ...] = (),
    ) -> Reply:
        """GET `path`; its body up to `limit` bytes (`keep="tail"`: the last
        `limit` bytes, the rest read and dropped). Raises ApiError for a failure
        or a status >= 400 not in `allow`."""
        remaining = max(0.05, self.ctx.deadline - time.monotonic())
        timeout = httpx.Timeout(
            remaining, connect=min(self.ctx.connect_timeout, remaining)
        )
        query = {k: v for k, v in (params or {}).items() if v not in (None, "", False)}
        query = {k: ("true" if v is True else str(v)) for k, v in query.items()}
        self.requests += 1
        body = bytearray()
        skipped = 0
        cut = False
        status = 0
        try:
            with self.client.stream(
                "GET",
                path,
                params=query,
                headers={"Accept": accept, "Accept-Encoding": "identity"},
                timeout=timeout,
                extensions=self._extensions(),
            ) as response:
                status = response.status_code
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        if keep == "tail":
                            skipped += len(body) - limit
                            del body[: len(body) - limit]
                        else:
                            del body[limit:]
                            cut = True
                            break
        except httpx.ConnectTimeout:
            raise ApiError(
                f"No connection to the Kubernetes API at {self.conn.server} within "
                f"{min(self.ctx.connect_timeout, self.ctx.timeout):g} s",
                timed_out=True,
            ) from None
        except Exception as exc:
            # Cut off at the deadline, a torn-down TLS read may fail in any way.
            if self.deadline.expired or isinstance(exc, httpx.TimeoutException):
                raise ApiError(
                    f"The Kubernetes API at {self.conn.server} did not answer within "
                    f"{self.ctx.timeout:g} s ({ask.verb} {ask.resource}{ask.where()})",
                    timed_out=True,
                    partial=bytes(body),
                ) from None
            if isinstance(exc, httpx.HTTPError):
                raise ApiError(self._unreachable(exc)) from None
            raise
        if self.deadline.expired:  # the timer cut the body short
            raise ApiError(
                f"The Kubernetes API at {self.conn.server} did not finish answering "
                f"within {self.ctx.timeout:g} s ({ask.verb} {ask.resource}{ask.where()})",
                timed_out=True,
                partial=bytes(body),
            )
        reply = Reply(status, bytes(body), cut, skipped)
        if status >= 400 and status not in allow:
            raise refusal(reply, ask, self.conn)
        if 300 <= status < 400:
            raise ApiError(
                f"The API server answered {status} (a redirect, not followed) for "
                f"{ask.verb} {ask.resource}: is the kubeconfig's server the API's URL?"
            )
        return reply

    def _extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"trace": self._trace}
        if self.conn.tls_server_name:
            extensions["sni_hostname"] = self.conn.tls_server_name
        return extensions

    def _unreachable(self, exc: Exception) -> str:
        text = str(exc) or type(exc).__name__
        low = text.lower()
        if "refused" in low:
            reason = "connection refused"
        elif "certificate" in low or "ssl" in low or "tls" in low:
            reason = f"TLS failed: {text}"
        elif "name or service not known" in low or "nodename nor servname" in low:
            reason = "unknown host"
        else:
            reason = text
        return f"Cannot reach the Kubernetes API at {self.conn.server} ({reason})"


def status_message(reply: Reply) -> tuple[str, dict[str, Any]]:
    """The message and details of a `Status` answer, or the body's first line."""
    try:
        doc = json.loads(reply.body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return str(doc.get("message") or doc.get("reason") or ""), doc.get(
            "details"
        ) or {}
    first = reply.text().strip().splitlines()
    return (first[0][:300] if first else ""), {}


def refusal(reply: Reply, ask: Ask, conn: Connection) -> ApiError:
    message, details = status_message(reply)
    who = (
        f"the kubeconfig's user ({conn.user})" if conn.user else "the kubeconfig's user"
    )
    status = reply.status
    output = f"HTTP {status}\n{message}" if message else f"HTTP {status}"
    if status == 401 and conn.ssl_context is None:
        summary = (
            f"Unauthorized (401): the API server at {conn.server} wants credentials, "
            "and (as kubectl) none are sent to a plain http:// server"
        )
    elif status == 401:
        summary = (
            f"Unauthorized (401): the API server at {conn.server} does not accept "
            f"{who}'s credentials (token expired or revoked?)"
        )
    elif status == 403:
        summary = (
            f"Forbidden (403): {who} may not {ask.verb} {ask.resource}{ask.where()}"
        )
    elif status == 404 and ask.name and details.get("name"):
        summary = f"No {ask.singular or ask.resource} named {ask.name}{ask.where()}"
    elif status == 404 and ask.name and ask.verb == "get":
        summary = (
            f"Not found (404): no {ask.singular or ask.resource} named "
            f"{ask.name}{ask.where()}, or the API server does not serve {ask.resource}"
        )
    elif status == 404:
        summary = f"Not found (404): the API server does not serve {ask.resource}"
    elif status == 400:
        summary = f"The API server refused the request (400): {message}"
    elif status == 429:
        summary = "The API server is overloaded (429 Too Many Requests); try again"
    else:
        summary = f"The API server answered {status} for {ask.verb} {ask.resource}"
        if message:
            summary += f": {message[:200]}"
    return ApiError(summary, output, status=status, message=message, details=details)


def discover(api: Api, typed: str) -> Resource:
    """A resource kubectl would find through discovery: `certificates`,
    `certificates.cert-manager.io`, `certificate.v1.cert-manager.io`. Built-in
    types are in BUILTIN and need no request."""
    name, _, group = typed.partition(".")
    if name in BUILTIN and (not group or BUILTIN[name].group == group):
        return BUILTIN[name]
    version = None
    if group and "." in group:
        head, _, rest = group.partition(".")
        if head.startswith("v") and head[1:2].isdigit():
            version, group = head, rest
    if group == "core":
        group = ""
    if not group and name in BUILTIN:
        return BUILTIN[name]
    ask = Ask("list", "API groups")
    candidates: list[tuple[str, str]] = []
    if group:
        if version:
            candidates = [(group, version)]
        else:
            doc = api.get(f"/apis/{quote(group, safe='')}", ask, allow=(404,))
            preferred = (
                (doc.json() or {}).get("preferredVersion", {})
                if doc.status < 400
                else {}
            )
            if preferred.get("version"):
                candidates = [(group, preferred["version"])]
    else:
        groups = api.get("/apis", ask).json().get("groups") or []
        candidates = [
            (g.get("name", ""), (g.get("preferredVersion") or {}).get("version", ""))
            for g in groups
        ]
    for group_name, group_version in candidates:
        if not group_name or not group_version:
            continue
        reply = api.get(
            f"/apis/{quote(group_name, safe='')}/{quote(group_version, safe='')}",
            Ask("list", f"resources of {group_name}"),
            allow=(404, 503),
        )
        if reply.status >= 400:
            continue
        for res in reply.json().get("resources") or []:
            plural = res.get("name", "")
            if "/" in plural:
                continue  # a subresource: pods/log
            names = {
                plural,
                res.get("singularName", ""),
                *(res.get("shortNames") or []),
            }
            if name in names or name == str(res.get("kind", "")).lower():
                return Resource(
                    group_name,
                    group_version,
                    plural,
                    res.get("kind", plural),
                    bool(res.get("namespaced", True)),
                )
    raise ApiError(f'The API server does not have a resource type "{typed}"')
