{{/* The release's full name: the release name, or <release>-gantry. */}}
{{- define "gantry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gantry.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gantry.labels" -}}
{{ include "gantry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gantry.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "gantry.fullname" .) -}}
{{- end -}}

{{/* The Secret with the database URL and the secret key (mode postgres). */}}
{{- define "gantry.secretName" -}}
{{- .Values.secret.existingSecret | default (include "gantry.fullname" .) -}}
{{- end -}}

{{- define "gantry.trustedProxies" -}}
{{- if or (kindIs "invalid" .Values.trustedProxies) (eq (toString .Values.trustedProxies) "") -}}
{{- ternary 1 0 .Values.ingress.enabled -}}
{{- else -}}
{{- .Values.trustedProxies -}}
{{- end -}}
{{- end -}}

{{- define "gantry.publicUrl" -}}
{{- if .Values.publicUrl -}}
{{- .Values.publicUrl -}}
{{- else if .Values.ingress.enabled -}}
{{- $scheme := ternary "https" "http" (gt (len .Values.ingress.tls) 0) -}}
{{- $urls := list -}}
{{- range .Values.ingress.hosts }}{{ $urls = append $urls (printf "%s://%s" $scheme .) }}{{ end -}}
{{- join "," $urls -}}
{{- end -}}
{{- end -}}

{{/* Values that make no sense fail here, naming the value. */}}
{{- define "gantry.validate" -}}
{{- $mode := .Values.database.mode -}}
{{- if not (has $mode (list "postgres" "sqlite")) -}}
{{- fail (printf "database.mode: %q is neither postgres nor sqlite" (toString $mode)) -}}
{{- end -}}
{{- if not (kindIs "float64" .Values.replicaCount | or (kindIs "int" .Values.replicaCount) | or (kindIs "int64" .Values.replicaCount)) -}}
{{- fail (printf "replicaCount: %q is not a number" (toString .Values.replicaCount)) -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) 1 -}}
{{- fail (printf "replicaCount: %v; Gantry needs at least 1" .Values.replicaCount) -}}
{{- end -}}
{{- if and (eq $mode "sqlite") (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "replicaCount: %v with database.mode sqlite; the embedded database serves one replica (use 1, or database.mode postgres)" .Values.replicaCount) -}}
{{- end -}}
{{- if and (eq $mode "postgres") (not .Values.secret.existingSecret) (not .Values.database.url) -}}
{{- fail "database.url: empty and secret.existingSecret is empty too; mode postgres needs one of them (or set database.mode sqlite)" -}}
{{- end -}}
{{- if and (eq $mode "postgres") .Values.database.url (not (hasPrefix "postgres://" .Values.database.url)) (not (hasPrefix "postgresql://" .Values.database.url)) -}}
{{- fail "database.url: not a postgres:// URL" -}}
{{- end -}}
{{- if and .Values.secret.secretKey (ne (len (b64dec .Values.secret.secretKey)) 32) -}}
{{- fail "secret.secretKey: not base64 of 32 bytes (make one with: head -c 32 /dev/urandom | base64)" -}}
{{- end -}}
{{- if and .Values.oidc.issuer (not .Values.oidc.clientSecret.existingSecret) -}}
{{- fail "oidc.clientSecret.existingSecret: empty while oidc.issuer is set; name the Secret that holds the OpenID Connect client secret" -}}
{{- end -}}
{{- if and .Values.oidc.issuer (not (include "gantry.publicUrl" .)) -}}
{{- fail "publicUrl: empty (and no ingress hosts) while oidc.issuer is set; the provider sends people back to <publicUrl>/auth/sso/callback" -}}
{{- end -}}
{{- if not (has .Values.oidc.localPasswords (list "everyone" "admins")) -}}
{{- fail (printf "oidc.localPasswords: %q is neither everyone nor admins" (toString .Values.oidc.localPasswords)) -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) -}}
{{- fail "ingress.hosts: empty while ingress.enabled is true; name at least one host" -}}
{{- end -}}
{{- end -}}
