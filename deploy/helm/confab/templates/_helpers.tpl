{{/* Names, labels and the parts every Confab pod shares. */}}

{{- define "confab.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "confab.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "confab.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "confab.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "confab.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.existingSecret }}
      key: {{ .key }}
{{- end -}}

{{/* The environment every Confab process gets: the servers, the secrets, its instance id. */}}
{{- define "confab.env" -}}
- name: CONFAB_NAMESPACE
  value: {{ .Values.servers.namespace | quote }}
- name: CONFAB_KAFKA__BROKERS
  value: {{ .Values.servers.kafka.brokers | quote }}
- name: CONFAB_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.servers.kafka.replicationFactor | quote }}
- name: CONFAB_KAFKA__MIN_INSYNC_REPLICAS
  value: {{ .Values.servers.kafka.minInsyncReplicas | quote }}
- name: CONFAB_KAFKA__PARTITIONS
  value: {{ .Values.servers.kafka.partitions | quote }}
# each replica's static group member id (and ingest's transactional id): its pod's name
- name: CONFAB_KAFKA__INSTANCE_ID
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: CONFAB_CASSANDRA__NODES
  value: {{ .Values.servers.cassandra.nodes | quote }}
- name: CONFAB_CASSANDRA__REPLICATION_FACTOR
  value: {{ .Values.servers.cassandra.replicationFactor | quote }}
- name: CONFAB_REDIS__URL
  value: {{ .Values.servers.redis.url | quote }}
- name: CONFAB_SEARCH__URL
  value: {{ .Values.servers.search.url | quote }}
- name: CONFAB_REGISTRY__URL
  value: {{ include "confab.registryUrl" . | quote }}
- name: CONFAB_FILES__S3_ENDPOINT
  value: {{ .Values.servers.files.s3Endpoint | quote }}
{{- with .Values.servers.files.s3PublicEndpoint }}
- name: CONFAB_FILES__S3_PUBLIC_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: CONFAB_FILES__BUCKET
  value: {{ .Values.servers.files.bucket | quote }}
- name: CONFAB_TELEMETRY__LISTEN
  value: "0.0.0.0:9100"
{{ include "confab.secretEnv" (dict "root" . "name" "CONFAB_AUTH__TOKEN_SECRET" "key" .Values.secrets.keys.tokenSecret) }}
{{ include "confab.secretEnv" (dict "root" . "name" "CONFAB_AUTH__ADMIN_KEY" "key" .Values.secrets.keys.adminKey) }}
{{ include "confab.secretEnv" (dict "root" . "name" "CONFAB_KEYS__MASTER_KEY" "key" .Values.secrets.keys.masterKey) }}
{{ include "confab.secretEnv" (dict "root" . "name" "CONFAB_FILES__ACCESS_KEY" "key" .Values.secrets.keys.s3AccessKey) }}
{{ include "confab.secretEnv" (dict "root" . "name" "CONFAB_FILES__SECRET_KEY" "key" .Values.secrets.keys.s3SecretKey) }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "confab.registryUrl" -}}
{{- if .Values.registry.enabled -}}
http://{{ include "confab.fullname" . }}-registry:{{ .Values.registry.port }}
{{- else -}}
{{- required "registryUrl is required when registry.enabled is false" .Values.registryUrl -}}
{{- end -}}
{{- end -}}

{{/* The pod-level settings every Confab pod shares. */}}
{{- define "confab.podSettings" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
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
{{- end -}}

{{/* Probes of a process on `port`: alive while it answers /livez; ready per /readyz (a server
being away makes it unready, never restarts it). */}}
{{- define "confab.probes" -}}
livenessProbe:
  httpGet: {path: /livez, port: {{ . }}}
  periodSeconds: 10
  failureThreshold: 6
readinessProbe:
  httpGet: {path: /readyz, port: {{ . }}}
  periodSeconds: 5
  failureThreshold: 2
{{- end -}}
