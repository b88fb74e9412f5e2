{{/* Names and labels. */}}
{{- define "envelope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "envelope.fullname" -}}
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

{{- define "envelope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "envelope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "envelope.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "envelope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "envelope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "envelope.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository:tag@digest. */}}
{{- define "envelope.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "envelope.shipperImage" -}}
{{- $i := .Values.auditShipper.image -}}
{{- if $i.digest -}}
{{- printf "%s:%s@%s" $i.repository $i.tag $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository $i.tag -}}
{{- end -}}
{{- end -}}

{{/*
One value, shutdown.graceSeconds, gives both SHUTDOWN_GRACE_MS and the pod's
terminationGracePeriodSeconds: Kubernetes counts the preStop sleep inside the grace period, then
the service drains for SHUTDOWN_GRACE_MS, and the native audit-shipper sidecar flushes after the
service has exited.
*/}}
{{- define "envelope.shutdownGraceMs" -}}
{{- mul (int .Values.shutdown.graceSeconds) 1000 -}}
{{- end -}}

{{- define "envelope.terminationGracePeriodSeconds" -}}
{{- $s := add (int .Values.shutdown.preStopSleepSeconds) (int .Values.shutdown.graceSeconds) (int .Values.shutdown.marginSeconds) -}}
{{- if .Values.auditShipper.enabled -}}
{{- $s = add $s (int .Values.auditShipper.flushSeconds) -}}
{{- end -}}
{{- $s -}}
{{- end -}}

{{/* The Secret holding REDIS_URL, and its key; empty when Redis is not configured. */}}
{{- define "envelope.redisSecretName" -}}
{{- if .Values.redis.existingSecret.name -}}
{{- .Values.redis.existingSecret.name -}}
{{- else if .Values.redis.url -}}
{{- printf "%s-redis" (include "envelope.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "envelope.redisSecretKey" -}}
{{- if .Values.redis.existingSecret.name -}}
{{- .Values.redis.existingSecret.key -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{- define "envelope.policyConfigMapName" -}}
{{- if .Values.policy.existingConfigMap -}}
{{- .Values.policy.existingConfigMap -}}
{{- else -}}
{{- printf "%s-policy" (include "envelope.fullname" .) -}}
{{- end -}}
{{- end -}}
