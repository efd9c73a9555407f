"""The worker's kubeconfig, read as kubectl reads it.

`TARGET_KUBECONFIG` (or the `${NAME}` a command gives as `--kubeconfig`) is a path
to a kubeconfig file on the worker, several paths joined by `:` as in kubectl's
KUBECONFIG (the first file to name a cluster, user or context wins), or, when it
holds a line break, the kubeconfig's YAML itself. The context is the command's
`--context` or the file's current-context; its namespace is the default.

Over plain http:// no credentials are sent, as kubectl sends none. Supported: the
cluster's server, CA (data or file) or insecure-skip-tls-verify and
tls-server-name; the user's bearer token (or token file), client certificate and key
(data or files), or basic auth. Exec plugins and auth providers are refused with a
readable reason: the console does not run programs named in a kubeconfig.

Errors never quote the file: a YAML error gives a line number and the parser's
problem, not the line (which could be a token)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml


class KubeconfigError(Exception):
    """The kubeconfig cannot be used; the message says why, without its secrets."""


@dataclass
class Connection:
    server: str
    context: str
    cluster: str
    user: str
    namespace: str
    ssl_context: ssl.SSLContext | None  # None for a plain http:// server
    headers: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # masked in everything shown
    tls_server_name: str | None = None


def _documents(value: str) -> list[tuple[dict[str, Any], Path]]:
    """The kubeconfig documents and the folder each one's relative paths start at."""
    if "\n" in value:
        return [(_parse(value, "the kubeconfig"), Path.cwd())]
    found = []
    for item in value.split(os.pathsep):
        if not item.strip():
            continue
        path = Path(item.strip()).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise KubeconfigError(f"cannot read {path}: {reason}") from None
        found.append((_parse(text, str(path)), path.parent))
    if not found:
        raise KubeconfigError("no kubeconfig path given")
    return found


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise KubeconfigError(f"{where} is not valid YAML ({line}{problem})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{where} is not a kubeconfig (not a mapping)")
    return doc


def _named(docs: list[tuple[dict, Path]], section: str) -> dict[str, tuple[dict, Path]]:
    """`clusters`, `users` or `contexts` merged: the first file to name one wins."""
    merged: dict[str, tuple[dict, Path]] = {}
    key = section[:-1]  # clusters -> cluster
    for doc, base in docs:
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                body = entry.get(key) or {}
                if isinstance(body, dict):
                    merged.setdefault(entry["name"], (body, base))
    return merged


def _decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise KubeconfigError(f"{what} is not base64") from None


def _read(path: str, base: Path, what: str) -> bytes:
    full = (base / Path(path).expanduser()).resolve()
    try:
        return full.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise KubeconfigError(f"cannot read the {what} file {full}: {reason}") from None


def load(
    value: str,
    *,
    context: str | None = None,
    cluster: str | None = None,
    user: str | None = None,
) -> Connection:
    """The connection the kubeconfig in `value` describes (see the module's text)."""
    docs = _documents(value)
    contexts = _named(docs, "contexts")
    clusters = _named(docs, "clusters")
    users = _named(docs, "users")
    name = context or next(
        (d.get("current-context") for d, _ in docs if d.get("current-context")), None
    )
    if not name:
        raise KubeconfigError(
            "no context: the kubeconfig has no current-context and the command "
            "gives no --context"
        )
    if name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise KubeconfigError(f"no context named {name!r} (it has: {known})")
    ctx_body, _ = contexts[name]
    cluster_name = cluster or ctx_body.get("cluster")
    user_name = user or ctx_body.get("user") or ""
    if not cluster_name or cluster_name not in clusters:
        raise KubeconfigError(f"context {name!r} names no known cluster")
    if user_name and user_name not in users:
        raise KubeconfigError(f"context {name!r} names no known user {user_name!r}")
    cluster_body, cluster_base = clusters[cluster_name]
    user_body, user_base = users.get(user_name, ({}, Path.cwd()))

    server = str(cluster_body.get("server") or "").rstrip("/")
    scheme = urlsplit(server).scheme
    if scheme not in {"http", "https"} or not urlsplit(server).hostname:
        raise KubeconfigError(f"cluster {cluster_name!r} has no http(s) server")
    conn = Connection(
        server=server,
        context=name,
        cluster=cluster_name,
        user=user_name,
        namespace=str(ctx_body.get("namespace") or "default"),
        ssl_context=None,
        tls_server_name=cluster_body.get("tls-server-name") or None,
    )
    if scheme == "https":
        _authenticate(conn, user_body, user_base, user_name)
        conn.ssl_context = _tls(cluster_body, cluster_base, user_body, user_base, conn)
    # As kubectl (clientcmd reads a user's credentials only for a TLS server): over
    # plain http nothing is sent that someone on the path could replay.
    return conn


