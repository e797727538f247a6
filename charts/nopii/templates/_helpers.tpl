{{/* The chart name, overridable. */}}
{{- define "nopii.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects, within the 63 characters of a DNS
label: <release>-nopii, or the release name when it already says nopii.
*/}}
{{- define "nopii.fullname" -}}
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

{{/* The dashboard's objects: <fullname>-dashboard. */}}
{{- define "nopii.dashboardName" -}}
{{- printf "%s-dashboard" (include "nopii.fullname" . | trunc 53 | trimSuffix "-") }}
{{- end }}

{{- define "nopii.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "nopii.labels" -}}
helm.sh/chart: {{ include "nopii.chart" . }}
app.kubernetes.io/name: {{ include "nopii.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nopii
{{- end }}

{{/* Selector labels of the agent. */}}
{{- define "nopii.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nopii.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{/* Selector labels of the dashboard. */}}
{{- define "nopii.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "nopii.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end }}

{{- define "nopii.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nopii.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The agent's name: its pod's hostname, which agent.name defaults to. */}}
{{- define "nopii.agentName" -}}
{{- default (include "nopii.fullname" .) .Values.agent.name }}
{{- end }}

{{/* The Secret that secretEnv entries without their own secret read. */}}
{{- define "nopii.secretName" -}}
{{- default (include "nopii.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The ConfigMap holding the workflow file. */}}
{{- define "nopii.configMapName" -}}
{{- default (include "nopii.fullname" .) .Values.agent.existingConfigMap }}
{{- end }}

{{/* The image: repository@digest, else repository:tag (default appVersion). */}}
{{- define "nopii.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Scheduling and pull settings that every pod shares. */}}
{{- define "nopii.podCommon" -}}
serviceAccountName: {{ include "nopii.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
