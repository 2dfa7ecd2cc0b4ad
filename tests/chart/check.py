#!/usr/bin/env python3
"""Checks the vouch Helm chart (charts/vouch) and the example trust policies (policy/).

    python3 tests/chart/check.py [CONCERN ...]     # default: every concern
    python3 tests/chart/check.py dump DIR          # write each scenario's rendered vouch files

Concerns:
  lint      `helm lint` with --strict semantics (warnings fail) for the default values, every
            values file in charts/vouch/ci/ and EXTRA_SCENARIOS below, with a real Helm (the
            helm-sdkpy package: Helm 4's Go library; its Lint runs offline)
  render    render every scenario with the real Helm engine (an install against an in-memory
            API server, tests/chart/fakekube.py) and validate each object against the
            Kubernetes JSON schemas of the oldest and newest supported versions
            (kubernetes-validate, strict: unknown fields fail), CRDs against schemas here
  safety    the properties a fail-closed webhook needs, on every scenario's objects
  upgrade   TLS "generate" keeps its CA across upgrades via lookup, in both webhook
            configurations; config changes roll the pods, trust policy changes do not (vouch
            reloads them); switching pinning off removes the mutating webhook
  mutating  the MutatingWebhookConfiguration (pinning): on by default, switchable off, pods
            only unless webhook.mutating.templates, in step with the validating webhook
  values    values.schema.json and the template guards reject typos and unsafe combinations;
            every value in values.yaml carries a comment
  policies  policy/*.json are valid Notation trust policies whose stores exist in
            policy/truststore, and the ci/ values files carry those same policies

Every failure is printed; the exit status is 1 when there was any.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHART = Path(os.environ.get("VOUCH_CHART_DIR") or ROOT / "charts" / "vouch").resolve()  # override: mutation tests
POLICY_DIR = ROOT / "policy"
RELEASE = "vouch"
NAMESPACE = "vouch-system"  # deliberately not "vouch": exclusions must follow the release namespace

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(HERE))
from fakekube import FakeKube  # noqa: E402

try:
    import helm_sdkpy as helm  # noqa: E402
except ImportError as e:  # pragma: no cover
    sys.exit(f"helm-sdkpy is not installed ({e}): pip install --ignore-requires-python helm-sdkpy")
try:
    import kubernetes_validate  # noqa: E402
except ImportError as e:  # pragma: no cover
    sys.exit(f"kubernetes-validate is not installed ({e}): pip install kubernetes-validate")
import jsonschema  # noqa: E402  (a dependency of kubernetes-validate)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas.
KUBE_VERSIONS = ["1.25", kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version())]

# The vouch configuration keys vouch understands today (src/config.rs, src/tenancy/namespaces.rs,
# src/cosign/mod.rs). Anything else makes vouch refuse to start.
CONFIG_KEYS = {"trustPolicy", "trustStore", "insecureRegistries", "dockerConfig", "maxSignatures", "serve",
               "quarantine", "cache", "revocation", "platforms", "namespaces", "cosign", "signatures"}
SERVE_KEYS = {"listen", "tlsCert", "tlsKey", "deadline", "enforcement", "maxConcurrency", "maxPending", "maxConnections",
              "readTimeout", "idleTimeout", "logFormat", "reloadInterval", "mutate", "pullCredentials"}
MUTATE_KEYS = {"templates"}
NAMESPACE_KEYS = {"name", "names", "selector", "trustPolicy", "trustStore"}
COSIGN_KEYS = {"registryScopes", "level", "keys", "keyless", "trustedRoot", "predicateTypes"}
KEYLESS_KEYS = {"subject", "subjectRegExp", "issuer", "issuerRegExp"}

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


# ---------------------------------------------------------------------------------------------
# reporting

class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passes = 0

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passes += 1
        else:
            self.failures.append(what)
            print(f"  FAIL {what}", flush=True)
        return ok

    def fail(self, what: str) -> None:
        self.check(False, what)


R = Report()


# ---------------------------------------------------------------------------------------------
# values and scenarios

def load_yaml(path: Path) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def coalesce(base: Any, override: Any) -> Any:
    """Helm's merge of user values over chart values: maps merge, null deletes, the rest replace."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for k, v in override.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = coalesce(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def default_values() -> dict:
    return load_yaml(CHART / "values.yaml")


# Options the documented examples do not use, rendered and checked all the same.
EXTRA_SCENARIOS: dict[str, dict] = {
    "options": {
        "replicaCount": 3,
        "podAntiAffinity": "hard",
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "DoNotSchedule"}],
        "podDisruptionBudget": {"minAvailable": "50%"},
        "hostNetwork": True,
        "vouch": {"port": 9443, "deadline": "7500ms", "logFormat": "text", "insecureRegistries": ["registry.local:5000"],
                  "quarantine": [{"registries": ["*.azurecr.io"], "source": "acr", "enforcement": "enforce"},
                                 {"registries": ["registry.local:5000"], "source": "referrer", "enforcement": "audit",
                                  "requireSignature": True}],
                  "cache": {"allowTtl": "5m", "staleIfError": "30m", "maxEntries": 50000,
                            "redis": {"url": "redis://vouch-redis:6379", "timeout": "50ms"}},
                  "revocation": {"ocspTimeout": "1500ms", "crlTimeout": "4s", "fetch": True},
                  "offlineCrlsConfigMap": "cluster-crls"},
        "env": [{"name": "RUST_LOG", "value": "vouch=debug"}],
        "serviceAccount": {"create": False, "name": "platform-webhooks"},
        "webhook": {"validateWorkloads": False, "timeoutSeconds": 15, "objectSelector": {"matchLabels": {"team": "a"}},
                    "annotations": {"example.com/owner": "platform"},
                    "mutating": {"objectSelector": {"matchLabels": {"team": "b"},
                                                    "matchExpressions": [{"key": "vouch.dev/no-pin", "operator": "DoesNotExist"}]},
                                 "annotations": {"example.com/owner": "platform-pinning"}}},
        "existingTrustPolicyConfigMap": "central-trust-policy",
        "registryAuth": {"pullSecrets": {"enabled": True}},
        "service": {"port": 8443},
        "commonLabels": {"example.com/cost-center": "platform"},
        "networkPolicy": {"enabled": True, "ingressFrom": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                          "apiServerTo": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]},
        "metrics": {"serviceMonitor": {"enabled": True, "tlsConfig": {"insecureSkipVerify": True}}},
        "tls": {"mode": "secret", "secret": {"name": "webhook-cert", "caCert": None}},
    },
    # Pinning workload templates too, with namespaces and objects exempted from pinning only.
    "pin-templates": {
        "webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 12, "excludeNamespaces": ["legacy"],
                    "namespaceSelectorExpressions": [{"key": "vouch.dev/ignore", "operator": "DoesNotExist"}],
                    "mutating": {"templates": True,
                                 "namespaceSelectorExpressions": [{"key": "vouch.dev/no-pin", "operator": "DoesNotExist"}],
                                 "objectSelector": {"matchExpressions": [{"key": "vouch.dev/no-pin", "operator": "DoesNotExist"}]}}},
    },
    # No pinning: only the validating webhook.
    "no-pinning": {"webhook": {"mutating": {"enabled": False}}},
    # Tenancy with what tenants maintain themselves: pull credentials read with namespaced Roles
    # (no cluster-wide Secret access), a mapping whose policy and store are existing ConfigMaps
    # and Secrets, cosign material from existing ConfigMaps.
    "tenancy-existing": {
        "vouch": {"pullCredentials": "pod"},
        "rbac": {"pullCredentials": {"grant": "namespaces", "namespaces": ["team-a", "team-b"]}},
        "namespaceTrust": [{"names": ["team-b"], "existingTrustPolicyConfigMap": "team-b-policy",
                            "trustStores": [{"name": "team-b", "type": "ca", "existingSecret": "team-b-ca", "keys": ["ca.crt"]},
                                            {"name": "team-b-tsa", "type": "tsa", "existingConfigMap": "team-b-tsa"}]}],
        "cosign": {"rules": [{"registryScopes": ["*"], "level": "audit", "keys": ["shared"],
                              "keyless": [{"subject": "release@example.com", "issuerRegExp": "^https://issuer\\.example/"}],
                              "trustedRoot": "public-good", "predicateTypes": ["https://slsa.dev/provenance/v1"]}],
                   "keys": [{"name": "shared", "existingConfigMap": "cosign-keys", "key": "release.pub"}],
                   "trustedRoots": [{"name": "public-good", "existingConfigMap": "sigstore-root", "key": "trusted_root.json"}]},
    },
}


def scenarios() -> list[tuple[str, dict]]:
    """(name, user values): the defaults, every documented values file in ci/, and the extras."""
    out: list[tuple[str, dict]] = [("default", {})]
    for p in sorted((CHART / "ci").glob("*-values.yaml")):
        out.append((p.name[: -len("-values.yaml")], load_yaml(p) or {}))
    secret_ca = (load_yaml(CHART / "ci" / "secret-values.yaml") or {}).get("tls", {}).get("secret", {}).get("caCert", "")
    for name, values in EXTRA_SCENARIOS.items():
        values = copy.deepcopy(values)
        if values.get("tls", {}).get("secret", {}).get("caCert", "") is None:
            values["tls"]["secret"]["caCert"] = secret_ca
        out.append((name, values))
    return out


# ---------------------------------------------------------------------------------------------
# Helm

def _run(coro):
    return asyncio.run(coro)


def helm_lint(values: dict) -> list[dict]:
    """Lint a copy of the chart whose values.yaml is the chart's merged with `values` (what
    `helm lint -f values.yaml` checks). Returns Helm's messages."""
    with tempfile.TemporaryDirectory() as d:
        dst = Path(d) / "vouch"
        shutil.copytree(CHART, dst)
        if values:
            merged = coalesce(default_values(), values)
            with open(dst / "values.yaml", "w") as f:
                yaml.safe_dump(merged, f, sort_keys=False)
        config = helm.Configuration(namespace=NAMESPACE)
        result = _run(helm.Lint(config).run(str(dst)))
    return result.get("Messages") or []


class Rendered:
    def __init__(self, manifest: str, notes: str, kube: FakeKube | None = None):
        self.manifest = manifest
        self.notes = notes
        self.docs = [d for d in yaml.safe_load_all(manifest) if d]
        self.kube = kube

    def all(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, name: Any = ...) -> dict | None:
        """The first object of `kind` (named `name`, when given)."""
        for d in self.docs:
            if d.get("kind") == kind and (name is ... or d["metadata"]["name"] == name):
                return d
        return None


def helm_install(kube: FakeKube, values: dict | None) -> Rendered:
    config = helm.Configuration(namespace=NAMESPACE, kubeconfig=kube.kubeconfig)
    rel = _run(helm.Install(config).run(RELEASE, str(CHART), values=values or None, wait=False, timeout=60))
    return Rendered(rel.get("manifest", ""), (rel.get("info") or {}).get("notes", ""), kube)


def helm_upgrade(kube: FakeKube, values: dict | None) -> Rendered:
    config = helm.Configuration(namespace=NAMESPACE, kubeconfig=kube.kubeconfig)
    rel = _run(helm.Upgrade(config).run(
        RELEASE, str(CHART), values=values or None, wait=False, timeout=60, server_side_apply=False))
    return Rendered(rel.get("manifest", ""), (rel.get("info") or {}).get("notes", ""), kube)


def render(values: dict | None) -> Rendered:
    """The chart rendered by Helm for a first install: `lookup` finds nothing, as offline."""
    with FakeKube() as kube:
        return helm_install(kube, values)


def render_error(values: dict | None) -> str | None:
    try:
        render(values)
    except helm.HelmError as e:
        return str(e)
    return None


