"""A tiny in-memory Kubernetes API server on 127.0.0.1, just enough for Helm.

Helm (through helm-sdkpy) has no client-only "template" action, but its real
install/upgrade actions render the chart with the real Helm engine, then talk to
an API server: discovery, release storage (Secrets), `lookup`, and creating the
rendered objects. This server answers those calls from memory, so the checker
gets the exact manifest Helm would apply -- without any cluster and without any
network beyond the loopback interface.

It is a test double, not a Kubernetes: no validation, no defaulting beyond
metadata bookkeeping, no watches. Objects created through it are kept, so a
second Helm action (an upgrade) sees what the first one created, and `lookup`
in templates finds it.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}

# group -> version -> [(plural, kind, namespaced)]
RESOURCES: dict[str, dict[str, list[tuple[str, str, bool]]]] = {
    "": {
        "v1": [
            ("pods", "Pod", True),
            ("pods/ephemeralcontainers", "Pod", True),
            ("services", "Service", True),
            ("configmaps", "ConfigMap", True),
            ("secrets", "Secret", True),
            ("serviceaccounts", "ServiceAccount", True),
            ("replicationcontrollers", "ReplicationController", True),
            ("namespaces", "Namespace", False),
            ("events", "Event", True),
        ]
    },
    "apps": {
        "v1": [
            ("deployments", "Deployment", True),
            ("replicasets", "ReplicaSet", True),
            ("statefulsets", "StatefulSet", True),
            ("daemonsets", "DaemonSet", True),
        ]
    },
    "batch": {"v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)]},
    "policy": {"v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)]},
    "rbac.authorization.k8s.io": {
        "v1": [
            ("clusterroles", "ClusterRole", False),
            ("clusterrolebindings", "ClusterRoleBinding", False),
            ("roles", "Role", True),
            ("rolebindings", "RoleBinding", True),
        ]
    },
    "admissionregistration.k8s.io": {
        "v1": [
            ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False),
            ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False),
        ]
    },
    "networking.k8s.io": {"v1": [("networkpolicies", "NetworkPolicy", True)]},
    "cert-manager.io": {
        "v1": [
            ("certificates", "Certificate", True),
            ("issuers", "Issuer", True),
            ("clusterissuers", "ClusterIssuer", False),
        ]
    },
    "monitoring.coreos.com": {"v1": [("servicemonitors", "ServiceMonitor", True)]},
}


def _kind_of(group: str, version: str, plural: str) -> tuple[str, bool] | None:
    for p, kind, namespaced in RESOURCES.get(group, {}).get(version, []):
        if p == plural:
            return kind, namespaced
    return None


def _pb_fields(buf: bytes):
    """Decode one protobuf message into [(field_number, value)] (bytes or int)."""
    out, i = [], 0

    def varint():
        nonlocal i
        shift = n = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return n

    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            out.append((num, varint()))
        elif wt == 2:
            n = varint()
            out.append((num, buf[i : i + n]))
            i += n
        elif wt == 1:
            out.append((num, buf[i : i + 8]))
            i += 8
        elif wt == 5:
            out.append((num, buf[i : i + 4]))
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
    return out


def _pb_map(entries) -> dict:
    m = {}
    for e in entries:
        f = dict(_pb_fields(e))
        m[f.get(1, b"").decode()] = f.get(2, b"")
    return m


def _decode_protobuf_secret(body: bytes) -> dict:
    """Kubernetes' protobuf encoding of a v1 Secret (what Helm's release storage
    sends; client-go offers JSON for answers, so only requests need decoding)."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("not a Kubernetes protobuf envelope")
    env = dict(_pb_fields(body[4:]))
    tm = dict(_pb_fields(env.get(1, b"")))
    if tm.get(2, b"") != b"Secret":
        raise ValueError(f"protobuf for kind {tm.get(2)!r} is not supported")
    secret = _pb_fields(env.get(2, b""))
    md_raw = next((v for n, v in secret if n == 1), b"")
    md_fields = _pb_fields(md_raw)
    md: dict = {}
    for num, key in ((1, "name"), (3, "namespace"), (5, "uid"), (6, "resourceVersion")):
        v = next((v for n, v in md_fields if n == num), b"")
        if v:
            md[key] = v.decode()
    for num, key in ((11, "labels"), (12, "annotations")):
        m = _pb_map([v for n, v in md_fields if n == num])
        if m:
            md[key] = {k: v.decode() for k, v in m.items()}
    data = _pb_map([v for n, v in secret if n == 2])
    typ = next((v for n, v in secret if n == 3), b"").decode()
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": md,
           "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
    if typ:
        obj["type"] = typ
    return obj


