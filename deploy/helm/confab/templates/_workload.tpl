{{/* One Confab process kind as a Deployment (or a StatefulSet with "kind"):
(dict "root" $ "component" "notifier" "kind" "Deployment" "replicas" 2 "args" (list "notifier")
 "ports" (list (dict "name" "telemetry" "port" 9100)) "probePort" "telemetry" "resources" ...) */}}
{{- define "confab.workload" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: {{ .kind | default "Deployment" }}
metadata:
  name: {{ include "confab.fullname" $root }}-{{ .component }}
  labels:
    {{- include "confab.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ .replicas }}
  {{- end }}
  {{- if eq (.kind | default "Deployment") "StatefulSet" }}
  serviceName: {{ include "confab.fullname" $root }}-{{ .component }}
  podManagementPolicy: Parallel
  {{- end }}
  selector:
    matchLabels:
      {{- include "confab.selector" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "confab.selector" (dict "root" $root "component" .component) | nindent 8 }}
    spec:
      {{- include "confab.podSettings" $root | nindent 6 }}
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .component }}
          image: {{ include "confab.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: {{ toJson .args }}
          env:
            {{- include "confab.env" $root | nindent 12 }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
            {{- end }}
          {{- include "confab.probes" .probePort | nindent 10 }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: tmp, emptyDir: {}}
{{- end -}}

{{/* A PodDisruptionBudget for one component: (dict "root" $ "component" "gateway" "budget" {...}) */}}
{{- define "confab.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "confab.fullname" .root }}-{{ .component }}
  labels:
    {{- include "confab.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- toYaml .budget | nindent 2 }}
  selector:
    matchLabels:
      {{- include "confab.selector" (dict "root" .root "component" .component) | nindent 6 }}
{{- end -}}