# ---------------------------------------------------------------------------------------------
# Notation trust policy rules (as vouch and notation-go apply them)

SCOPE_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$")
SCOPE_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$")
STORE_REF = re.compile(r"^(ca|signingAuthority|tsa):([a-zA-Z0-9_.-]+)$")
LEVELS = {"strict", "permissive", "audit", "skip"}


def policy_problems(doc: Any) -> list[str]:
    p: list[str] = []
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    if doc.get("version") != "1.0":
        p.append(f"version must be \"1.0\", is {doc.get('version')!r}")
    statements = doc.get("trustPolicies") or []
    if not statements:
        p.append("no trust policy statements")
    names: set[str] = set()
    scopes_seen: set[str] = set()
    for s in statements:
        name = s.get("name") or ""
        if not name:
            p.append("a statement has no name")
        if name in names:
            p.append(f"statement name {name!r} is used twice")
        names.add(name)
        extra = set(s) - {"name", "registryScopes", "signatureVerification", "trustStores", "trustedIdentities"}
        if extra:
            p.append(f"{name}: unknown keys {sorted(extra)}")
        sv = s.get("signatureVerification") or {}
        level = sv.get("level")
        if level not in LEVELS:
            p.append(f"{name}: level {level!r} is not one of {sorted(LEVELS)}")
        stores = s.get("trustStores") or []
        identities = s.get("trustedIdentities") or []
        if level == "skip":
            if stores or identities:
                p.append(f"{name}: a skip statement must not name trust stores or identities")
        else:
            if not stores or not identities:
                p.append(f"{name}: needs both trustStores and trustedIdentities")
            for ref in stores:
                if not STORE_REF.match(ref):
                    p.append(f"{name}: trust store {ref!r} is not <ca|signingAuthority|tsa>:<name>")
            if "*" in identities and len(identities) > 1:
                p.append(f"{name}: '*' identity cannot be combined with others")
            for ident in identities:
                if ident == "*":
                    continue
                prefix, _, dn = ident.partition(":")
                if prefix != "x509.subject":
                    continue
                attrs = {}
                for rdn in dn.split(","):
                    k, _, v = rdn.strip().partition("=")
                    if k in attrs:
                        p.append(f"{name}: identity {ident!r} repeats {k}")
                    attrs["ST" if k == "S" else k] = v
                for mandatory in ("C", "ST", "O"):
                    if not attrs.get(mandatory):
                        p.append(f"{name}: identity {ident!r} lacks {mandatory}")
        scopes = s.get("registryScopes") or []
        if not scopes:
            p.append(f"{name}: no registry scopes")
        if "*" in scopes and len(scopes) > 1:
            p.append(f"{name}: '*' scope cannot be combined with others")
        for scope in scopes:
            if scope != "*":
                domain, _, repo = scope.partition("/")
                if not (repo and SCOPE_DOMAIN.match(domain) and SCOPE_REPO.match(repo)):
                    p.append(f"{name}: scope {scope!r} is not registry/repository")
            if scope in scopes_seen:
                p.append(f"scope {scope!r} appears in more than one statement")
            scopes_seen.add(scope)
    return p


def policy_store_refs(doc: dict) -> set[str]:
    return {ref for s in doc.get("trustPolicies") or [] for ref in s.get("trustStores") or []}


# ---------------------------------------------------------------------------------------------
# Kubernetes schema validation

_CERT_MANAGER_ISSUER_REF = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": {"type": "string"}},
}
_METADATA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}}}
CRD_SCHEMAS: dict[tuple[str, str], dict] = {
    # The fields of cert-manager v1 and Prometheus Operator v1 the chart uses; unknown ones fail.
    ("cert-manager.io/v1", "Certificate"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": _METADATA, "spec": {
            "type": "object", "required": ["secretName", "issuerRef"], "additionalProperties": False,
            "properties": {
                "secretName": {"type": "string"}, "commonName": {"type": "string", "maxLength": 64},
                "dnsNames": {"type": "array", "items": {"type": "string"}},
                "duration": {"type": "string"}, "renewBefore": {"type": "string"}, "isCA": {"type": "boolean"},
                "usages": {"type": "array", "items": {"enum": [
                    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
                    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
                    "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
                    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"]}},
                "privateKey": {"type": "object", "additionalProperties": False, "properties": {
                    "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]}, "size": {"type": "integer"},
                    "encoding": {"enum": ["PKCS1", "PKCS8"]}, "rotationPolicy": {"enum": ["Never", "Always"]}}},
                "issuerRef": _CERT_MANAGER_ISSUER_REF}}}},
    ("cert-manager.io/v1", "Issuer"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": _METADATA, "spec": {
            "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
            "properties": {"selfSigned": {"type": "object"},
                           "ca": {"type": "object", "required": ["secretName"], "properties": {"secretName": {"type": "string"}}}}}}},
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": _METADATA, "spec": {
            "type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
            "properties": {
                "selector": {"type": "object"},
                "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                    "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
                "endpoints": {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
                    "port": {"type": "string"}, "path": {"type": "string"}, "scheme": {"enum": ["http", "https"]},
                    "interval": {"type": "string"}, "scrapeTimeout": {"type": "string"},
                    "tlsConfig": {"type": "object", "additionalProperties": False, "properties": {
                        "ca": {"type": "object"}, "cert": {"type": "object"}, "keySecret": {"type": "object"},
                        "serverName": {"type": "string"}, "insecureSkipVerify": {"type": "boolean"}}}}}}}}}},
}


def schema_problems(doc: dict, version: str) -> list[str]:
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        v = jsonschema.Draft7Validator(CRD_SCHEMAS[key])
        return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in v.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.utils.SchemaNotFoundError:
        return [f"no Kubernetes {version} schema for {key[0]} {key[1]}"]
    except kubernetes_validate.utils.ValidationError as e:
        where = "/".join(map(str, e.absolute_path)) or "."
        return [f"{where}: {e.message}"]
    return []


# ---------------------------------------------------------------------------------------------
# helpers on rendered objects

def failure_policy(values: dict) -> str:
    """The failurePolicy the webhooks must carry: as set, else Fail under enforce, Ignore under dryrun."""
    return values["webhook"]["failurePolicy"] or ("Ignore" if values["vouch"]["enforcement"] == "dryrun" else "Fail")


def container(rendered: Rendered) -> dict:
    dep = rendered.one("Deployment")
    return dep["spec"]["template"]["spec"]["containers"][0] if dep else {}


def vouch_config(rendered: Rendered) -> dict:
    cm = rendered.one("ConfigMap", f"{fullname()}-config")
    return yaml.safe_load(cm["data"]["config.yaml"]) if cm else {}


def fullname() -> str:
    return RELEASE  # release "vouch": the chart does not repeat the name


