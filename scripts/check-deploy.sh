#!/usr/bin/env bash
# Checks what deploy/ ships for operators with Prometheus's own tool, promtool (issue 20):
#   - deploy/alerts.yml parses and is valid (`promtool check rules`),
#   - its unit tests, deploy/alerts.test.yml, pass (`promtool test rules`: each feeds series and
#     says which alerts fire, and when),
#   - every query of the Grafana dashboard deploy/grafana/confab.json parses as PromQL (each is
#     checked as a recording rule, with the dashboard's variables given example values).
#   - the Helm chart deploy/helm/confab lints (`helm lint --strict`), renders (`helm template`)
#     with its defaults and with the optional parts on, and every rendered object is valid
#     against the Kubernetes API's schemas (`kubeconform -strict`; the ServiceMonitor, a
#     Prometheus Operator CRD, has no schema there: a check here sees that it selects the
#     Services that carry the metrics label and scrapes ports they have).
# tests/tests/exposure.rs checks that the metrics these name exist in the code.
# promtool comes from Debian's `prometheus` package, unpacked (not installed: nothing starts) into
# ${CONFAB_CACHE:-~/.cache/confab}/tools once per package version; helm and kubeconform are built
# from the Go module proxy (go install) into the same directory; the Kubernetes JSON schemas come
# from the `kubernetes-validate` wheel on PyPI, which carries them per Kubernetes version.
set -euo pipefail
cd "$(dirname "$0")/.."

tools_dir="${CONFAB_CACHE:-$HOME/.cache/confab}/tools"
promtool_from_debian() {
  local version
  version="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    apt-get update -qq >&2
    version="$(apt-cache policy prometheus | awk '/Candidate:/ { print $2 }')"
  fi
  local dir="$tools_dir/promtool-${version//[:+~]/_}"
  if [ ! -x "$dir/promtool" ]; then
    echo "unpacking promtool from Debian's prometheus $version" >&2
    local work
    work="$(mktemp -d)"
    (cd "$work" && apt-get download -q "prometheus=$version" >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb unpacked)
    mkdir -p "$dir"
    mv "$work/unpacked/usr/bin/promtool" "$dir/promtool"
    rm -rf "$work"
  fi
  echo "$dir/promtool"
}
promtool="$(promtool_from_debian)"

"$promtool" check rules deploy/alerts.yml
(cd deploy && "$promtool" test rules alerts.test.yml)

