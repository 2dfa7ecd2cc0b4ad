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
{{- $tp := .Values.trustPolicy }}
{{- if kindIs "string" $tp }}
{{- $doc := fromJson $tp }}
{{- if or (hasKey $doc "Error") (not (hasKey $doc "trustPolicies")) }}
{{- fail "trustPolicy: the string is not a JSON trust policy document (expected {\"version\": \"1.0\", \"trustPolicies\": [...]})" }}
{{- end }}
{{- toPrettyJson $doc }}
{{- else }}
{{- toPrettyJson $tp }}
{{- end }}
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
{{- $seen := dict }}
{{- $cmNames := dict }}
{{- range .Values.trustStores }}
{{- $ref := printf "%s:%s" .type .name }}
{{- if hasKey $seen $ref }}
{{- fail (printf "trustStores: %s is listed twice" $ref) }}
{{- end }}
{{- $_ := set $seen $ref true }}
{{- $sources := 0 }}
{{- if .certificates }}{{ $sources = add1 $sources }}{{ end }}
{{- if .existingConfigMap }}{{ $sources = add1 $sources }}{{ end }}
{{- if .existingSecret }}{{ $sources = add1 $sources }}{{ end }}
{{- if .placeholder }}{{ $sources = add1 $sources }}{{ end }}
{{- if ne (int $sources) 1 }}
{{- fail (printf "trustStores %s: give exactly one of certificates, existingConfigMap, existingSecret, placeholder" $ref) }}
{{- end }}
{{- if or .certificates .placeholder }}
{{- $cm := include "vouch.trustStoreConfigMap" (list $ .) }}
{{- if hasKey $cmNames $cm }}
{{- fail (printf "trustStores %s and %s map to the same ConfigMap name %s; rename one" (get $cmNames $cm) $ref $cm) }}
{{- end }}
{{- $_ := set $cmNames $cm $ref }}
{{- end }}
{{- end }}
{{- if not .Values.existingTrustPolicyConfigMap }}
{{- $doc := include "vouch.trustPolicyJson" . | fromJson }}
{{- range $doc.trustPolicies }}
{{- $statement := .name }}
{{- range (.trustStores | default list) }}
{{- if not (hasKey $seen .) }}
{{- fail (printf "trustPolicy statement %q names trust store %q, which is not in trustStores: vouch would refuse to start" $statement .) }}
{{- end }}
{{- if and (eq $.Values.vouch.enforcement "enforce") (has . (include "vouch.placeholderStores" $ | fromJsonArray)) }}
{{- fail (printf "vouch.enforcement is \"enforce\" but trustPolicy statement %q trusts only what the placeholder store %q trusts, which is no signer: every image it covers would be denied. Give vouch your trust policy and trustStores first (charts/vouch/README.md, \"Roll out\")" $statement .) }}
{{- end }}
{{- end }}
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
