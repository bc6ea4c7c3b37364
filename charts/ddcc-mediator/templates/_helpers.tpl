{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "ddcc-mediator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release + chart, unless the release name already contains the chart name. */}}
{{- define "ddcc-mediator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ddcc-mediator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ddcc-mediator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ddcc-mediator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ddcc-mediator.labels" -}}
helm.sh/chart: {{ include "ddcc-mediator.chart" . }}
{{ include "ddcc-mediator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: mediator
{{- end }}

{{- define "ddcc-mediator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ddcc-mediator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ddcc-mediator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Whether the pod needs its service-account token mounted (only for Vault Kubernetes auth). */}}
{{- define "ddcc-mediator.vaultKubernetesAuth" -}}
{{- if and (eq .Values.signer.type "vault") (eq .Values.vault.auth.method "kubernetes") }}true{{ end }}
{{- end }}

{{/* Settings that cannot be expressed in values.schema.json: fail early with a message that says what to set. */}}
{{- define "ddcc-mediator.validate" -}}
{{- if eq .Values.signer.type "vault" }}
{{- if not .Values.vault.addr }}
{{- fail "vault.addr is required when signer.type=vault (e.g. https://vault.vault.svc:8200)" }}
{{- end }}
{{- if and (eq .Values.vault.auth.method "approle") (not .Values.vault.auth.approle.existingSecret) }}
{{- fail "vault.auth.approle.existingSecret is required when vault.auth.method=approle (a Secret with role_id and secret_id)" }}
{{- end }}
{{- if and (eq .Values.vault.auth.method "token") (not .Values.vault.auth.token.existingSecret) }}
{{- fail "vault.auth.token.existingSecret is required when vault.auth.method=token" }}
{{- end }}
{{- if and (eq .Values.vault.auth.method "kubernetes") (not .Values.vault.auth.kubernetes.role) }}
{{- fail "vault.auth.kubernetes.role is required when vault.auth.method=kubernetes" }}
{{- end }}
{{- end }}
{{- if .Values.openhim.enabled }}
{{- if not .Values.openhim.url }}
{{- fail "openhim.url is required when openhim.enabled=true" }}
{{- end }}
{{- if not .Values.openhim.existingSecret }}
{{- fail "openhim.existingSecret is required when openhim.enabled=true (a Secret with the OpenHIM user's password)" }}
{{- end }}
{{- if not .Values.openhim.routeKey.existingSecret }}
{{- fail "openhim.routeKey.existingSecret is required when openhim.enabled=true: a key generated per pod would not match the channel route" }}
{{- end }}
{{- end }}
{{- if and (not .Values.config.fhirUrl) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "config.fhirUrl is required when replicaCount > 1 or autoscaling.enabled: without a FHIR server each pod keeps its certificates in its own emptyDir, so the other pods answer 404 for them and a restart loses them" }}
{{- end }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (add (int .Values.shutdownDelaySeconds) 15 | int) }}
{{- fail "terminationGracePeriodSeconds must be at least shutdownDelaySeconds + 15: the drain, then up to 10 s for requests in hand; a shorter grace period kills requests mid-way" }}
{{- end }}
{{- if regexMatch "^https?://[^/]+:4317(/.*)?$" .Values.otel.endpoint }}
{{- fail "otel.endpoint points at port 4317 (OTLP/gRPC), but the mediator exports OTLP over HTTP: use the collector's OTLP/HTTP port, 4318 by default" }}
{{- end }}
{{- if and (not .Values.linkSecret.existingSecret) (or (eq .Values.signer.type "vault") .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "linkSecret.existingSecret is required (a Secret with 32+ random bytes): each pod would otherwise sign citizen links with its own secret, lost on restart" }}
{{- end }}
{{- end }}
