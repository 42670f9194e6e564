{{/* Names, labels and the checks every render runs. */}}

{{- define "viseme-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "viseme-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "viseme-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "viseme-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "viseme-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "viseme-gateway.commonLabels" -}}
helm.sh/chart: {{ include "viseme-gateway.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "viseme-gateway.labels" -}}
{{ include "viseme-gateway.commonLabels" . }}
{{ include "viseme-gateway.selectorLabels" . }}
{{- end -}}

{{- define "viseme-gateway.redis.fullname" -}}
{{- printf "%s-redis" (include "viseme-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "viseme-gateway.redis.labels" -}}
{{ include "viseme-gateway.commonLabels" . }}
{{ include "viseme-gateway.redis.selectorLabels" . }}
{{- end -}}

{{- define "viseme-gateway.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "viseme-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- define "viseme-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "viseme-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "viseme-gateway.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.gpu.enabled -}}
{{- $tag = .Values.image.gpuTag | default (printf "%s-gpu" .Chart.AppVersion) -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* Where the gateway's Redis URL comes from: "" when none is configured. */}}
{{- define "viseme-gateway.redis.source" -}}
{{- $sources := list -}}
{{- if .Values.redis.url }}{{ $sources = append $sources "redis.url" }}{{ end -}}
{{- if .Values.redis.existingSecret }}{{ $sources = append $sources "redis.existingSecret" }}{{ end -}}
{{- if .Values.redis.internal.enabled }}{{ $sources = append $sources "redis.internal.enabled" }}{{ end -}}
{{- if gt (len $sources) 1 -}}
{{- fail (printf "viseme-gateway: set only one of redis.url, redis.existingSecret and redis.internal.enabled (got %s)" (join ", " $sources)) -}}
{{- end -}}
{{- first $sources | default "" -}}
{{- end -}}

{{- define "viseme-gateway.terminationGracePeriodSeconds" -}}
{{- $needed := add .Values.preStopSleepSeconds (ceil .Values.gateway.drainSeconds) -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $needed .Values.terminationGraceMarginSeconds -}}
{{- else -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "viseme-gateway: terminationGracePeriodSeconds (%d) must be longer than preStopSleepSeconds + gateway.drainSeconds (%d): the kubelet would kill the gateway before open conversations are drained" (int .Values.terminationGracePeriodSeconds) (int $needed)) -}}
{{- end -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Refuse configurations that render fine but break at run time. */}}
{{- define "viseme-gateway.validate" -}}
{{- $redis := include "viseme-gateway.redis.source" . -}}
{{- $scaled := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- if and $scaled (not $redis) -}}
{{- fail "viseme-gateway: replicaCount > 1 or autoscaling.enabled needs Redis (redis.url, redis.existingSecret or redis.internal.enabled): without it every replica keeps its own in-memory revocation list, so a revoked token would still work on the other replicas" -}}
{{- end -}}
{{- if and (gt (int .Values.gateway.workers) 1) (not $redis) -}}
{{- fail "viseme-gateway: gateway.workers > 1 needs Redis (redis.url, redis.existingSecret or redis.internal.enabled): each worker is a process of its own, and only Redis carries a revocation to all of them" -}}
{{- end -}}
{{- if and $scaled (not .Values.secrets.existingSecret) -}}
{{- fail "viseme-gateway: replicaCount > 1 or autoscaling.enabled needs secrets.existingSecret with the API keys and token keys: without it every replica makes up its own ephemeral keys and cannot read the signed URLs the others issue" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "viseme-gateway: autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (eq (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) -}}
{{- fail "viseme-gateway: set exactly one of podDisruptionBudget.maxUnavailable and podDisruptionBudget.minAvailable" -}}
{{- end -}}
{{- $owned := list "VISEME_GATEWAY_HOST" "VISEME_GATEWAY_PORT" "VISEME_GATEWAY_PUBLIC_URL"
      "VISEME_GATEWAY_DRAIN_SECONDS" "VISEME_GATEWAY_LOG_LEVEL" "VISEME_GATEWAY_MAX_BODY_BYTES"
      "VISEME_GATEWAY_ENGINE_THREADS" "VISEME_GATEWAY_WORKERS" "VISEME_GATEWAY_DEVICE" "VISEME_GATEWAY_API_KEYS"
      "VISEME_GATEWAY_TOKEN_KEYS" "VISEME_GATEWAY_REDIS_URL" "VISEME_GATEWAY_REDIS_PREFIX"
      "VISEME_GATEWAY_KEYS_FILE" "VISEME_GATEWAY_METRICS_PORT" -}}
{{- range .Values.gateway.extraEnv -}}
{{- if has .name $owned -}}
{{- fail (printf "viseme-gateway: %s must not be set in gateway.extraEnv: the chart sets it from its own values, and keys and the Redis URL only ever from a Secret" .name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) -}}
{{- fail "viseme-gateway: httpRoute.enabled needs httpRoute.parentRefs naming at least one Gateway" -}}
{{- end -}}
{{- end -}}

{{/* VISEME_GATEWAY_PUBLIC_URL: the pod listens on 0.0.0.0, so the gateway needs one
(signed URLs never take their host from a request). gateway.publicUrl, else the
first Ingress or HTTPRoute host (https), else the in-cluster Service URL. */}}
{{- define "viseme-gateway.publicUrl" -}}
{{- if .Values.gateway.publicUrl -}}
{{- .Values.gateway.publicUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- printf "https://%s" (index .Values.ingress.hosts 0).host -}}
{{- else if and .Values.httpRoute.enabled .Values.httpRoute.hostnames -}}
{{- printf "https://%s" (index .Values.httpRoute.hostnames 0) -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%d" (include "viseme-gateway.fullname" .) .Release.Namespace (int .Values.service.port) -}}
{{- end -}}
{{- end -}}
