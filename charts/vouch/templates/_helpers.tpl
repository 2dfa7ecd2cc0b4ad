{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "vouch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every resource name. Truncated so that the longest suffix the chart adds
("-truststore-..." names are truncated separately) still fits.
*/}}
{{- define "vouch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
helm.sh/chart label value.
*/}}
{{- define "vouch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of the release (a Deployment's selector is immutable).
*/}}
{{- define "vouch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vouch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{/*
Common labels for every resource.
*/}}
{{- define "vouch.labels" -}}
helm.sh/chart: {{ include "vouch.chart" . }}
{{ include "vouch.selectorLabels" . }}
app.kubernetes.io/version: {{ include "vouch.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vouch
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Image tag (defaults to the chart's appVersion) and full image reference (digest wins over tag).
*/}}
{{- define "vouch.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "vouch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "vouch.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "vouch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vouch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Service DNS names the serving certificate must cover. The API server connects to
<service>.<namespace>.svc.
*/}}
{{- define "vouch.dnsNames" -}}
{{- $svc := include "vouch.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson }}
{{- end }}

{{/*
Name of the Secret holding the serving certificate (tls.crt, tls.key).
*/}}
{{- define "vouch.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" }}
{{- required "tls.secret.name is required when tls.mode is \"secret\"" .Values.tls.secret.name }}
{{- else if eq .Values.tls.mode "certManager" }}
{{- printf "%s-webhook-tls" (include "vouch.fullname" .) }}
{{- else }}
{{- printf "%s-tls" (include "vouch.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Name of the ConfigMap holding trustpolicy.json.
*/}}
{{- define "vouch.trustPolicyConfigMap" -}}
{{- .Values.existingTrustPolicyConfigMap | default (printf "%s-policy" (include "vouch.fullname" .)) }}
{{- end }}

{{/*
The trust policy document as JSON. A string value is taken as JSON text (e.g. from --set-file)
and must parse; an object is rendered as JSON.
*/}}
{{- define "vouch.trustPolicyJson" -}}
{{- include "vouch.policyDocumentJson" (list "trustPolicy" .Values.trustPolicy) }}
{{- end }}

{{/*
A trust policy value (a YAML object, or JSON text that must parse) as JSON. Arguments:
(list WHAT VALUE), WHAT naming the value in errors.
*/}}
{{- define "vouch.policyDocumentJson" -}}
{{- $what := index . 0 }}
{{- $tp := index . 1 }}
{{- if kindIs "string" $tp }}
{{- $doc := fromJson $tp }}
{{- if or (hasKey $doc "Error") (not (hasKey $doc "trustPolicies")) }}
{{- fail (printf "%s: the string is not a JSON trust policy document (expected {\"version\": \"1.0\", \"trustPolicies\": [...]})" $what) }}
{{- end }}
{{- toPrettyJson $doc }}
{{- else }}
{{- toPrettyJson $tp }}
{{- end }}
{{- end }}

{{/*
What a namespaceTrust mapping is called in paths and resource names: its name, else its index.
Arguments: (list INDEX MAPPING).
*/}}
{{- define "vouch.mappingId" -}}
{{- $i := index . 0 }}
{{- $m := index . 1 }}
{{- $m.name | default (printf "%d" (int $i)) }}
{{- end }}

{{/*
Directory of a namespaceTrust mapping's files in the pod. Arguments: (list INDEX MAPPING).
*/}}
{{- define "vouch.mappingDir" -}}
{{- printf "/etc/vouch/namespaces/%s" (include "vouch.mappingId" .) }}
{{- end }}

{{/*
Name of the ConfigMap holding a namespaceTrust mapping's trustpolicy.json (the chart's, or the
mapping's existingTrustPolicyConfigMap). Arguments: (list $ INDEX MAPPING).
*/}}
{{- define "vouch.mappingPolicyConfigMap" -}}
{{- $root := index . 0 }}
{{- $m := index . 2 }}
{{- $m.existingTrustPolicyConfigMap | default (printf "%s-ns-%s-policy" (include "vouch.fullname" $root) (include "vouch.mappingId" (list (index . 1) $m)) | trunc 63 | trimSuffix "-") }}
{{- end }}

{{/*
Name of the ConfigMap the chart creates for a namespaceTrust mapping's inline trust store.
Arguments: (list $ INDEX MAPPING STORE).
*/}}
{{- define "vouch.mappingStoreConfigMap" -}}
{{- $root := index . 0 }}
{{- $store := index . 3 }}
{{- printf "%s-ns-%s-ts-%s-%s" (include "vouch.fullname" $root) (include "vouch.mappingId" (list (index . 1) (index . 2))) ($store.type | lower) ($store.name | lower | replace "_" "-") | trunc 63 | trimSuffix "-" | trimSuffix "." }}
{{- end }}

{{/*
A trust store's volume source (ConfigMap or Secret, with `keys` as items). Arguments:
(list STORE CHART-CONFIGMAP-NAME), the name used for inline (certificates, placeholder) stores.
*/}}
{{- define "vouch.trustStoreVolumeSource" -}}
{{- $store := index . 0 }}
{{- if or $store.certificates $store.placeholder }}
configMap:
  name: {{ index . 1 }}
{{- else if $store.existingConfigMap }}
configMap:
  name: {{ $store.existingConfigMap }}
  {{- with $store.keys }}
  items:
    {{- range . }}
    - key: {{ . }}
      path: {{ . }}
    {{- end }}
  {{- end }}
{{- else }}
secret:
  secretName: {{ $store.existingSecret }}
  {{- with $store.keys }}
  items:
    {{- range . }}
    - key: {{ . }}
      path: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
Name of the ConfigMap holding the cosign keys and trusted roots given inline.
*/}}
{{- define "vouch.cosignConfigMap" -}}
{{- printf "%s-cosign" (include "vouch.fullname" .) }}
{{- end }}

{{/*
Whether any namespaceTrust mapping picks namespaces by label ("true" or ""): the webhook then
watches Namespaces.
*/}}
{{- define "vouch.mappingsNeedLabels" -}}
{{- range .Values.namespaceTrust }}{{ if .selector }}true{{ end }}{{ end }}
{{- end }}

{{/*
Checks of one list of trust stores: one source each, no duplicates, no ConfigMap name clash.
Arguments: (dict "root" $ "stores" LIST "what" CONTEXT "cm" CONFIGMAP-NAMES "mapping" nil|(list I M)).
Returns the "type:name" refs as a JSON list.
*/}}
{{- define "vouch.checkStores" -}}
{{- $seen := dict }}
{{- range .stores }}
{{- $ref := printf "%s:%s" .type .name }}
{{- if hasKey $seen $ref }}
{{- fail (printf "%s: %s is listed twice" $.what $ref) }}
{{- end }}
{{- $_ := set $seen $ref true }}
{{- $sources := 0 }}
{{- if .certificates }}{{ $sources = add1 $sources }}{{ end }}
{{- if .existingConfigMap }}{{ $sources = add1 $sources }}{{ end }}
{{- if .existingSecret }}{{ $sources = add1 $sources }}{{ end }}
{{- if .placeholder }}{{ $sources = add1 $sources }}{{ end }}
{{- if ne (int $sources) 1 }}
{{- fail (printf "%s %s: give exactly one of certificates, existingConfigMap, existingSecret%s" $.what $ref (ternary ", placeholder" "" (not $.mapping))) }}
{{- end }}
{{- if and $.mapping .placeholder }}
{{- fail (printf "%s %s: a namespaceTrust mapping cannot use a placeholder store (it exists to trust a tenant's signer): give its certificates" $.what $ref) }}
{{- end }}
{{- if or .certificates .placeholder }}
{{- $cm := "" }}
{{- if $.mapping }}
{{- $cm = include "vouch.mappingStoreConfigMap" (list $.root (index $.mapping 0) (index $.mapping 1) .) }}
{{- else }}
{{- $cm = include "vouch.trustStoreConfigMap" (list $.root .) }}
{{- end }}
{{- if hasKey $.cm $cm }}
{{- fail (printf "%s and %s %s map to the same ConfigMap name %s; rename one" (get $.cm $cm) $.what $ref $cm) }}
{{- end }}
{{- $_ := set $.cm $cm (printf "%s %s" $.what $ref) }}
{{- end }}
{{- end }}
{{- keys $seen | sortAlpha | toJson }}
{{- end }}

{{/*
Name of the ConfigMap the chart creates for a trust store given inline. Arguments: (list $ $store).
*/}}
{{- define "vouch.trustStoreConfigMap" -}}
{{- $root := index . 0 }}
{{- $store := index . 1 }}
{{- printf "%s-ts-%s-%s" (include "vouch.fullname" $root) ($store.type | lower) ($store.name | lower | replace "_" "-") | trunc 63 | trimSuffix "-" | trimSuffix "." }}
{{- end }}

{{/*
The webhooks' failurePolicy: as set, or, when empty, Fail under enforcement and Ignore under
dryrun (a webhook that refuses nothing must not refuse while vouch starts or is down either).
*/}}
{{- define "vouch.failurePolicy" -}}
{{- if .Values.webhook.failurePolicy }}
{{- .Values.webhook.failurePolicy }}
{{- else if eq .Values.vouch.enforcement "dryrun" }}
{{- "Ignore" }}
{{- else }}
{{- "Fail" }}
{{- end }}
{{- end }}

{{/*
The placeholder trust stores ("type:name" list, JSON): stores that trust no signer.
*/}}
{{- define "vouch.placeholderStores" -}}
{{- $refs := list }}
{{- range .Values.trustStores }}
{{- if .placeholder }}
{{- $refs = append $refs (printf "%s:%s" .type .name) }}
{{- end }}
{{- end }}
{{- toJson $refs }}
{{- end }}

{{/*
vouch.deadline in milliseconds ("8s" -> 8000, "7500ms" -> 7500).
*/}}
{{- define "vouch.deadlineMillis" -}}
{{- $d := toString .Values.vouch.deadline }}
{{- if regexMatch "^[0-9]+ms$" $d }}
{{- trimSuffix "ms" $d }}
{{- else if regexMatch "^[0-9]+s$" $d }}
{{- mul (trimSuffix "s" $d | atoi) 1000 }}
{{- else }}
{{- fail (printf "vouch.deadline %q: use whole seconds or milliseconds, e.g. \"8s\" or \"7500ms\"" $d) }}
{{- end }}
{{- end }}

{{/*
Checks that span several values; included once from the Deployment template.
*/}}
{{- define "vouch.validate" -}}
{{- $deadline := include "vouch.deadlineMillis" . | atoi }}
{{- $timeout := mul (int .Values.webhook.timeoutSeconds) 1000 }}
{{- if ge $deadline $timeout }}
{{- fail (printf "vouch.deadline (%s) must be below webhook.timeoutSeconds (%ds): the API server would give up before vouch answers" .Values.vouch.deadline (int .Values.webhook.timeoutSeconds)) }}
{{- end }}
{{- if and .Values.webhook.mutating.enabled .Values.webhook.mutating.templates (not .Values.webhook.validateWorkloads) }}
{{- fail "webhook.mutating.templates pins workload templates, and pinning judges them as the validating webhook would: it needs webhook.validateWorkloads=true (or set webhook.mutating.templates=false)" }}
{{- end }}
{{- if not (has .Values.tls.mode (list "generate" "certManager" "secret")) }}
{{- fail (printf "tls.mode %q: use generate, certManager or secret" .Values.tls.mode) }}
{{- end }}
{{- if eq .Values.tls.mode "secret" }}
{{- if not .Values.tls.secret.name }}
{{- fail "tls.mode is \"secret\": set tls.secret.name to an existing kubernetes.io/tls Secret" }}
{{- end }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" .Values.tls.secret.caCert) }}
{{- fail "tls.mode is \"secret\": set tls.secret.caCert to the PEM of the CA that signed it (--set-file tls.secret.caCert=ca.crt)" }}
{{- end }}
{{- end }}
{{- $cmNames := dict }}
{{- $refs := include "vouch.checkStores" (dict "root" . "stores" .Values.trustStores "what" "trustStores" "cm" $cmNames "mapping" nil) | fromJsonArray }}
{{- if not .Values.existingTrustPolicyConfigMap }}
{{- $doc := include "vouch.trustPolicyJson" . | fromJson }}
{{- range $doc.trustPolicies }}
{{- $statement := .name }}
{{- range (.trustStores | default list) }}
{{- if not (has . $refs) }}
{{- fail (printf "trustPolicy statement %q names trust store %q, which is not in trustStores: vouch would refuse to start" $statement .) }}
{{- end }}
{{- if and (eq $.Values.vouch.enforcement "enforce") (has . (include "vouch.placeholderStores" $ | fromJsonArray)) }}
{{- fail (printf "vouch.enforcement is \"enforce\" but trustPolicy statement %q trusts only what the placeholder store %q trusts, which is no signer: every image it covers would be denied. Give vouch your trust policy and trustStores first (charts/vouch/README.md, \"Roll out\")" $statement .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- include "vouch.validateTenancy" (dict "root" . "cm" $cmNames) }}
{{- include "vouch.validateCosign" . }}
{{- end }}

{{/*
Checks of vouch.pullCredentials, rbac.pullCredentials and namespaceTrust. Arguments:
(dict "root" $ "cm" CONFIGMAP-NAMES).
*/}}
{{- define "vouch.validateTenancy" -}}
{{- $v := .root.Values }}
{{- $mode := $v.vouch.pullCredentials | default "own" }}
{{- $grant := $v.rbac.pullCredentials.grant | default "" }}
{{- $tenantNs := $v.rbac.pullCredentials.namespaces | default list }}
{{- if ne $mode "own" }}
{{- if and $v.rbac.create (not $grant) }}
{{- fail (printf "vouch.pullCredentials is %q: vouch must read pods' pull Secrets and ServiceAccounts. Choose rbac.pullCredentials.grant: \"cluster\" (get/list/watch on every Secret of every namespace, see charts/vouch/README.md) or \"namespaces\" with rbac.pullCredentials.namespaces (get in those namespaces only); or set rbac.create=false and grant it yourself" $mode) }}
{{- end }}
{{- else if $grant }}
{{- fail (printf "rbac.pullCredentials.grant is %q but vouch.pullCredentials is \"own\": the grant would let vouch read Secrets it never uses. Set vouch.pullCredentials (pod or pod-only) or leave grant empty (vouch audit's pull secrets: registryAuth.pullSecrets.enabled)" $grant) }}
{{- end }}
{{- if and $grant (not $v.rbac.create) }}
{{- fail (printf "rbac.pullCredentials.grant is %q but rbac.create is false, so the chart creates no RBAC: leave grant empty and grant it yourself" $grant) }}
{{- end }}
{{- if and (eq $grant "namespaces") (not $tenantNs) }}
{{- fail "rbac.pullCredentials.grant is \"namespaces\": list the tenant namespaces in rbac.pullCredentials.namespaces" }}
{{- end }}
{{- if and (ne $grant "namespaces") $tenantNs }}
{{- fail (printf "rbac.pullCredentials.namespaces is set but grant is %q: the namespaces are used only with grant \"namespaces\"" $grant) }}
{{- end }}
{{- $needsLabels := include "vouch.mappingsNeedLabels" .root }}
{{- if and (not $v.serviceAccount.automountToken) (or (ne $mode "own") $needsLabels) }}
{{- fail (printf "serviceAccount.automountToken is false, but %s: vouch serve reads the Kubernetes API with its ServiceAccount token" (ternary (printf "vouch.pullCredentials is %q" $mode) "a namespaceTrust mapping has a selector (it needs the namespaces' labels)" (ne $mode "own"))) }}
{{- end }}
{{- $ids := dict }}
{{- range $i, $m := $v.namespaceTrust }}
{{- $id := include "vouch.mappingId" (list $i $m) }}
{{- $what := printf "namespaceTrust[%d] (%s)" (int $i) $id }}
{{- if hasKey $ids $id }}
{{- fail (printf "%s: the mapping name %q is used twice" $what $id) }}
{{- end }}
{{- $_ := set $ids $id true }}
{{- if not (or $m.names $m.selector) }}
{{- fail (printf "%s: pick namespaces with names, a selector or both" $what) }}
{{- end }}
{{- if eq (int (add (ternary 1 0 (hasKey $m "trustPolicy")) (ternary 1 0 (not (empty $m.existingTrustPolicyConfigMap))))) 1 | not }}
{{- fail (printf "%s: give exactly one of trustPolicy, existingTrustPolicyConfigMap" $what) }}
{{- end }}
{{- $refs := include "vouch.checkStores" (dict "root" $.root "stores" ($m.trustStores | default list) "what" (printf "%s trustStores" $what) "cm" $.cm "mapping" (list $i $m)) | fromJsonArray }}
{{- if $m.trustPolicy }}
{{- $doc := include "vouch.policyDocumentJson" (list (printf "%s trustPolicy" $what) $m.trustPolicy) | fromJson }}
{{- range $doc.trustPolicies }}
{{- $statement := .name }}
{{- range (.trustStores | default list) }}
{{- if not (has . $refs) }}
{{- fail (printf "%s: trustPolicy statement %q names trust store %q, which is not in the mapping's trustStores: vouch would refuse to start" $what $statement .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Checks of cosign: names unique, every reference resolves, keyless rules have a trusted root,
inline trusted roots are JSON.
*/}}
{{- define "vouch.validateCosign" -}}
{{- $c := .Values.cosign }}
{{- $keys := dict }}
{{- range $c.keys }}
{{- if hasKey $keys .name }}
{{- fail (printf "cosign.keys: %q is listed twice" .name) }}
{{- end }}
{{- $_ := set $keys .name true }}
{{- if eq (int (add (ternary 1 0 (not (empty .pem))) (ternary 1 0 (not (empty .existingConfigMap))))) 1 | not }}
{{- fail (printf "cosign.keys %s: give exactly one of pem, existingConfigMap (with key)" .name) }}
{{- end }}
{{- end }}
{{- $roots := dict }}
{{- range $c.trustedRoots }}
{{- if hasKey $roots .name }}
{{- fail (printf "cosign.trustedRoots: %q is listed twice" .name) }}
{{- end }}
{{- $_ := set $roots .name true }}
{{- if eq (int (add (ternary 1 0 (not (empty .json))) (ternary 1 0 (not (empty .existingConfigMap))))) 1 | not }}
{{- fail (printf "cosign.trustedRoots %s: give exactly one of json, existingConfigMap (with key)" .name) }}
{{- end }}
{{- if .json }}
{{- $doc := fromJson .json }}
{{- if or (hasKey $doc "Error") (not (hasKey $doc "mediaType")) }}
{{- fail (printf "cosign.trustedRoots %s: json is not a Sigstore trusted_root.json document (a JSON object with a mediaType)" .name) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $i, $rule := $c.rules }}
{{- $what := printf "cosign.rules[%d]" (int $i) }}
{{- if not (or $rule.keys $rule.keyless) }}
{{- fail (printf "%s: a rule needs keys, keyless identities or both" $what) }}
{{- end }}
{{- range ($rule.keys | default list) }}
{{- if not (hasKey $keys .) }}
{{- fail (printf "%s names key %q, which is not in cosign.keys" $what .) }}
{{- end }}
{{- end }}
{{- if and $rule.keyless (not $rule.trustedRoot) }}
{{- fail (printf "%s: keyless identities need a trustedRoot (the Fulcio CA, Rekor and CT log keys they are verified against): name a cosign.trustedRoots entry" $what) }}
{{- end }}
{{- if and $rule.trustedRoot (not (hasKey $roots $rule.trustedRoot)) }}
{{- fail (printf "%s names trustedRoot %q, which is not in cosign.trustedRoots" $what $rule.trustedRoot) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The admission rules of a webhook: pods and their ephemeral containers always; with a true
argument also the workloads that carry a pod template.
*/}}
{{- define "vouch.webhookRules" -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["pods"]
  scope: Namespaced
# `kubectl debug` adds ephemeral containers through this subresource.
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["UPDATE"]
  resources: ["pods/ephemeralcontainers"]
  scope: Namespaced
{{- if . }}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["replicationcontrollers"]
  scope: Namespaced
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["deployments", "replicasets", "statefulsets", "daemonsets"]
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["jobs", "cronjobs"]
  scope: Namespaced
{{- end }}
{{- end }}

{{/*
The mutating webhook's objectSelector: webhook.objectSelector AND webhook.mutating.objectSelector.
When both are set they are ANDed as matchExpressions (matchLabels become "In" terms), since a
plain merge would let one matchLabels value replace the other. YAML; empty for no selector.
*/}}
{{- define "vouch.mutatingObjectSelector" -}}
{{- $all := .Values.webhook.objectSelector | default dict }}
{{- $pin := (.Values.webhook.mutating | default dict).objectSelector | default dict }}
{{- if and $all $pin }}
{{- $exprs := list }}
{{- range (list $all $pin) }}
{{- range $key, $value := (.matchLabels | default dict) }}
{{- $exprs = append $exprs (dict "key" $key "operator" "In" "values" (list $value)) }}
{{- end }}
{{- $exprs = concat $exprs (.matchExpressions | default list) }}
{{- end }}
{{- toYaml (dict "matchExpressions" $exprs) }}
{{- else if or $all $pin }}
{{- toYaml (or $all $pin) }}
{{- end }}
{{- end }}