def duration_ms(text: str) -> float:
    total, pos = 0.0, 0
    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    for m in re.finditer(r"([0-9]+)(ms|s|m|h)", str(text)):
        if m.start() != pos:
            raise ValueError(text)
        total += int(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(str(text)) or pos == 0:
        raise ValueError(text)
    return total


def mounts_by_path(rendered: Rendered) -> dict[str, tuple[dict, dict]]:
    """mountPath -> (volumeMount, volume)."""
    dep = rendered.one("Deployment")
    if not dep:
        return {}
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"].get("volumes", [])}
    return {m["mountPath"]: (m, volumes.get(m["name"], {})) for m in container(rendered).get("volumeMounts", [])}


def secret_pem(rendered: Rendered, name: str, key: str) -> bytes | None:
    s = rendered.one("Secret", name)
    if not s or key not in (s.get("data") or {}):
        return None
    return base64.b64decode(s["data"][key])


def tenant_namespaces(values: dict) -> list[str]:
    """The namespaces the chart grants pull-credential Roles in (rbac.pullCredentials grant namespaces)."""
    pc = values["rbac"].get("pullCredentials") or {}
    return list(pc.get("namespaces") or []) if pc.get("grant") == "namespaces" else []


def reads_the_api(values: dict) -> bool:
    """Whether `vouch serve` calls the Kubernetes API with these values (src/server/mod.rs start)."""
    return values["vouch"]["pullCredentials"] != "own" or any(m.get("selector") for m in values.get("namespaceTrust") or [])


def mapping_dir(i: int, m: dict) -> str:
    return f"/etc/vouch/namespaces/{m.get('name') or i}"


def check_rendered_policy(name: str, what: str, doc: dict, store_root: str, mounts: dict,
                          ok: Callable[[bool, str], bool]) -> None:
    """A rendered trust policy is valid and every store it names is mounted under `store_root`."""
    for problem in policy_problems(doc):
        R.fail(f"safety {name}: {what}rendered trust policy: {problem}")
    for ref in policy_store_refs(doc):
        typ, store = ref.split(":", 1)
        ok(f"{store_root}/x509/{typ}/{store}" in mounts, f"{what}trust store {ref} is not mounted")


def check_rbac(name: str, values: dict, r: Rendered, pod: dict, ok: Callable[[bool, str], bool]) -> None:
    """Read-only RBAC; Secrets only as opted in (registryAuth.pullSecrets: get; rbac.pullCredentials
    cluster: get/list/watch with serviceaccounts; namespaces: get in the tenant namespaces only)."""
    grant = (values["rbac"].get("pullCredentials") or {}).get("grant") or ""
    create = values["rbac"]["create"]
    cluster_secret_verbs: list[set[str]] = []
    for role in r.all("ClusterRole") + r.all("Role"):
        for rule in role.get("rules", []):
            verbs = set(rule.get("verbs", []))
            ok(verbs <= {"get", "list", "watch"}, f"{role['metadata']['name']} grants write verbs {sorted(verbs)}")
            ok("*" not in rule.get("resources", []) and "*" not in rule.get("apiGroups", []) and "*" not in verbs,
               "RBAC uses wildcards")
            ok(not rule.get("resourceNames") and not rule.get("nonResourceURLs"), f"{role['metadata']['name']}: unexpected rule {rule}")
            if role["kind"] == "ClusterRole" and "" in rule.get("apiGroups", []) and "secrets" in rule.get("resources", []):
                cluster_secret_verbs.append(verbs)
    if create and grant == "cluster":
        ok(cluster_secret_verbs == [{"get", "list", "watch"}],
           f"grant cluster: Secrets must be readable cluster-wide with exactly get/list/watch, got {cluster_secret_verbs}")
        role = r.one("ClusterRole", f"{fullname()}-pull-secrets")
        rules = (role or {}).get("rules") or []
        ok(len(rules) == 1 and set(rules[0]["resources"]) == {"secrets", "serviceaccounts"} and rules[0]["apiGroups"] == [""],
           f"grant cluster: the pull-secrets ClusterRole is not get/list/watch on secrets and serviceaccounts: {rules}")
    elif create and values["registryAuth"]["pullSecrets"]["enabled"]:
        ok(cluster_secret_verbs == [{"get"}], f"pull secrets enabled: Secrets must be readable with get only, got {cluster_secret_verbs}")
    else:
        ok(not cluster_secret_verbs, "Secrets are readable cluster-wide although neither registryAuth.pullSecrets "
                                     "nor rbac.pullCredentials.grant cluster asks for it")
    roles = {(x["metadata"]["namespace"], x["metadata"]["name"]): x for x in r.all("Role")}
    bindings = r.all("RoleBinding")
    tenants = tenant_namespaces(values) if create else []
    ok(sorted(ns for ns, _ in roles) == sorted(tenants), f"Roles in {sorted(ns for ns, _ in roles)}, expected {sorted(tenants)}")
    ok(sorted(b["metadata"]["namespace"] for b in bindings) == sorted(tenants), "RoleBindings do not match the tenant namespaces")
    for (ns, rname), role in roles.items():
        rules = role.get("rules") or []
        ok(len(rules) == 1 and rules[0]["apiGroups"] == [""] and set(rules[0]["resources"]) == {"secrets", "serviceaccounts"}
           and rules[0]["verbs"] == ["get"], f"Role {ns}/{rname} is not get on secrets and serviceaccounts: {rules}")
    sa = pod.get("serviceAccountName")
    for b in r.all("ClusterRoleBinding") + bindings:
        ok(any(s.get("kind") == "ServiceAccount" and s.get("name") == sa and s.get("namespace") == NAMESPACE
               for s in b["subjects"]), f"{b['metadata']['name']} is not bound to vouch's ServiceAccount")
        ref = b["roleRef"]
        if ref["kind"] == "ClusterRole":
            target = r.one("ClusterRole", ref["name"])
        else:
            target = roles.get((b["metadata"].get("namespace"), ref["name"]))
        ok(target is not None,
           f"{b['kind']} {b['metadata']['name']} binds {ref['kind']} {ref['name']}, which is not rendered beside it")
    if create:
        granted = {(g, res) for role in r.all("ClusterRole") for rule in role["rules"]
                   if {"get", "list", "watch"} <= set(rule["verbs"]) for g in rule["apiGroups"] for res in rule["resources"]}
        for g, res in [("", "pods"), ("", "replicationcontrollers"), ("", "serviceaccounts"), ("", "namespaces"),
                       ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
                       ("batch", "jobs"), ("batch", "cronjobs")]:
            ok((g, res) in granted, f"vouch cannot read {g or 'core'}/{res} cluster-wide")
    else:
        ok(not r.all("ClusterRole") and not roles, "rbac.create is false but RBAC is rendered")


def check_namespace_trust(name: str, values: dict, r: Rendered, cfg: dict, mounts: dict,
                          ok: Callable[[bool, str], bool]) -> None:
    """namespaceTrust: the config's namespaces: list, each mapping's policy and stores mounted
    read-only as directories (updates arrive; vouch reloads them), rendered policies valid."""
    mappings = values.get("namespaceTrust") or []
    rendered = cfg.get("namespaces") or []
    if not mappings:
        ok("namespaces" not in cfg, "namespaces: rendered without namespaceTrust")
        return
    if not ok(len(rendered) == len(mappings), f"namespaces: {len(rendered)} entries for {len(mappings)} mappings"):
        return
    for i, (m, entry) in enumerate(zip(mappings, rendered)):
        what = f"namespaceTrust[{i}]"
        ok(set(entry) <= NAMESPACE_KEYS, f"{what}: config keys vouch does not know: {sorted(set(entry) - NAMESPACE_KEYS)}")
        ok(entry.get("names", []) == m.get("names", []) and entry.get("selector") == m.get("selector")
           and entry.get("name") == m.get("name"), f"{what}: name, names or selector do not follow values: {entry}")
        d = mapping_dir(i, m)
        ok(entry.get("trustPolicy") == f"{d}/policy/trustpolicy.json" and entry.get("trustStore") == f"{d}/truststore",
           f"{what}: paths {entry.get('trustPolicy')}, {entry.get('trustStore')} are not under {d}")
        pm = mounts.get(f"{d}/policy")
        if not ok(pm and "subPath" not in pm[0] and "configMap" in pm[1],
                  f"{what}: the trust policy is not mounted as a ConfigMap directory at {d}/policy"):
            continue
        cm_name = pm[1]["configMap"]["name"]
        if m.get("existingTrustPolicyConfigMap"):
            ok(cm_name == m["existingTrustPolicyConfigMap"], f"{what}: existingTrustPolicyConfigMap is not mounted")
        else:
            cm = r.one("ConfigMap", cm_name)
            if ok(cm is not None, f"{what}: trust policy ConfigMap {cm_name} is not rendered"):
                doc = json.loads(cm["data"]["trustpolicy.json"])
                want = json.loads(m["trustPolicy"]) if isinstance(m["trustPolicy"], str) else m["trustPolicy"]
                ok(doc == want, f"{what}: the rendered trust policy is not the mapping's")
                check_rendered_policy(name, f"{what}: ", doc, f"{d}/truststore", mounts, ok)
        for store in m.get("trustStores") or []:
            path = f"{d}/truststore/x509/{store['type']}/{store['name']}"
            sm = mounts.get(path)
            if not ok(sm is not None and "subPath" not in sm[0], f"{what}: store {store['name']} has no directory mount at {path}"):
                continue
            vol = sm[1]
            if store.get("certificates"):
                cm = r.one("ConfigMap", (vol.get("configMap") or {}).get("name"))
                ok(cm is not None and set(cm["data"]) == set(store["certificates"]), f"{what}: store {path}: ConfigMap contents")
                ok(cm is not None and [c["metadata"]["name"] for c in r.all("ConfigMap")].count(cm["metadata"]["name"]) == 1,
                   f"{what}: store {path}: ConfigMap name clash")
            elif store.get("existingSecret"):
                ok((vol.get("secret") or {}).get("secretName") == store["existingSecret"], f"{what}: store {path}: Secret")
            else:
                ok((vol.get("configMap") or {}).get("name") == store["existingConfigMap"], f"{what}: store {path}: ConfigMap")


def check_cosign(name: str, values: dict, r: Rendered, cfg: dict, mounts: dict, ok: Callable[[bool, str], bool]) -> None:
    """cosign: rules rendered with paths to read-only mounts of the named keys and trusted roots."""
    c = values["cosign"]
    rules = c.get("rules") or []
    rendered = cfg.get("cosign") or []
    if not rules:
        ok("cosign" not in cfg, "cosign: rendered without cosign.rules")
    if not ok(len(rendered) == len(rules), f"cosign: {len(rendered)} rules rendered for {len(rules)}"):
        return
    sources = {("keys", k["name"]): k for k in c.get("keys") or []}
    sources.update({("roots", k["name"]): k for k in c.get("trustedRoots") or []})
    inline_cm = r.one("ConfigMap", f"{fullname()}-cosign")
    for i, (rule, got) in enumerate(zip(rules, rendered)):
        what = f"cosign.rules[{i}]"
        ok(set(got) <= COSIGN_KEYS, f"{what}: config keys vouch does not know: {sorted(set(got) - COSIGN_KEYS)}")
        for k in got.get("keyless") or []:
            ok(set(k) <= KEYLESS_KEYS, f"{what}: keyless keys vouch does not know: {sorted(set(k) - KEYLESS_KEYS)}")
        ok({k: v for k, v in got.items() if k not in ("keys", "trustedRoot")} ==
           {k: v for k, v in rule.items() if k not in ("keys", "trustedRoot")}, f"{what}: does not follow values")
        files = [("keys", n, p, "key.pub") for n, p in zip(rule.get("keys") or [], got.get("keys") or [])]
        ok(len(files) == len(rule.get("keys") or []) == len(got.get("keys") or []), f"{what}: keys")
        if rule.get("trustedRoot"):
            files.append(("roots", rule["trustedRoot"], got.get("trustedRoot", ""), "trusted_root.json"))
        else:
            ok("trustedRoot" not in got, f"{what}: a trustedRoot nobody asked for")
        for kind, n, path, fname in files:
            want = f"/etc/vouch/cosign/{kind}/{n}/{fname}"
            if not ok(path == want, f"{what}: {kind} {n} at {path}, expected {want}"):
                continue
            m = mounts.get(str(Path(want).parent))
            if not ok(m and "subPath" not in m[0] and "configMap" in m[1], f"{what}: {want} is not a ConfigMap directory mount"):
                continue
            items = {it["path"]: it["key"] for it in m[1]["configMap"].get("items") or []}
            src = sources[(kind, n)]
            if src.get("existingConfigMap"):
                ok(m[1]["configMap"]["name"] == src["existingConfigMap"] and items.get(fname) == src["key"],
                   f"{what}: {want} is not key {src['key']} of ConfigMap {src['existingConfigMap']}")
            else:
                text = src.get("pem") or src.get("json") or ""
                data = (inline_cm or {}).get("data") or {}
                ok(m[1]["configMap"]["name"] == f"{fullname()}-cosign" and (data.get(items.get(fname, "")) or "").strip() == text.strip(),
                   f"{what}: {want} does not hold the value given inline")
    if not any(k.get("pem") for k in c.get("keys") or []) and not any(k.get("json") for k in c.get("trustedRoots") or []):
        ok(inline_cm is None, "cosign: a ConfigMap of inline keys is rendered without inline keys")
    elif inline_cm is not None:
        ok(not any("PRIVATE KEY" in v for v in inline_cm["data"].values()), "cosign: a private key is rendered")


# ---------------------------------------------------------------------------------------------
# concerns

def concern_lint() -> None:
    for name, values in scenarios():
        print(f"lint {name}", flush=True)
        try:
            messages = helm_lint(values)
        except helm.HelmError as e:
            R.fail(f"lint {name}: helm lint could not run: {e}")
            continue
        bad = [m for m in messages if m.get("Severity", 0) >= 2]
        if bad:
            # helm-sdkpy drops the messages' text (Go errors marshal as {}); a render says why.
            why = render_error(values) or "(the install render succeeded; see helm lint)"
            for m in bad:
                R.fail(f"lint {name}: [{SEVERITY.get(m['Severity'], m['Severity'])}] {m.get('Path')}: {why}")
        else:
            R.check(True, "")


def concern_render() -> None:
    for name, values in scenarios():
        print(f"render {name}", flush=True)
        try:
            rendered = render(values)
        except helm.HelmError as e:
            R.fail(f"render {name}: {e}")
            continue
        R.check(len(rendered.docs) >= 8, f"render {name}: only {len(rendered.docs)} objects rendered")
        for doc in rendered.docs:
            label = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            for version in KUBE_VERSIONS:
                for problem in schema_problems(doc, version):
                    R.fail(f"render {name}: {label} is invalid for Kubernetes {version}: {problem}")
            R.check(True, "")


def check_safety(name: str, values: dict, r: Rendered) -> None:
    """Properties every rendering must have. `values` are the merged values."""
    def ok(cond: bool, what: str) -> bool:
        return R.check(bool(cond), f"safety {name}: {what}")

    # --- every object: labels, namespace
    for doc in r.docs:
        md = doc.get("metadata", {})
        labels = md.get("labels") or {}
        label = f"{doc['kind']}/{md.get('name')}"
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by",
                    "app.kubernetes.io/version", "helm.sh/chart"):
            ok(key in labels, f"{label} lacks label {key}")
        cluster_scoped = doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
                                         "MutatingWebhookConfiguration")
        tenant_rbac = doc["kind"] in ("Role", "RoleBinding") and md.get("namespace") in tenant_namespaces(values)
        if not cluster_scoped and not tenant_rbac:
            ok(md.get("namespace") == NAMESPACE, f"{label} is not in the release namespace")

    # --- the webhook
    vwcs = r.all("ValidatingWebhookConfiguration")
    if not ok(len(vwcs) == 1, f"expected one ValidatingWebhookConfiguration, got {len(vwcs)}"):
        return
    hooks = vwcs[0]["webhooks"]
    ok(len(hooks) == 1, "expected one webhook")
    hook = hooks[0]
    ok(hook["failurePolicy"] == failure_policy(values), "failurePolicy does not follow values")
    if values["vouch"]["enforcement"] == "dryrun" and not values["webhook"]["failurePolicy"]:
        ok(hook["failurePolicy"] == "Ignore", "dryrun with the default failurePolicy refuses requests while vouch is down")
    ok(hook["timeoutSeconds"] == values["webhook"]["timeoutSeconds"], "timeoutSeconds does not follow values")
    ok(hook.get("sideEffects") == "None", "sideEffects must be None")
    ok(hook.get("admissionReviewVersions") == ["v1"], "admissionReviewVersions must be [v1]")
    exprs = (hook.get("namespaceSelector") or {}).get("matchExpressions") or []
    excluded: set[str] = set()
    for e in exprs:
        if e.get("key") == "kubernetes.io/metadata.name" and e.get("operator") == "NotIn":
            excluded |= set(e.get("values") or [])
    for ns in ["kube-system", "kube-node-lease", NAMESPACE, *values["webhook"].get("excludeNamespaces", [])]:
        ok(ns in excluded, f"namespaceSelector does not exclude {ns}")
    ok(not (hook.get("namespaceSelector") or {}).get("matchLabels"), "namespaceSelector must not use matchLabels")
    rules = {(g, res): set(rule["operations"]) for rule in hook["rules"] for g in rule["apiGroups"] for res in rule["resources"]}
    ok({"CREATE", "UPDATE"} <= rules.get(("", "pods"), set()), "pods CREATE/UPDATE are not judged")
    ok("UPDATE" in rules.get(("", "pods/ephemeralcontainers"), set()), "pods/ephemeralcontainers UPDATE is not judged")
    if values["webhook"].get("validateWorkloads", True):
        for g, res in [("", "replicationcontrollers"), ("apps", "deployments"), ("apps", "replicasets"),
                       ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs")]:
            ok({"CREATE", "UPDATE"} <= rules.get((g, res), set()), f"{g or 'core'}/{res} is not judged")
    ok(all(rule.get("scope") == "Namespaced" for rule in hook["rules"]), "rules must be scoped to Namespaced")

    svc = r.one("Service")
    cc = hook["clientConfig"]
    ok("url" not in cc, "clientConfig must use the Service, not a URL")
    ok(svc is not None and cc["service"]["name"] == svc["metadata"]["name"] and cc["service"]["namespace"] == NAMESPACE,
       "clientConfig.service is not the chart's Service")
    ok(cc["service"].get("path") == "/validate", "clientConfig path is not /validate")
    if svc:
        port = svc["spec"]["ports"][0]
        ok(cc["service"].get("port", 443) == port["port"], "clientConfig port is not the Service port")
        ok(port["targetPort"] == "https", "Service targetPort is not the https container port")
        ok(svc["spec"]["selector"] == r.one("Deployment")["spec"]["selector"]["matchLabels"],
           "Service selector differs from the Deployment's")

    # --- the Deployment
    dep = r.one("Deployment")
    if not ok(dep is not None, "no Deployment"):
        return
    pod = dep["spec"]["template"]["spec"]
    c = container(r)
    ok(dep["spec"]["replicas"] == values["replicaCount"], "replicas do not follow values")
    ok(pod.get("automountServiceAccountToken") == values["serviceAccount"]["automountToken"], "token automount does not follow values")
    if reads_the_api(values):
        ok(pod.get("automountServiceAccountToken") is True,
           "vouch serve reads the Kubernetes API (pullCredentials or a namespace selector) but its token is not mounted")
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    ok(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, "runAsNonRoot is not set")
    ok(csc.get("runAsNonRoot") is not False, "container overrides runAsNonRoot to false")
    ok(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    ok(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    ok(csc.get("privileged") in (None, False), "container is privileged")
    ok("ALL" in ((csc.get("capabilities") or {}).get("drop") or []), "capabilities are not all dropped")
    ok(not (csc.get("capabilities") or {}).get("add"), "capabilities are added")
    ok((psc.get("seccompProfile") or csc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
       "seccompProfile is not RuntimeDefault")
    ok(not pod.get("hostPID") and not pod.get("hostIPC"), "host namespaces are shared")
    ok(pod.get("hostNetwork", False) == values.get("hostNetwork", False), "hostNetwork does not follow values")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        ok((res.get(kind) or {}).get("memory"), f"resources.{kind}.memory is not set")
    ok((res.get("requests") or {}).get("cpu"), "resources.requests.cpu is not set")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe_name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe_name) or {}).get("httpGet") or {}
        ok(get.get("path") == path, f"{probe_name} path is {get.get('path')!r}, not {path}")
        ok(get.get("scheme") == "HTTPS", f"{probe_name} is not HTTPS")
        ok(get.get("port") in ports or get.get("port") in ports.values(), f"{probe_name} port is not a container port")
    ok(c.get("args") == ["serve", "--config", "/etc/vouch/config.yaml"], f"container args are {c.get('args')}")
    aff = pod.get("affinity") or {}
    if values.get("affinity"):
        ok(aff == values["affinity"], "affinity does not follow values")
    elif values.get("podAntiAffinity") in ("soft", "hard"):
        ok("podAntiAffinity" in aff, "no pod anti-affinity")
    ok(pod.get("serviceAccountName") == (r.one("ServiceAccount") or {}).get("metadata", {}).get("name", pod.get("serviceAccountName")),
       "pod does not use the chart's ServiceAccount")
    strategy = dep["spec"].get("strategy") or {}
    if values["replicaCount"] >= 2:
        ok((strategy.get("rollingUpdate") or {}).get("maxUnavailable") in (0, "0", "0%") or values["updateStrategy"] != default_values()["updateStrategy"],
           "rolling updates may take a ready pod away first")

    # --- PodDisruptionBudget
    if values["podDisruptionBudget"]["enabled"]:
        pdb = r.one("PodDisruptionBudget")
        if ok(pdb is not None, "no PodDisruptionBudget"):
            ok(pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
               "PodDisruptionBudget does not select the vouch pods")

    # --- the vouch config file and what it points at
    mounts = mounts_by_path(r)
    cfg_mount = mounts.get("/etc/vouch/config.yaml")
    ok(cfg_mount and cfg_mount[0].get("subPath") == "config.yaml" and
       (cfg_mount[1].get("configMap") or {}).get("name") == f"{fullname()}-config",
       "config.yaml is not mounted from the config ConfigMap")
    cfg = vouch_config(r)
    ok(isinstance(cfg, dict) and cfg, "the vouch config is empty")
    unknown = set(cfg) - CONFIG_KEYS
    ok(not unknown, f"vouch config has keys vouch does not know: {sorted(unknown)}")
    serve = cfg.get("serve") or {}
    unknown = set(serve) - SERVE_KEYS
    ok(not unknown, f"vouch config serve has keys vouch does not know: {sorted(unknown)}")
    unknown = set(serve.get("mutate") or {}) - MUTATE_KEYS
    ok(not unknown, f"vouch config serve.mutate has keys vouch does not know: {sorted(unknown)}")
    ok(serve.get("enforcement") in ("enforce", "dryrun"), f"enforcement {serve.get('enforcement')!r}")
    ok(serve.get("enforcement") == values["vouch"]["enforcement"], "enforcement does not follow values")
    ok(serve.get("logFormat") in ("json", "text"), f"logFormat {serve.get('logFormat')!r}")
    ok(isinstance(cfg.get("insecureRegistries"), list), "insecureRegistries is not a list")
    offline = values["vouch"].get("offlineCrlsConfigMap")
    if offline:
        crls = mounts.get("/etc/vouch/crls")
        ok(crls and (crls[1].get("configMap") or {}).get("name") == offline,
           "the offline CRL ConfigMap is not mounted at /etc/vouch/crls")
        ok((cfg.get("revocation") or {}).get("offlineCrls") == "/etc/vouch/crls",
           "revocation.offlineCrls does not point at the mounted CRLs")
    else:
        ok("/etc/vouch/crls" not in mounts, "offline CRLs mounted without offlineCrlsConfigMap")
    if values.get("networkPolicy", {}).get("enabled"):
        ok(80 in values["networkPolicy"]["egressPorts"] or values["networkPolicy"].get("extraEgress"),
           "the NetworkPolicy blocks OCSP and CRL endpoints (plain HTTP, port 80)")
    ok(isinstance(cfg.get("maxSignatures"), int), "maxSignatures is not an integer")
    ok(isinstance(serve.get("maxConcurrency"), int), "maxConcurrency is not an integer")
    try:
        deadline = duration_ms(serve.get("deadline"))
        ok(deadline < hook["timeoutSeconds"] * 1000,
           f"deadline {serve.get('deadline')} is not below the webhook's timeoutSeconds {hook['timeoutSeconds']}")
        duration_ms(serve.get("reloadInterval"))
    except (ValueError, TypeError) as e:
        R.fail(f"safety {name}: unparseable duration in the vouch config: {e}")
    listen_port = int(str(serve.get("listen", "")).rsplit(":", 1)[-1] or 0)
    ok(ports.get("https") == listen_port, f"vouch listens on {listen_port}, the https container port is {ports.get('https')}")
    policy_path = Path(cfg.get("trustPolicy", ""))
    pm = mounts.get(str(policy_path.parent))
    ok(pm and "subPath" not in pm[0] and "configMap" in pm[1],
       "the trust policy is not mounted as a ConfigMap directory (subPath mounts never update)")
    if pm and "configMap" in pm[1]:
        items = {i["path"]: i["key"] for i in pm[1]["configMap"].get("items", [])} or None
        ok(items is None or items.get(policy_path.name) == "trustpolicy.json", "trustpolicy.json is not mounted")
        cm_name = pm[1]["configMap"]["name"]
        if values.get("existingTrustPolicyConfigMap"):
            ok(cm_name == values["existingTrustPolicyConfigMap"], "existingTrustPolicyConfigMap is not mounted")
        else:
            cm = r.one("ConfigMap", cm_name)
            if ok(cm is not None, f"trust policy ConfigMap {cm_name} is not rendered"):
                check_rendered_policy(name, "", json.loads(cm["data"]["trustpolicy.json"]), cfg["trustStore"], mounts, ok)
    for store in values.get("trustStores") or []:
        path = f"{cfg['trustStore']}/x509/{store['type']}/{store['name']}"
        m = mounts.get(path)
        if ok(m is not None, f"trust store {store['type']}:{store['name']} has no mount at {path}"):
            ok("subPath" not in m[0], f"trust store {path} uses subPath (renewals would never arrive)")
            vol = m[1]
            if store.get("certificates"):
                cm = r.one("ConfigMap", (vol.get("configMap") or {}).get("name"))
                ok(cm is not None and set(cm["data"]) == set(store["certificates"]), f"trust store {path}: ConfigMap contents")
            elif store.get("placeholder"):
                cm = r.one("ConfigMap", (vol.get("configMap") or {}).get("name"))
                data = (cm or {}).get("data") or {}
                ok(list(data) == ["placeholder-ca.crt"], f"trust store {path}: placeholder ConfigMap contents {list(data)}")
                pem = data.get("placeholder-ca.crt", "")
                ok(pem.count("-----BEGIN CERTIFICATE-----") == 1 and "PRIVATE KEY" not in pem,
                   f"trust store {path}: the placeholder is not exactly one certificate without a key")
                policy_cm = r.one("ConfigMap", f"{fullname()}-policy")
                named = policy_cm is not None and f"{store['type']}:{store['name']}" in policy_store_refs(
                    json.loads(policy_cm["data"]["trustpolicy.json"]))
                ok(not named or values["vouch"]["enforcement"] == "dryrun",
                   f"trust store {path}: enforcement against the placeholder store (it would deny every image)")
            elif store.get("existingSecret"):
                ok((vol.get("secret") or {}).get("secretName") == store["existingSecret"], f"trust store {path}: Secret")
            else:
                ok((vol.get("configMap") or {}).get("name") == store["existingConfigMap"], f"trust store {path}: ConfigMap")
    for path, (m, _) in mounts.items():
        ok(m.get("readOnly") is True, f"{path} is not mounted read-only")
    ok(serve.get("pullCredentials") == values["vouch"]["pullCredentials"],
       f"serve.pullCredentials is {serve.get('pullCredentials')!r}, vouch.pullCredentials {values['vouch']['pullCredentials']!r}")
    ok(cfg.get("signatures") == values["cosign"]["signatures"], "signatures does not follow cosign.signatures")
    check_namespace_trust(name, values, r, cfg, mounts, ok)
    check_cosign(name, values, r, cfg, mounts, ok)
    tls_dir = str(Path(serve.get("tlsCert", "")).parent)
    tm = mounts.get(tls_dir)
    ok(tm and "secret" in tm[1] and "subPath" not in tm[0], "the serving certificate is not mounted from a Secret directory")
    ok(Path(serve.get("tlsKey", "")).parent == Path(tls_dir), "tlsKey is not beside tlsCert")
    tls_secret = (tm[1]["secret"]["secretName"] if tm and "secret" in tm[1] else None)
    if values["registryAuth"].get("existingSecret"):
        dm = mounts.get(str(Path(cfg.get("dockerConfig", "/nonexistent")).parent))
        ok(dm and (dm[1].get("secret") or {}).get("secretName") == values["registryAuth"]["existingSecret"],
           "dockerConfig is not mounted from registryAuth.existingSecret")
    else:
        ok("dockerConfig" not in cfg, "dockerConfig is set without registryAuth.existingSecret")

    # --- TLS
    mode = values["tls"]["mode"]
    svc_dns = f"{fullname()}.{NAMESPACE}.svc"
    if mode == "generate":
        ok(cc.get("caBundle"), "caBundle is empty in generate mode")
        ca = secret_pem(r, tls_secret, "ca.crt") if tls_secret else None
        ok(ca is not None and base64.b64decode(cc.get("caBundle", "")) == ca, "caBundle is not the TLS secret's CA")
        crt = secret_pem(r, tls_secret, "tls.crt") if tls_secret else None
        key = secret_pem(r, tls_secret, "tls.key") if tls_secret else None
        ok(crt and key, "the generated TLS secret lacks tls.crt or tls.key")
        if crt and ca:
            check_chain(name, ca, crt, svc_dns)
        ca_secret = r.one("Secret", f"{fullname()}-ca")
        ok(ca_secret is not None and ca_secret["metadata"]["name"] != tls_secret, "the CA secret is missing")
        ok(all(((v.get("secret") or {}).get("secretName") != f"{fullname()}-ca")
               for v in dep["spec"]["template"]["spec"]["volumes"]), "the CA private key is mounted into the pods")
    elif mode == "certManager":
        ann = (vwcs[0]["metadata"].get("annotations") or {}).get("cert-manager.io/inject-ca-from", "")
        cert_ns, _, cert_name = ann.partition("/")
        cert = r.one("Certificate", cert_name)
        ok(cert_ns == NAMESPACE and cert is not None, f"inject-ca-from {ann!r} is not a rendered Certificate")
        if cert:
            ok(cert["spec"]["secretName"] == tls_secret, "the Certificate does not write the mounted TLS secret")
            ok(svc_dns in cert["spec"].get("dnsNames", []), f"the Certificate does not cover {svc_dns}")
            ref = cert["spec"]["issuerRef"]
            if not values["tls"]["certManager"].get("issuerRef"):
                ok(r.one("Issuer", ref["name"]) is not None, "the serving Certificate's Issuer is not rendered")
            else:
                ok(ref == {**{"group": "cert-manager.io"}, **values["tls"]["certManager"]["issuerRef"]} or
                   ref == values["tls"]["certManager"]["issuerRef"], "issuerRef does not follow values")
        ok(not cc.get("caBundle"), "caBundle should be left to cert-manager's cainjector")
    elif mode == "secret":
        ok(tls_secret == values["tls"]["secret"]["name"], "the user's TLS secret is not mounted")
        ok(base64.b64decode(cc.get("caBundle", "")).strip() == values["tls"]["secret"]["caCert"].strip().encode(),
           "caBundle is not tls.secret.caCert")
        ok(r.one("Secret", tls_secret) is None, "the chart must not create the user's TLS secret")

    # --- RBAC
    check_rbac(name, values, r, pod, ok)

    # --- optional objects
    if values["networkPolicy"]["enabled"]:
        np = r.one("NetworkPolicy")
        if ok(np is not None, "networkPolicy.enabled but no NetworkPolicy"):
            ok(np["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
               "NetworkPolicy does not select the vouch pods")
            ok(any(p.get("port") in ("https", listen_port) for rule in np["spec"]["ingress"] for p in rule.get("ports", [])),
               "NetworkPolicy does not admit the webhook port")
            ok(any(p.get("port") == 53 for rule in np["spec"]["egress"] for p in rule.get("ports", [])),
               "NetworkPolicy blocks DNS")
    else:
        ok(r.one("NetworkPolicy") is None, "NetworkPolicy rendered although disabled")
    if values["metrics"]["serviceMonitor"]["enabled"]:
        sm = r.one("ServiceMonitor")
        if ok(sm is not None, "serviceMonitor.enabled but no ServiceMonitor"):
            ep = sm["spec"]["endpoints"][0]
            ok(ep.get("path") == "/metrics" and ep.get("scheme") == "https" and ep.get("port") == "https",
               "ServiceMonitor does not scrape https /metrics")
            ok(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(),
               "ServiceMonitor does not select the Service")
    else:
        ok(r.one("ServiceMonitor") is None, "ServiceMonitor rendered although disabled")

    # --- the mutating webhook (pinning), in step with the validating one
    check_mutating(name, values, r, ok)

    # --- NOTES.txt tells what to do next and how to get out of trouble
    ok(f"kubectl delete validatingwebhookconfiguration {vwcs[0]['metadata']['name']}" in r.notes,
       "NOTES.txt does not say how to remove the webhook")
    ok("rollout status" in r.notes, "NOTES.txt does not say how to wait for vouch")


POD_RULES = [("", "pods", {"CREATE", "UPDATE"}), ("", "pods/ephemeralcontainers", {"UPDATE"})]
WORKLOAD_RULES = [("", "replicationcontrollers"), ("apps", "deployments"), ("apps", "replicasets"),
                  ("apps", "statefulsets"), ("apps", "daemonsets"), ("batch", "jobs"), ("batch", "cronjobs")]


def rule_map(hook: dict) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> operations, over every rule of a webhook."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in hook.get("rules") or []:
        for g in rule["apiGroups"]:
            for res in rule["resources"]:
                out.setdefault((g, res), set()).update(rule["operations"])
    return out


def selector_terms(sel: dict | None) -> list[dict]:
    """A label selector as the list of requirements it ANDs (matchLabels as "In" terms)."""
    sel = sel or {}
    terms = [{"key": k, "operator": "In", "values": [v]} for k, v in (sel.get("matchLabels") or {}).items()]
    return terms + [dict(e) for e in sel.get("matchExpressions") or []]


def hooks_of(r: Rendered, kind: str) -> list[dict]:
    return [h for c in r.all(kind) for h in c.get("webhooks") or []]


def check_mutating(name: str, values: dict, r: Rendered, ok: Callable[[bool, str], bool]) -> None:
    """The MutatingWebhookConfiguration follows webhook.mutating and never reaches further than
    the validating webhook: it judges as /validate does, so anything it selects beyond the
    validating webhook's selection would be refused where the user asked for no judging."""
    mut = values["webhook"].get("mutating") or {}
    mwcs = r.all("MutatingWebhookConfiguration")
    cfg_mutate = (vouch_config(r).get("serve") or {}).get("mutate") or {}
    ok(cfg_mutate.get("templates") is bool(mut.get("templates")),
       f"serve.mutate.templates is {cfg_mutate.get('templates')!r}, webhook.mutating.templates {mut.get('templates')!r}")
    if not mut.get("enabled"):
        ok(not mwcs, "webhook.mutating.enabled is false but a MutatingWebhookConfiguration is rendered")
        ok("mutatingwebhookconfiguration" not in r.notes, "NOTES.txt talks about a mutating webhook that is not installed")
        return
    if not ok(len(mwcs) == 1, f"expected one MutatingWebhookConfiguration, got {len(mwcs)}"):
        return
    mwc, vwc = mwcs[0], r.one("ValidatingWebhookConfiguration")
    hooks = mwc.get("webhooks") or []
    if not ok(len(hooks) == 1, f"expected one mutating webhook, got {len(hooks)}"):
        return
    m, v = hooks[0], vwc["webhooks"][0]
    ok(m.get("name") == "mutate.vouch.dev", f"mutating webhook name {m.get('name')!r}")
    ok(m.get("reinvocationPolicy") == "IfNeeded", "mutating webhook reinvocationPolicy is not IfNeeded")
    ok(m.get("sideEffects") == "None", "mutating webhook sideEffects must be None")
    ok(m.get("admissionReviewVersions") == ["v1"], "mutating webhook admissionReviewVersions must be [v1]")
    for field in ("failurePolicy", "timeoutSeconds", "matchPolicy"):
        ok(field in m and m.get(field) == v.get(field),
           f"mutating webhook {field} {m.get(field)!r} differs from the validating one's {v.get(field)!r}")
    mcc, vcc = m["clientConfig"], v["clientConfig"]
    ok("url" not in mcc, "mutating clientConfig must use the Service, not a URL")
    ok(mcc["service"].get("path") == "/mutate", f"mutating clientConfig path is {mcc['service'].get('path')!r}")
    ok({k: x for k, x in mcc["service"].items() if k != "path"} == {k: x for k, x in vcc["service"].items() if k != "path"},
       "mutating clientConfig.service is not the validating one's Service and port")
    ok(mcc.get("caBundle") == vcc.get("caBundle"), "the two webhooks have different caBundles")
    ann = "cert-manager.io/inject-ca-from"
    m_ann, v_ann = mwc["metadata"].get("annotations") or {}, vwc["metadata"].get("annotations") or {}
    if values["tls"]["mode"] == "certManager":
        ok(m_ann.get(ann) and m_ann.get(ann) == v_ann.get(ann),
           f"certManager: {ann} on the mutating webhook {m_ann.get(ann)!r} differs from the validating one's {v_ann.get(ann)!r}")
    else:
        ok(ann not in m_ann, f"{ann} outside certManager mode")
    for k, x in (mut.get("annotations") or {}).items():
        ok(m_ann.get(k) == x, f"webhook.mutating.annotations {k} is not on the MutatingWebhookConfiguration")
    # namespaces: the validating selection, then the pinning-only terms
    v_ns, m_ns = v["namespaceSelector"]["matchExpressions"], m["namespaceSelector"]["matchExpressions"]
    ok(m_ns == v_ns + list(mut.get("namespaceSelectorExpressions") or []),
       f"mutating namespaceSelector {m_ns} is not the validating one's {v_ns} AND webhook.mutating.namespaceSelectorExpressions")
    ok(not m["namespaceSelector"].get("matchLabels"), "mutating namespaceSelector must not use matchLabels")
    # objects: every term of webhook.objectSelector and webhook.mutating.objectSelector, nothing else
    want = selector_terms(values["webhook"].get("objectSelector")) + selector_terms(mut.get("objectSelector"))
    got = selector_terms(m.get("objectSelector"))
    ok(sorted(map(json.dumps, got)) == sorted(map(json.dumps, want)),
       f"mutating objectSelector terms {got} are not webhook.objectSelector AND webhook.mutating.objectSelector {want}")
    rules = rule_map(m)
    for g, res, ops in POD_RULES:
        ok(ops <= rules.get((g, res), set()), f"mutating webhook does not pin {res} {sorted(ops)}")
    for g, res in WORKLOAD_RULES:
        if mut.get("templates"):
            ok({"CREATE", "UPDATE"} <= rules.get((g, res), set()), f"templates: mutating webhook does not pin {g or 'core'}/{res}")
        else:
            ok((g, res) not in rules, f"templates is false but the mutating webhook receives {g or 'core'}/{res}")
    ok(set(rules) <= set(rule_map(v)), "the mutating webhook receives resources the validating one does not judge")
    ok(all(rule.get("scope") == "Namespaced" for rule in m["rules"]), "mutating rules must be scoped to Namespaced")
    ok(f"kubectl delete mutatingwebhookconfiguration {mwc['metadata']['name']}" in r.notes,
       "NOTES.txt does not say how to remove the mutating webhook")


def check_chain(name: str, ca_pem: bytes, crt_pem: bytes, dns: str) -> None:
    try:
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID
    except ImportError:  # pragma: no cover
        print("  (cryptography not installed: certificate chain not checked)")
        return
    ca = x509.load_pem_x509_certificate(ca_pem)
    crt = x509.load_pem_x509_certificate(crt_pem)
    try:
        crt.verify_directly_issued_by(ca)
        R.check(True, "")
    except Exception as e:  # noqa: BLE001
        R.fail(f"safety {name}: tls.crt is not signed by ca.crt: {e}")
    sans = crt.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value.get_values_for_type(x509.DNSName)
    R.check(dns in sans, f"safety {name}: tls.crt does not cover {dns} (has {sans})")
    bc = ca.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    R.check(bc.ca, f"safety {name}: ca.crt is not a CA")


def concern_safety() -> None:
    defaults = default_values()
    for name, user_values in scenarios():
        print(f"safety {name}", flush=True)
        values = coalesce(defaults, user_values)
        try:
            rendered = render(user_values)
        except helm.HelmError as e:
            R.fail(f"safety {name}: does not render: {e}")
            continue
        check_safety(name, values, rendered)

    # The defaults themselves are the safe choice.
    print("safety defaults", flush=True)
    d = defaults
    R.check(d["webhook"]["failurePolicy"] == "", "safety defaults: failurePolicy does not follow enforcement")
    R.check(d["webhook"]["timeoutSeconds"] == 10, "safety defaults: timeoutSeconds is not 10")
    R.check(d["replicaCount"] >= 2, "safety defaults: fewer than 2 replicas")
    R.check(d["podDisruptionBudget"]["enabled"], "safety defaults: no PodDisruptionBudget")
    R.check(d["podAntiAffinity"] in ("soft", "hard"), "safety defaults: no pod anti-affinity")
    R.check(not d["registryAuth"]["pullSecrets"]["enabled"], "safety defaults: Secrets readable by default")
    R.check(d["tls"]["mode"] == "generate", "safety defaults: TLS needs something beyond the chart")
    R.check(d["webhook"]["validateWorkloads"], "safety defaults: workloads are not judged")
    R.check(d["webhook"]["mutating"]["enabled"], "safety defaults: admitted images are not pinned")
    R.check(not d["webhook"]["mutating"]["templates"],
            "safety defaults: workload templates are pinned (drifts from what GitOps tools applied)")
    R.check(duration_ms(d["vouch"]["deadline"]) < d["webhook"]["timeoutSeconds"] * 1000,
            "safety defaults: deadline not below timeoutSeconds")
    r = render(None)
    # A first install is the first rollout step: every image judged, nothing refused, each
    # unverified image a warning and a /report entry (tests/chart.rs serves this very policy).
    print("safety defaults: a fresh install judges every image and refuses none", flush=True)
    policy = json.loads(r.one("ConfigMap", f"{fullname()}-policy")["data"]["trustpolicy.json"])
    statements = policy.get("trustPolicies") or []
    R.check(not any((st.get("signatureVerification") or {}).get("level") == "skip" for st in statements),
            "safety defaults: a trust policy statement is at skip")
    R.check(any("*" in (st.get("registryScopes") or []) and (st.get("signatureVerification") or {}).get("level") in ("strict", "permissive")
                for st in statements),
            "safety defaults: no \"*\" statement at a level that reports every unverified image as a would-be denial")
    R.check(d["vouch"]["enforcement"] == "dryrun" and vouch_config(r)["serve"]["enforcement"] == "dryrun",
            "safety defaults: a fresh install enforces (it would deny)")
    hooks = [h for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration") for h in hooks_of(r, kind)]
    R.check(len(hooks) == 2 and all(h["failurePolicy"] == "Ignore" for h in hooks),
            "safety defaults: a fresh install refuses requests while vouch starts (failurePolicy is not Ignore)")
    placeholders = {f"{st['type']}:{st['name']}" for st in d["trustStores"] if st.get("placeholder")}
    R.check(placeholders == {ref for st in statements for ref in st.get("trustStores") or []},
            "safety defaults: the default policy does not name exactly the placeholder store")
    R.check("/report" in r.notes and "kubectl get --raw" in r.notes and "port-forward" in r.notes,
            "safety defaults: NOTES.txt does not say how to read /report")
    R.check("vouch.enforcement=enforce" in r.notes and "FIRST INSTALL" in r.notes,
            "safety defaults: NOTES.txt does not say how to move to enforcement")
    R.check("WARNING" not in r.notes, "safety defaults: NOTES.txt warns on the defaults")
    skip = {"version": "1.0", "trustPolicies": [{"name": "s", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}}]}
    R.check("WARNING" in render({"trustPolicy": skip}).notes,
            "safety: NOTES.txt does not warn that a \"*\" skip statement verifies nothing")
    # Quarantine, cache and revocation default to vouch's own defaults: nothing rendered.
    R.check(d["vouch"]["quarantine"] == [] and d["vouch"]["cache"] == {} and d["vouch"]["revocation"] == {},
            "safety defaults: quarantine, cache and revocation should default to vouch's defaults")
    R.check("revocation" not in vouch_config(r), "safety defaults: a revocation section is rendered")


def concern_upgrade() -> None:
    print("upgrade generate-mode CA stability", flush=True)
    with FakeKube() as kube:
        first = helm_install(kube, None)
        hook1 = first.one("ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
        mhook1 = first.one("MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
        ca1 = secret_pem(first, f"{fullname()}-ca", "ca.crt")
        crt1 = secret_pem(first, f"{fullname()}-tls", "tls.crt")
        R.check(kube.get("", "v1", "secrets", NAMESPACE, f"{fullname()}-ca") is not None,
                "upgrade: the CA secret did not reach the (fake) cluster")
        second = helm_upgrade(kube, {"vouch": {"enforcement": "dryrun"}})
        hook2 = second.one("ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
        mhook2 = second.one("MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
        ca2 = secret_pem(second, f"{fullname()}-ca", "ca.crt")
        crt2 = secret_pem(second, f"{fullname()}-tls", "tls.crt")
        R.check(ca1 == ca2, "upgrade: the CA changed across an upgrade (lookup not used)")
        R.check(hook1 == hook2, "upgrade: the caBundle changed across an upgrade")
        R.check(mhook1 == hook1 and mhook2 == hook2,
                "upgrade: the mutating webhook's caBundle is not the validating webhook's")
        R.check(base64.b64decode(mhook2) == ca1, "upgrade: the mutating webhook's caBundle is not the kept CA")
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            stored = kube.get("admissionregistration.k8s.io", "v1", kind.lower() + "s", "", fullname())
            R.check(stored is not None and stored["webhooks"][0]["clientConfig"].get("caBundle") == hook1,
                    f"upgrade: the {kind} in the (fake) cluster does not carry the kept CA")
        R.check(crt1 != crt2, "upgrade: the serving certificate was not re-issued on upgrade")
        placeholder = f"{fullname()}-ts-ca-first-install"
        ph1 = (first.one("ConfigMap", placeholder) or {}).get("data", {}).get("placeholder-ca.crt")
        ph2 = (second.one("ConfigMap", placeholder) or {}).get("data", {}).get("placeholder-ca.crt")
        R.check(ph1 is not None and ph1 == ph2, "upgrade: the placeholder trust store changed across an upgrade (lookup not used)")
        if ca2 and crt2:
            check_chain("upgrade", ca2, crt2, f"{fullname()}.{NAMESPACE}.svc")
    print("upgrade switches pinning off and on again", flush=True)
    with FakeKube() as kube:
        helm_install(kube, None)
        mwc = ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "", fullname())
        R.check(kube.get(*mwc) is not None, "upgrade: the install did not create the MutatingWebhookConfiguration")
        off = helm_upgrade(kube, {"webhook": {"mutating": {"enabled": False}}})
        R.check(off.one("MutatingWebhookConfiguration") is None and kube.get(*mwc) is None,
                "upgrade: webhook.mutating.enabled=false does not remove the MutatingWebhookConfiguration")
        R.check(off.one("ValidatingWebhookConfiguration") is not None, "upgrade: switching pinning off removed validation")
        on = helm_upgrade(kube, {"webhook": {"mutating": {"enabled": True, "templates": True}}})
        stored = kube.get(*mwc)
        R.check(stored is not None and stored["webhooks"][0]["clientConfig"].get("caBundle") ==
                on.one("ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"],
                "upgrade: pinning switched on again does not carry the validating webhook's CA")
    with FakeKube() as kube:
        other = helm_install(kube, None)
        R.check(secret_pem(other, f"{fullname()}-ca", "ca.crt") != ca1,
                "upgrade: two fresh installs share a CA (generation is not random)")

    print("upgrade restarts only for config changes", flush=True)

    def checksum(values: dict | None) -> str:
        dep = render(values).one("Deployment")
        return dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum(None)
    R.check(checksum(None) == base, "upgrade: the config checksum is not deterministic")
    R.check(checksum({"vouch": {"logFormat": "text"}}) != base, "upgrade: a config change does not roll the pods")
    policy = {"version": "1.0", "trustPolicies": [{"name": "other", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}}]}
    R.check(checksum({"trustPolicy": policy}) == base,
            "upgrade: a trust policy change restarts the pods (vouch reloads it; it should not)")
    # Trust per namespace and cosign material reload in place like the trust stores: rotating a
    # key or a trusted root, or editing a mapping's policy or certificates, keeps the pods; adding
    # a rule or a mapping changes the config file, which vouch reads once, and rolls them.
    tenant = load_yaml(CHART / "ci" / "multi-tenant-values.yaml")
    base = checksum(tenant)
    rotated = copy.deepcopy(tenant)
    rotated["cosign"]["keys"][0]["pem"] = (load_yaml(CHART / "ci" / "multi-tenant-values.yaml")["cosign"]["keys"][0]["pem"]
                                           .replace("A", "B", 1))
    root = json.loads(rotated["cosign"]["trustedRoots"][0]["json"])
    root["tlogs"][0]["baseUrl"] = "https://rekor.rotated.example.invalid"
    rotated["cosign"]["trustedRoots"][0]["json"] = json.dumps(root)
    rotated["namespaceTrust"][0]["trustPolicy"]["trustPolicies"][0]["signatureVerification"]["level"] = "audit"
    rotated["namespaceTrust"][1]["trustStores"][1]["certificates"] = rotated["trustStores"][0]["certificates"]
    R.check(checksum(rotated) == base,
            "upgrade: rotating a cosign key or trusted root, or editing a namespace mapping's policy or store, restarts the pods")
    more = copy.deepcopy(tenant)
    more["cosign"]["rules"].append({"registryScopes": ["registry.example.com/team-a/tool"], "keys": ["team-a-release"]})
    R.check(checksum(more) != base, "upgrade: a new cosign rule does not roll the pods (vouch reads rules at start-up)")
    fewer = copy.deepcopy(tenant)
    fewer["namespaceTrust"].pop()
    R.check(checksum(fewer) != base, "upgrade: removing a namespace mapping does not roll the pods")


def concern_mutating() -> None:
    def ok(cond: bool, what: str) -> bool:
        return R.check(bool(cond), f"mutating: {what}")

    def pair(r: Rendered) -> tuple[dict | None, dict | None]:
        v, m = hooks_of(r, "ValidatingWebhookConfiguration"), hooks_of(r, "MutatingWebhookConfiguration")
        return (v[0] if v else None), (m[0] if len(m) == 1 else None)

    def templates_setting(r: Rendered) -> Any:
        return ((vouch_config(r).get("serve") or {}).get("mutate") or {}).get("templates")

    print("mutating: on by default, beside the validating webhook, with its CA", flush=True)
    r = render(None)
    v, m = pair(r)
    if ok(v is not None and m is not None, "the defaults do not render one validating and one mutating webhook"):
        ca = secret_pem(r, f"{fullname()}-ca", "ca.crt")
        ok(m["clientConfig"].get("caBundle") and m["clientConfig"]["caBundle"] == v["clientConfig"].get("caBundle"),
           "generate mode: the two webhooks have different caBundles")
        ok(ca is not None and base64.b64decode(m["clientConfig"]["caBundle"]) == ca,
           "generate mode: the mutating caBundle is not the generated CA")
        ok(m["clientConfig"]["service"] == {**v["clientConfig"]["service"], "path": "/mutate"},
           f"the mutating webhook does not call /mutate on the validating webhook's Service: {m['clientConfig']['service']}")
        ok(m.get("reinvocationPolicy") == "IfNeeded", "reinvocationPolicy is not IfNeeded")
        ok(set(rule_map(m)) == {("", "pods"), ("", "pods/ephemeralcontainers")},
           f"by default only pods are pinned, got {sorted(rule_map(m))}")
        ok(templates_setting(r) is False, f"serve.mutate.templates is {templates_setting(r)!r} by default, not false")

    print("mutating: webhook.mutating.enabled=false renders none", flush=True)
    r = render({"webhook": {"mutating": {"enabled": False}}})
    v, _ = pair(r)
    ok(not r.all("MutatingWebhookConfiguration"), "enabled=false still renders a MutatingWebhookConfiguration")
    ok(v is not None and set(rule_map(v)) == set(rule_map(pair(render(None))[0])), "enabled=false changes the validating webhook")

    print("mutating: templates=true pins workload templates and tells vouch", flush=True)
    r = render({"webhook": {"mutating": {"templates": True}}})
    v, m = pair(r)
    if ok(m is not None, "templates=true renders no mutating webhook"):
        got = rule_map(m)
        for g, res in WORKLOAD_RULES:
            ok({"CREATE", "UPDATE"} <= got.get((g, res), set()), f"templates=true: {g or 'core'}/{res} is not pinned")
        for g, res, ops in POD_RULES:
            ok(ops <= got.get((g, res), set()), f"templates=true: {res} {sorted(ops)} is no longer pinned")
        ok(rule_map(m) == rule_map(v), "templates=true: mutating and validating webhooks do not receive the same objects")
    ok(templates_setting(r) is True, f"templates=true: serve.mutate.templates is {templates_setting(r)!r}")

    print("mutating: failurePolicy, timeouts and namespace exclusions follow the validating webhook", flush=True)
    extra = {"key": "vouch.dev/ignore", "operator": "DoesNotExist"}
    pin_only = {"key": "vouch.dev/no-pin", "operator": "DoesNotExist"}
    r = render({"vouch": {"deadline": "15s"},
                "webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 20, "excludeNamespaces": ["team-x"],
                            "namespaceSelectorExpressions": [extra],
                            "mutating": {"namespaceSelectorExpressions": [pin_only],
                                         "objectSelector": {"matchLabels": {"pin": "yes"}}}}})
    v, m = pair(r)
    if ok(m is not None, "no mutating webhook"):
        ok(m["failurePolicy"] == v["failurePolicy"] == "Ignore", f"failurePolicy is {m['failurePolicy']!r}, not Ignore")
        ok(m["timeoutSeconds"] == v["timeoutSeconds"] == 20, f"timeoutSeconds is {m['timeoutSeconds']!r}, not 20")
        ok(m["sideEffects"] == "None" and m["matchPolicy"] == v["matchPolicy"], "sideEffects or matchPolicy differ")
        exprs = m["namespaceSelector"]["matchExpressions"]
        names = next((set(e["values"]) for e in exprs if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"), set())
        ok({"kube-system", "kube-node-lease", NAMESPACE, "team-x"} <= names, f"excluded namespaces {sorted(names)}")
        ok(extra in exprs and pin_only in exprs, f"namespace terms {exprs}")
        ok(pin_only not in v["namespaceSelector"]["matchExpressions"], "a pinning-only exemption reached the validating webhook")
        ok(m.get("objectSelector") == {"matchLabels": {"pin": "yes"}} and "objectSelector" not in v,
           f"webhook.mutating.objectSelector: mutating {m.get('objectSelector')}, validating {v.get('objectSelector')}")

    print("mutating: certManager mode annotates both webhooks", flush=True)
    r = render(load_yaml(CHART / "ci" / "certmanager-values.yaml"))
    ann = "cert-manager.io/inject-ca-from"
    want = f"{NAMESPACE}/{fullname()}-serving"
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        c = r.one(kind)
        if ok(c is not None, f"certManager: no {kind}"):
            ok((c["metadata"].get("annotations") or {}).get(ann) == want, f"certManager: {kind} lacks {ann}: {want}")
            ok(not c["webhooks"][0]["clientConfig"].get("caBundle"), f"certManager: {kind} has a caBundle of its own")

    print("mutating: dryrun keeps the webhook (vouch itself never mutates in dryrun)", flush=True)
    r = render({"vouch": {"enforcement": "dryrun"}})
    ok(len(r.all("MutatingWebhookConfiguration")) == 1, "dryrun drops the mutating webhook")


NEGATIVE_CASES: list[tuple[str, dict, str]] = [
    ("misspelt top-level key", {"replicas": 3}, "replicas"),
    ("misspelt nested key", {"vouch": {"enforcment": "dryrun"}}, "enforcment"),
    ("misspelt webhook key", {"webhook": {"failurePolicy": "Fail", "timeoutSecond": 10}}, "timeoutSecond"),
    ("unknown enforcement", {"vouch": {"enforcement": "audit"}}, "enforcement"),
    ("unknown failurePolicy", {"webhook": {"failurePolicy": "fail"}}, "failurePolicy"),
    ("timeout above the API server's limit", {"webhook": {"timeoutSeconds": 31}}, "timeoutSeconds"),
    ("deadline not below timeoutSeconds", {"vouch": {"deadline": "10s"}}, "must be below webhook.timeoutSeconds"),
    ("deadline in an unparseable form", {"vouch": {"deadline": "8 seconds"}}, "deadline"),
    ("quarantine rule without a source", {"vouch": {"quarantine": [{"registries": ["*"]}]}}, "source"),
    ("unknown quarantine source", {"vouch": {"quarantine": [{"registries": ["*"], "source": "harbor"}]}}, "source"),
    ("misspelt cache key", {"vouch": {"cache": {"allowTTL": "10m"}}}, "allowTTL"),
    ("cache redis URL that is not redis", {"vouch": {"cache": {"redis": {"url": "http://x"}}}}, "url"),
    ("secret TLS without a secret", {"tls": {"mode": "secret"}}, "secret"),
    ("secret TLS without a CA", {"tls": {"mode": "secret", "secret": {"name": "vouch-tls"}}}, "caCert"),
    ("unknown TLS mode", {"tls": {"mode": "selfSigned"}}, "mode"),
    ("zero replicas", {"replicaCount": 0}, "replicaCount"),
    ("trust store with two sources", {"trustStores": [{"name": "a", "type": "ca", "existingSecret": "s", "existingConfigMap": "c"}]}, "trustStores"),
    ("trust store of unknown type", {"trustStores": [{"name": "a", "type": "root", "existingSecret": "s"}]}, "type"),
    ("policy naming a store the chart does not mount",
     {"trustPolicy": {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
                                                            "trustStores": ["ca:missing"], "trustedIdentities": ["*"]}]}}, "ca:missing"),
    ("policy with an unknown level",
     {"trustPolicy": {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"], "signatureVerification": {"level": "lenient"}}]}}, "level"),
    ("policy string that is not JSON", {"trustPolicy": "{not json"}, "trustPolicy"),
    ("enforcing the first-install policy (it trusts no signer)", {"vouch": {"enforcement": "enforce"}}, "placeholder store"),
    ("placeholder store with keys", {"trustStores": [{"name": "a", "type": "ca", "placeholder": True, "keys": ["x"]}]}, "trustStores"),
    ("placeholder store that is false", {"trustStores": [{"name": "a", "type": "ca", "placeholder": False}]}, "placeholder"),
    ("duplicate trust store", {"trustStores": [{"name": "a", "type": "ca", "existingSecret": "s"}, {"name": "a", "type": "ca", "existingSecret": "t"}]}, "listed twice"),
    ("excluded namespace that is not a name", {"webhook": {"excludeNamespaces": ["Team A"]}}, "excludeNamespaces"),
    ("unknown key under webhook.mutating", {"webhook": {"mutating": {"pinTemplates": True}}}, "pinTemplates"),
    ("webhook.mutating.enabled that is not a boolean", {"webhook": {"mutating": {"enabled": "yes"}}}, "enabled"),
    ("webhook.mutating.templates that is not a boolean", {"webhook": {"mutating": {"templates": "true"}}}, "templates"),
    ("misspelt webhook.mutating.objectSelector key",
     {"webhook": {"mutating": {"objectSelector": {"matchLabel": {"a": "b"}}}}}, "matchLabel"),
    ("pinning namespace term with an unknown operator",
     {"webhook": {"mutating": {"namespaceSelectorExpressions": [{"key": "a", "operator": "Missing"}]}}}, "operator"),
    ("pinning templates that are not judged",
     {"webhook": {"validateWorkloads": False, "mutating": {"templates": True}}}, "validateWorkloads"),
    # pull credentials and their RBAC
    ("unknown pullCredentials", {"vouch": {"pullCredentials": "kubelet"}}, "pullCredentials"),
    ("pod credentials without choosing their RBAC", {"vouch": {"pullCredentials": "pod"}}, "rbac.pullCredentials.grant"),
    ("pod-only credentials without choosing their RBAC", {"vouch": {"pullCredentials": "pod-only"}}, "every Secret"),
    ("a Secrets grant nothing uses", {"rbac": {"pullCredentials": {"grant": "cluster"}}}, "never uses"),
    ("a Secrets grant with rbac.create false",
     {"vouch": {"pullCredentials": "pod"}, "rbac": {"create": False, "pullCredentials": {"grant": "cluster"}}}, "rbac.create is false"),
    ("grant namespaces without namespaces",
     {"vouch": {"pullCredentials": "pod"}, "rbac": {"pullCredentials": {"grant": "namespaces"}}}, "rbac.pullCredentials.namespaces"),
    ("tenant namespaces with a cluster grant",
     {"vouch": {"pullCredentials": "pod"}, "rbac": {"pullCredentials": {"grant": "cluster", "namespaces": ["a"]}}}, "namespaces"),
    ("unknown grant", {"vouch": {"pullCredentials": "pod"}, "rbac": {"pullCredentials": {"grant": "all"}}}, "grant"),
    ("pod credentials without the ServiceAccount token",
     {"vouch": {"pullCredentials": "pod"}, "rbac": {"pullCredentials": {"grant": "cluster"}},
      "serviceAccount": {"automountToken": False}}, "automountToken"),
    ("a namespace selector without the ServiceAccount token",
     {"serviceAccount": {"automountToken": False},
      "namespaceTrust": [{"selector": {"matchLabels": {"t": "a"}}, "existingTrustPolicyConfigMap": "p", "trustStores": []}]},
     "automountToken"),
    # namespaceTrust
    ("a mapping that picks no namespace",
     {"namespaceTrust": [{"name": "a", "existingTrustPolicyConfigMap": "p", "trustStores": []}]}, "namespaceTrust"),
    ("a mapping with two policies",
     {"namespaceTrust": [{"names": ["a"], "existingTrustPolicyConfigMap": "p", "trustStores": [],
                          "trustPolicy": {"version": "1.0", "trustPolicies": [{"name": "s", "registryScopes": ["*"],
                                                                               "signatureVerification": {"level": "skip"}}]}}]},
     "namespaceTrust"),
    ("a mapping naming a store it does not mount",
     {"namespaceTrust": [{"names": ["a"], "trustStores": [{"name": "a", "type": "ca", "existingSecret": "s"}],
                          "trustPolicy": {"version": "1.0", "trustPolicies": [{"name": "s", "registryScopes": ["*"],
                                                                               "signatureVerification": {"level": "strict"},
                                                                               "trustStores": ["ca:other"], "trustedIdentities": ["*"]}]}}]},
     "ca:other"),
    ("a mapping policy string that is not JSON",
     {"namespaceTrust": [{"names": ["a"], "trustStores": [], "trustPolicy": "{nope"}]}, "namespaceTrust[0]"),
    ("a mapping with a placeholder store",
     {"namespaceTrust": [{"names": ["a"], "existingTrustPolicyConfigMap": "p",
                          "trustStores": [{"name": "a", "type": "ca", "placeholder": True}]}]}, "placeholder"),
    ("two mappings of the same name",
     {"namespaceTrust": [{"name": "a", "names": ["a"], "existingTrustPolicyConfigMap": "p", "trustStores": []},
                         {"name": "a", "names": ["b"], "existingTrustPolicyConfigMap": "q", "trustStores": []}]}, "used twice"),
    ("a mapping name that is not a DNS label",
     {"namespaceTrust": [{"name": "Team A", "names": ["a"], "existingTrustPolicyConfigMap": "p", "trustStores": []}]}, "name"),
    ("a misspelt mapping selector",
     {"namespaceTrust": [{"names": ["a"], "selector": {"matchLabel": {"a": "b"}}, "existingTrustPolicyConfigMap": "p",
                          "trustStores": []}]}, "matchLabel"),
    # cosign
    ("unknown signatures mode", {"cosign": {"signatures": "both"}}, "signatures"),
    ("a cosign rule naming a key that is not given",
     {"cosign": {"rules": [{"registryScopes": ["*"], "keys": ["missing"]}]}}, "missing"),
    ("a keyless cosign rule without a trusted root",
     {"cosign": {"rules": [{"registryScopes": ["*"], "keyless": [{"subject": "a@b", "issuer": "https://i"}]}]}}, "trustedRoot"),
    ("a cosign rule naming a trusted root that is not given",
     {"cosign": {"rules": [{"registryScopes": ["*"], "keyless": [{"subject": "a@b", "issuer": "https://i"}],
                            "trustedRoot": "nowhere"}]}}, "nowhere"),
    ("a cosign rule with neither keys nor keyless", {"cosign": {"rules": [{"registryScopes": ["*"]}]}}, "keys, keyless"),
    ("a misspelt cosign rule key", {"cosign": {"rules": [{"registryScope": ["*"]}]}}, "registryScope"),
    ("a keyless identity without an issuer",
     {"cosign": {"rules": [{"registryScopes": ["*"], "keyless": [{"subject": "a@b"}], "trustedRoot": "r"}],
                 "trustedRoots": [{"name": "r", "existingConfigMap": "r", "key": "trusted_root.json"}]}}, "keyless"),
    ("a cosign key that is not a PEM public key",
     {"cosign": {"keys": [{"name": "k", "pem": "-----BEGIN EC PRIVATE KEY-----"}]}}, "pem"),
    ("a cosign key with two sources",
     {"cosign": {"keys": [{"name": "k", "pem": "-----BEGIN PUBLIC KEY-----", "existingConfigMap": "c", "key": "k"}]}}, "keys"),
    ("a cosign key from a ConfigMap without its key", {"cosign": {"keys": [{"name": "k", "existingConfigMap": "c"}]}}, "keys"),
    ("a trusted root that is not JSON", {"cosign": {"trustedRoots": [{"name": "r", "json": "{not json"}]}}, "trusted_root.json"),
    ("a cosign key listed twice",
     {"cosign": {"keys": [{"name": "k", "existingConfigMap": "c", "key": "a"}, {"name": "k", "existingConfigMap": "d", "key": "b"}]}},
     "listed twice"),
]


def undocumented_values() -> list[str]:
    """Keys of values.yaml with a value on their line but no comment right above them (Kubernetes
    objects passed through verbatim, like resources or probes, are documented as a whole)."""
    passthrough = {"resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe",
                   "updateStrategy", "trustPolicy"}
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z0-9_]+):(.*)$", line)
        if not m:
            continue
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [key]
        stack.append((indent, key))
        if any(p in passthrough for p in path[:-1]) or not rest:
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j < 0 or not lines[j].strip().startswith("#"):
            out.append(".".join(path))
    return out


def concern_values() -> None:
    print("values: every value is documented in values.yaml", flush=True)
    for key in undocumented_values():
        R.fail(f"values: {key} has no comment in values.yaml")
    R.check(True, "")
    for what, values, needle in NEGATIVE_CASES:
        print(f"values rejects: {what}", flush=True)
        err = render_error(values)
        if R.check(err is not None, f"values: {what} was accepted: {json.dumps(values)}"):
            R.check(needle.lower() in err.lower(), f"values: {what}: the error does not name {needle!r}: {err}")
    # and the positive direction: a trust policy given as a JSON string (as from --set-file)
    print("values accepts: trust policy as JSON text", flush=True)
    text = (POLICY_DIR / "audit-all.json").read_text()
    store = {"name": "acme-prod", "type": "ca", "existingSecret": "acme-prod-ca", "keys": ["ca.crt"]}
    err = render_error({"trustPolicy": text, "trustStores": [store]})
    R.check(err is None, f"values: a JSON-text trust policy is refused: {err}")


def concern_policies() -> None:
    files = sorted(POLICY_DIR.glob("*.json"))
    R.check(len(files) >= 3, f"policies: expected example policies in {POLICY_DIR}")
    readme = (POLICY_DIR / "README.md").read_text() if (POLICY_DIR / "README.md").exists() else ""
    R.check(bool(readme), "policies: policy/README.md is missing")
    for f in files:
        print(f"policies {f.name}", flush=True)
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            R.fail(f"policies: {f.name} is not JSON: {e}")
            continue
        for problem in policy_problems(doc):
            R.fail(f"policies: {f.name}: {problem}")
        for ref in policy_store_refs(doc):
            typ, store = ref.split(":", 1)
            d = POLICY_DIR / "truststore" / "x509" / typ / store
            certs = [p for p in d.glob("*") if p.is_file()] if d.is_dir() else []
            R.check(bool(certs) and all(b"-----BEGIN CERTIFICATE-----" in p.read_bytes() for p in certs),
                    f"policies: {f.name} names {ref}, but {d.relative_to(ROOT)} holds no certificate files")
        R.check(f.name in readme, f"policies: policy/README.md does not explain {f.name}")
    # The ci/ values carry the example policies verbatim.
    pairs = {"production": "production.json", "dryrun": "production.json", "audit": "audit-all.json", "per-team": "per-team.json"}
    for scenario, policy_file in pairs.items():
        values = load_yaml(CHART / "ci" / f"{scenario}-values.yaml")
        tp = values.get("trustPolicy")
        if isinstance(tp, str):
            tp = json.loads(tp)
        R.check(tp == json.loads((POLICY_DIR / policy_file).read_text()),
                f"policies: ci/{scenario}-values.yaml's trustPolicy differs from policy/{policy_file}")


def dump(out: Path) -> None:
    """For tests/chart.rs: each scenario's rendered config.yaml, trustpolicy.json and inline trust
    stores, laid out as the pod sees them, so vouch's own parsers can load them; fs/, every file
    the chart's ConfigMaps put in the pod, at its path in the pod, and external-mounts.txt, the
    mount paths of what comes from outside the chart; and mutate-templates.txt, the
    serve.mutate.templates vouch must read from config.yaml."""
    out.mkdir(parents=True, exist_ok=True)
    for name, user_values in scenarios():
        values = coalesce(default_values(), user_values)
        r = render(user_values)
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text(r.one("ConfigMap", f"{fullname()}-config")["data"]["config.yaml"])
        external = []
        if not values.get("existingTrustPolicyConfigMap"):
            policy_cm = r.one("ConfigMap", f"{fullname()}-policy")
            (d / "trustpolicy.json").write_text(policy_cm["data"]["trustpolicy.json"])
        mounts = mounts_by_path(r)
        for store in values.get("trustStores") or []:
            ref = f"{store['type']}:{store['name']}"
            mount = mounts.get(f"/etc/vouch/truststore/x509/{store['type']}/{store['name']}")
            cm_name = ((mount or ({}, {}))[1].get("configMap") or {}).get("name")
            cm = r.one("ConfigMap", cm_name)
            if cm is not None:  # a ConfigMap the chart renders: write the files the pod sees
                sd = d / "truststore" / "x509" / store["type"] / store["name"]
                sd.mkdir(parents=True, exist_ok=True)
                for fname, pem in cm["data"].items():
                    (sd / fname).write_text(pem)
            else:
                external.append(ref)
        (d / "external-stores.txt").write_text("".join(f"{e}\n" for e in external))
        # Every directory mount of a chart-rendered ConfigMap, as the pod sees it under fs/ (fs/etc/vouch/...),
        # and the mount paths of volumes from outside the chart (existing ConfigMaps and Secrets).
        outside = []
        for path, (m, vol) in sorted(mounts_by_path(r).items()):
            if "subPath" in m:
                continue
            if "configMap" in vol:
                cm = r.one("ConfigMap", vol["configMap"]["name"])
                if cm is None:
                    outside.append(path)
                    continue
                data = cm.get("data") or {}
                items = {i["key"]: i["path"] for i in vol["configMap"].get("items") or []} or {k: k for k in data}
                target = d / "fs" / path.lstrip("/")
                target.mkdir(parents=True, exist_ok=True)
                for key, fname in items.items():
                    (target / fname).write_text(data[key])
            elif "secret" in vol and r.one("Secret", vol["secret"]["secretName"]) is None:
                outside.append(path)
        (d / "external-mounts.txt").write_text("".join(f"{e}\n" for e in outside))
        # What serve.mutate.templates must parse to, from the values (not from the rendering).
        pin_templates = bool((values["webhook"].get("mutating") or {}).get("templates"))
        (d / "mutate-templates.txt").write_text(f"{str(pin_templates).lower()}\n")
    print(f"wrote {len(scenarios())} scenarios to {out}")


CONCERNS: dict[str, Callable[[], None]] = {
    "lint": concern_lint,
    "render": concern_render,
    "safety": concern_safety,
    "upgrade": concern_upgrade,
    "values": concern_values,
    "mutating": concern_mutating,
    "policies": concern_policies,
}


def main(argv: list[str]) -> int:
    if argv[:1] == ["dump"]:
        if len(argv) != 2:
            print("usage: check.py dump DIR", file=sys.stderr)
            return 2
        dump(Path(argv[1]))
        return 0
    names = argv or list(CONCERNS)
    unknown = [n for n in names if n not in CONCERNS]
    if unknown:
        print(f"unknown concern(s) {unknown}; choose from {list(CONCERNS)} or dump DIR", file=sys.stderr)
        return 2
    print(f"helm-sdkpy {helm.__version__}, kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else ''}, "
          f"schemas for Kubernetes {', '.join(KUBE_VERSIONS)}")
    for n in names:
        CONCERNS[n]()
    failed = len(R.failures)
    print(f"chart: {R.passes} passed, {failed} failed")
    if failed:
        print("\nFAILURES:")
        for f in R.failures:
            print(f"  - {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