dashboard_rules="$(mktemp --suffix=.yml)"
trap 'rm -f "$dashboard_rules"' EXIT
python3 - deploy/grafana/confab.json "$dashboard_rules" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
variables = {"$__rate_interval": "5m", "$instance": ".*"}
rules = []
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"]
        for name, value in variables.items():
            expr = expr.replace(name, value)
        assert "$" not in expr, f"panel {panel['title']!r}: a variable the check does not know: {expr}"
        rules.append({"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr})
assert len(rules) >= 20, f"only {len(rules)} queries in the dashboard"
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"), indent=1)
print(f"dashboard: {len(rules)} queries")
PY
"$promtool" check rules "$dashboard_rules"

# the Helm chart
helm_version=v4.3.2
kubeconform_version=v0.8.0
kubernetes_version=1.33.0
kubernetes_validate_version=1.37.0
go_tool() { # module version binary
  local dir="$tools_dir/$3-$2"
  if [ ! -x "$dir/$3" ]; then
    echo "go install $1@$2 (cold: a few minutes on 2 cores)" >&2
    mkdir -p "$dir"
    CGO_ENABLED=0 GOBIN="$dir" GOFLAGS=-buildvcs=false GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
      nice -n 10 go install -trimpath -ldflags "-s -w" "$1@$2" >"$dir/.install.log" 2>&1 \
      || { tail -20 "$dir/.install.log" >&2; exit 1; }
  fi
  echo "$dir/$3"
}
# a Python of its own for the schemas' download and the YAML checks
deploy_python="$tools_dir/deploy-venv/bin/python"
if ! "$deploy_python" -c 'import yaml' 2>/dev/null; then
  python3 -m venv "$tools_dir/deploy-venv"
  "$tools_dir/deploy-venv/bin/pip" install --quiet pyyaml
fi
helm="$(go_tool helm.sh/helm/v4/cmd/helm "$helm_version" helm)"
kubeconform="$(go_tool github.com/yannh/kubeconform/cmd/kubeconform "$kubeconform_version" kubeconform)"
schemas_dir="$tools_dir/kubernetes-json-schema-$kubernetes_validate_version"
if [ ! -d "$schemas_dir/v$kubernetes_version-local-strict" ]; then
  echo "Kubernetes $kubernetes_version JSON schemas from PyPI's kubernetes-validate $kubernetes_validate_version" >&2
  work="$(mktemp -d)"
  "$deploy_python" -m pip download --quiet --no-deps --dest "$work" "kubernetes-validate==$kubernetes_validate_version"
  "$deploy_python" - "$work"/kubernetes_validate-*.whl "$schemas_dir" "v$kubernetes_version-local-strict" <<'PY'
import sys, zipfile
wheel, target, version = sys.argv[1:]
prefix = f"kubernetes_validate/kubernetes-json-schema/{version}/"
with zipfile.ZipFile(wheel) as archive:
    members = [name for name in archive.namelist() if name.startswith(prefix)]
    assert members, f"no {version} schemas in {wheel}"
    for name in members:
        archive.extract(name, target + "/.unpack")
PY
  mv "$schemas_dir/.unpack/kubernetes_validate/kubernetes-json-schema/v$kubernetes_version-local-strict" "$schemas_dir/"
  rm -rf "$schemas_dir/.unpack" "$work"
fi
chart=deploy/helm/confab
"$helm" lint --strict "$chart"
rendered="$(mktemp -d)"
trap 'rm -f "$dashboard_rules"; rm -rf "$rendered"' EXIT
"$helm" template confab "$chart" --namespace chat --kube-version "$kubernetes_version" > "$rendered/defaults.yaml"
"$helm" template confab "$chart" --namespace chat --kube-version "$kubernetes_version" \
  --set serviceMonitor.enabled=true --set gateway.autoscaling.enabled=false \
  --set registry.enabled=false --set registryUrl=http://registry.example:8081 \
  --set servers.files.s3PublicEndpoint=https://files.example > "$rendered/options.yaml"
# the wheel's schemas share one _definitions.json through absolute references; kubeconform takes
# standalone ones (as yannh/kubernetes-json-schema publishes them): each kind the chart renders is
# made standalone once, its definitions inlined
standalone="$schemas_dir/v$kubernetes_version-standalone-strict"
mkdir -p "$standalone"
"$deploy_python" - "$schemas_dir/v$kubernetes_version-local-strict" "$standalone" "$rendered"/*.yaml <<'PY'
import json, os, sys, yaml
local, standalone, *manifests = sys.argv[1:]
definitions = None
for manifest in manifests:
    for item in yaml.safe_load_all(open(manifest)):
        if not item or item["kind"] == "ServiceMonitor":
            continue
        group, _, version = item["apiVersion"].rpartition("/")
        name = item["kind"].lower() + ("-" + group.split(".")[0] if group else "") + "-" + version + ".json"
        target = os.path.join(standalone, name)
        if os.path.exists(target):
            continue
        if definitions is None:
            definitions = json.load(open(os.path.join(local, "_definitions.json")))["$defs"]
        schema = json.load(open(os.path.join(local, name)))
        schema["$defs"] = definitions
        text = json.dumps(schema).replace("/api/_definitions.json#/$defs/", "#/$defs/")
        open(target + ".tmp", "w").write(text)
        os.replace(target + ".tmp", target)
PY
"$kubeconform" -strict -summary -kubernetes-version "$kubernetes_version" -skip ServiceMonitor \
  -schema-location "$standalone/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  "$rendered/defaults.yaml" "$rendered/options.yaml"
# the ServiceMonitor selects the metrics Services, and each of them has a port it scrapes
"$deploy_python" - "$rendered/options.yaml" <<'PY'
import sys, yaml
objects = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
assert len(monitors) == 1, f"one ServiceMonitor, not {len(monitors)}"
selector = monitors[0]["spec"]["selector"]["matchLabels"]
scraped_ports = {endpoint["port"] for endpoint in monitors[0]["spec"]["endpoints"]}
services = [o for o in objects if o["kind"] == "Service"]
selected = [s for s in services if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())]
assert len(selected) >= 6, f"the ServiceMonitor selects only {[s['metadata']['name'] for s in selected]}"
for service in selected:
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert ports & scraped_ports, f"{service['metadata']['name']} has no port the ServiceMonitor scrapes: {ports}"
print(f"ServiceMonitor: {len(selected)} Services scraped")
PY