def _authenticate(conn: Connection, body: dict, base: Path, name: str) -> None:
    token = body.get("token")
    if not token and body.get("tokenFile"):
        token = _read(str(body["tokenFile"]), base, "token").decode().strip()
    if token:
        conn.headers["Authorization"] = f"Bearer {token}"
        conn.secrets.append(str(token))
    elif body.get("username") or body.get("password"):
        pair = f"{body.get('username') or ''}:{body.get('password') or ''}"
        encoded = base64.b64encode(pair.encode()).decode()
        conn.headers["Authorization"] = f"Basic {encoded}"
        conn.secrets += [str(body.get("password") or ""), encoded]
    elif not (
        body.get("client-certificate-data") or body.get("client-certificate")
    ) and (body.get("exec") or body.get("auth-provider")):
        how = "an exec plugin" if body.get("exec") else "an auth provider"
        raise KubeconfigError(
            f"user {name!r} authenticates with {how}, which the console does not "
            "run: give the worker a kubeconfig with a token (a service account's) "
            "or a client certificate"
        )


def _tls(
    cluster: dict, cluster_base: Path, user: dict, user_base: Path, conn: Connection
) -> ssl.SSLContext:
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        pem = _decode(
            cluster["certificate-authority-data"], "certificate-authority-data"
        )
        context = _verifying(cadata=pem.decode("ascii", "replace"))
    elif cluster.get("certificate-authority"):
        pem = _read(cluster["certificate-authority"], cluster_base, "CA")
        context = _verifying(cadata=pem.decode("ascii", "replace"))
    else:
        context = ssl.create_default_context()  # the system's CAs
    cert = key = None
    if user.get("client-certificate-data"):
        cert = _decode(user["client-certificate-data"], "client-certificate-data")
    elif user.get("client-certificate"):
        cert = _read(user["client-certificate"], user_base, "client certificate")
    if user.get("client-key-data"):
        conn.secrets.append(str(user["client-key-data"]))
        key = _decode(user["client-key-data"], "client-key-data")
    elif user.get("client-key"):
        key = _read(user["client-key"], user_base, "client key")
    if key:
        conn.secrets += [
            line
            for line in key.decode("ascii", "replace").splitlines()
            if len(line) >= 16 and not line.startswith("-----")
        ]
    if cert and key:
        _load_pair(context, cert, key)
    elif cert or key:
        raise KubeconfigError("the user has a client certificate or key but not both")
    return context


def _verifying(cadata: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cadata=cadata)
    except (ssl.SSLError, ValueError) as exc:
        raise KubeconfigError(
            f"the cluster's CA is not a PEM certificate ({exc})"
        ) from None


def _load_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Python's ssl loads a certificate and key only from files: write them to a
    private folder (mode 0700, files 0600) and delete it as soon as they are read."""
    folder = tempfile.mkdtemp(prefix="kubectl-")
    try:
        cert_path, key_path = Path(folder, "cert.pem"), Path(folder, "key.pem")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise KubeconfigError(
                f"the client certificate and key cannot be used ({exc.reason or exc})"
            ) from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
