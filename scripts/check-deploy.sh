#!/usr/bin/env bash
# Checks what deploy/ ships for operators with Prometheus's own tool, promtool (issue 20):
#   - deploy/alerts.yml parses and is valid (`promtool check rules`),
#   - its unit tests, deploy/alerts.test.yml, pass (`promtool test rules`: each feeds series and
#     says which alerts fire, and when),
#   - every query of the Grafana dashboard deploy/grafana/confab.json parses as PromQL (each is
#     checked as a recording rule, with the dashboard's variables given example values).
# tests/tests/exposure.rs checks that the metrics these name exist in the code.
# promtool comes from Debian's `prometheus` package, unpacked (not installed: nothing starts) into
# ${CONFAB_CACHE:-~/.cache/confab}/tools once per package version.
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