def _merge_patch(target, patch):
    """RFC 7386 merge patch; strategic-merge directives ($...) are dropped."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


class FakeKube:
    """Start with `with FakeKube() as kube:`; `kube.kubeconfig` is a kubeconfig YAML string."""

    def __init__(self) -> None:
        # (group, version, plural, namespace, name) -> object
        self.objects: dict[tuple[str, str, str, str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._rv = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------
    def __enter__(self) -> "FakeKube":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per answer

            def log_message(self, *args):  # quiet
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, code: int, obj) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake._handle(self, "GET", None)

            def do_POST(self):
                fake._handle(self, "POST", self._body())

            def do_PUT(self):
                fake._handle(self, "PUT", self._body())

            def do_PATCH(self):
                fake._handle(self, "PATCH", self._body())

            def do_DELETE(self):
                self._body()
                fake._handle(self, "DELETE", None)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def kubeconfig(self) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: fake\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: fake\n  user:\n    token: fake\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n"
            "current-context: fake\n"
        )

    # ---- helpers for tests ------------------------------------------------
    def get(self, group: str, version: str, plural: str, namespace: str, name: str) -> dict | None:
        return self.objects.get((group, version, plural, namespace, name))

    def put(self, obj: dict) -> None:
        """Seed an object (e.g. a Secret that `lookup` should find)."""
        api = obj["apiVersion"]
        group, version = api.split("/", 1) if "/" in api else ("", api)
        for plural, kind, _ in RESOURCES[group][version]:
            if kind == obj["kind"] and "/" not in plural:
                md = obj["metadata"]
                self.objects[(group, version, plural, md.get("namespace", ""), md["name"])] = obj
                return
        raise KeyError(obj["kind"])

    # ---- request handling ---------------------------------------------------
    def _status(self, code: int, reason: str, message: str) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }

    def _handle(self, h, method: str, body: bytes | None) -> None:
        if body and "protobuf" in (h.headers.get("Content-Type") or ""):
            try:
                body = json.dumps(_decode_protobuf_secret(body)).encode()
            except (ValueError, IndexError) as e:
                return h._send(415, self._status(415, "UnsupportedMediaType", str(e)))
        u = urlparse(h.path)
        path = u.path.rstrip("/")
        query = parse_qs(u.query)
        with self._lock:
            self.requests.append((method, h.path))
        parts = [p for p in path.split("/") if p]

        # discovery
        if path == "/version":
            return h._send(200, KUBE_VERSION)
        if path == "/api":
            return h._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            groups = []
            for g, versions in RESOURCES.items():
                if not g:
                    continue
                vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
                groups.append({"name": g, "versions": vs, "preferredVersion": vs[0]})
            return h._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if parts[:1] == ["api"] and len(parts) == 2 or parts[:1] == ["apis"] and len(parts) == 3:
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            if group not in RESOURCES or version not in RESOURCES[group]:
                return h._send(404, self._status(404, "NotFound", "no such group version"))
            res = [
                {
                    "name": p,
                    "singularName": "" if "/" in p else kind.lower(),
                    "namespaced": ns,
                    "kind": kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                }
                for p, kind, ns in RESOURCES[group][version]
            ]
            gv = f"{group}/{version}" if group else version
            return h._send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": res})

        # resources: /api/v1[/namespaces/NS]/PLURAL[/NAME]  or /apis/G/V[/namespaces/NS]/PLURAL[/NAME]
        if parts[:1] == ["api"]:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return h._send(404, self._status(404, "NotFound", f"unknown path {path}"))
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        elif len(rest) == 2 and rest[0] == "namespaces":
            # a Namespace object itself
            rest = ["namespaces", rest[1]]
        if not rest:
            return h._send(404, self._status(404, "NotFound", f"unknown path {path}"))
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        found = _kind_of(group, version, plural)
        if found is None:
            return h._send(404, self._status(404, "NotFound", f"the server could not find the requested resource ({path})"))
        kind, _ = found
        api_version = f"{group}/{version}" if group else version
        key = (group, version, plural, namespace, name)

        with self._lock:
            if method == "GET" and not name:
                items = [
                    copy.deepcopy(o)
                    for (g, v, p, ns, _n), o in self.objects.items()
                    if (g, v, p) == (group, version, plural) and (not namespace or ns == namespace)
                ]
                selector = query.get("labelSelector", [""])[0]
                if selector:
                    want = dict(kv.split("=", 1) for kv in selector.split(",") if "=" in kv)
                    items = [
                        o for o in items
                        if all(o.get("metadata", {}).get("labels", {}).get(k) == v for k, v in want.items())
                    ]
                return h._send(200, {
                    "kind": f"{kind}List",
                    "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                })
            if method == "GET":
                obj = self.objects.get(key)
                if obj is None:
                    return h._send(404, self._status(404, "NotFound", f'{plural} "{name}" not found'))
                return h._send(200, obj)
            if method == "POST":
                obj = json.loads(body or b"{}")
                md = obj.setdefault("metadata", {})
                name = md.get("name") or (md.get("generateName", "obj-") + uuid.uuid4().hex[:5])
                md["name"] = name
                if namespace:
                    md["namespace"] = namespace
                key = (group, version, plural, namespace, name)
                if key in self.objects:
                    return h._send(409, self._status(409, "AlreadyExists", f'{plural} "{name}" already exists'))
                self._stamp(md, new=True)
                self.objects[key] = obj
                return h._send(201, obj)
            if method in ("PUT", "PATCH"):
                current = self.objects.get(key)
                if method == "PUT":
                    obj = json.loads(body or b"{}")
                else:
                    if current is None:
                        return h._send(404, self._status(404, "NotFound", f'{plural} "{name}" not found'))
                    obj = _merge_patch(current, json.loads(body or b"{}"))
                md = obj.setdefault("metadata", {})
                md["name"] = name
                if namespace:
                    md["namespace"] = namespace
                self._stamp(md, new=current is None, prev=(current or {}).get("metadata"))
                self.objects[key] = obj
                return h._send(200 if current else 201, obj)
            if method == "DELETE":
                obj = self.objects.pop(key, None)
                if obj is None:
                    return h._send(404, self._status(404, "NotFound", f'{plural} "{name}" not found'))
                return h._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})
        return h._send(405, self._status(405, "MethodNotAllowed", method))

    def _stamp(self, md: dict, new: bool, prev: dict | None = None) -> None:
        self._rv += 1
        md["resourceVersion"] = str(self._rv)
        if new or not prev:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        else:
            md["uid"] = prev.get("uid", str(uuid.uuid4()))
            md["creationTimestamp"] = prev.get("creationTimestamp")
