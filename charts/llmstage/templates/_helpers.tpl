{{/*
Names. The full name contains the release name, so cluster-scoped objects (ClusterRole,
ClusterRoleBinding, admission policy) of two releases never collide.
*/}}
{{- define "llmstage.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llmstage.fullname" -}}
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

{{/*
The operator's own name label is "<name>-operator": the serving pods the operator watches carry
app.kubernetes.io/name=llmstage, and the operator's pod must never look like one of them.
*/}}
{{- define "llmstage.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmstage.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llmstage.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "llmstage.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: llmstage
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "llmstage.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "llmstage.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "llmstage.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* True (non-empty) when a watched namespace is a kopf pattern rather than a name. */}}
{{- define "llmstage.watchesPatterns" -}}
{{- range .Values.watchNamespaces }}
{{- if regexMatch "[*?\\[\\]!]" . }}yes{{ end }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs in every namespace it watches (the same for the ClusterRole and the
Roles). Exact verbs, no wildcards, no Secrets: Secrets are only referenced by name in pod specs.
*/}}
{{- define "llmstage.namespacedRules" -}}
# LLMServices: watched; the operator writes only their status (merge patch).
- apiGroups: ["llmstage.io"]
  resources: ["llmservices"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["llmstage.io"]
  resources: ["llmservices/status"]
  verbs: ["patch"]
# Children: server-side apply is a PATCH (create when the object is new), pruning is a DELETE.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# One NetworkPolicy per LLMService: who may reach its pods.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# KEDA ScaledObjects (spec.autoscaling.autoscaler keda): watched, server-side applied, pruned; never read
# one by one. KEDA itself creates the HPA behind each one.
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# A replica over several nodes is a LeaderWorkerSet group (spec.resources.gpu.nodes); spec.routing
# renders an InferencePool and an HTTPRoute. Same verbs as ScaledObjects, for the same reasons.
- apiGroups: ["leaderworkerset.x-k8s.io"]
  resources: ["leaderworkersets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["inference.networking.k8s.io"]
  resources: ["inferencepools"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Readiness comes from the pods and the EndpointSlices of the Service.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
# `llmstage benchmark` results (ConfigMaps NAME-benchmark the CLI writes): read for status.benchmark,
# never written. Watched with a label selector, so only those reach the operator.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch"]
# Events on LLMServices when a condition changes.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
