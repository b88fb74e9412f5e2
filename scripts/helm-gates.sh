#!/usr/bin/env bash
# The Helm chart's gates (deploy/helm/envelope-service), as CI runs them:
#   1. helm lint --strict, with the default values and with every optional feature on
#      (the chart's ci/all-features-values.yaml);
#   2. helm template with both, validated against the Kubernetes $KUBE_VERSION schemas by
#      kubernetes-validate in strict mode (unknown fields are errors);
#   3. checkov on the rendered manifests: any failed check fails the gate; the checks the chart
#      skips carry their reason in a checkov.io/skipN annotation.
#
#   scripts/helm-gates.sh           install what is missing, then run the gates
#   scripts/helm-gates.sh install   only install; prints the helm binary's path
#
# Tools, each installed only when missing or at another version, cached under .tools/:
#   helm $HELM_VERSION, built from the Go module proxy into .tools/helm/bin;
#   kubernetes-validate and checkov from PyPI into the venv .tools/chart-venv.
# Concurrent callers wait on a lock.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELM_VERSION=v3.22.0
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
# The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion): the schemas validated against.
KUBE_VERSION=1.30.0
HELM_BIN_DIR=$ROOT/.tools/helm/bin
HELM=$HELM_BIN_DIR/helm
VENV=$ROOT/.tools/chart-venv
CHART=$ROOT/deploy/helm/envelope-service

log() { echo "helm-gates.sh: $*" >&2; }

install_helm() {
  if [ -x "$HELM" ] && go version -m "$HELM" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$HELM_VERSION[[:space:]]"; then
    return
  fi
  command -v go >/dev/null || { log "go is needed to build helm ($HELM_VERSION)"; exit 1; }
  log "building helm $HELM_VERSION into $HELM_BIN_DIR (go install; a few minutes the first time)"
  mkdir -p "$HELM_BIN_DIR"
  GOBIN=$HELM_BIN_DIR go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

install_venv() {
  if "$VENV/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(0 if m.version('kubernetes-validate') == '$KUBERNETES_VALIDATE_VERSION' and m.version('checkov') == '$CHECKOV_VERSION' else 1)" 2>/dev/null; then
    return
  fi
  log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION and checkov==$CHECKOV_VERSION into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "checkov==$CHECKOV_VERSION"
}

mkdir -p "$HELM_BIN_DIR"
exec 9>"$ROOT/.tools/helm/.lock"
flock 9
install_helm
install_venv
exec 9>&-

if [ "${1:-run}" = install ]; then
  echo "$HELM"
  exit 0
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# name of a rendering -> helm arguments giving its values
declare -A VALUES=([default]="" [all-features]="-f $CHART/ci/all-features-values.yaml")

for name in default all-features; do
  # shellcheck disable=SC2086 # VALUES holds words on purpose
  set -- ${VALUES[$name]}

  echo "== helm lint --strict ($name values)"
  "$HELM" lint --strict --kube-version "$KUBE_VERSION" "$@" "$CHART"

  echo "== helm template ($name values) | kubernetes-validate --strict, Kubernetes $KUBE_VERSION"
  mkdir -p "$OUT/$name"
  "$HELM" template envelope-service "$CHART" --namespace envelope --kube-version "$KUBE_VERSION" "$@" >"$OUT/$name/manifests.yaml"
  # Custom resources (ServiceMonitor, PrometheusRule) have no bundled schema: reported as a warning.
  "$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$KUBE_VERSION" "$OUT/$name/manifests.yaml"

  echo "== checkov on the rendered manifests ($name values)"
  # --skip-download: no call to the vendor's platform; the checks are the package's own.
  # Prints the counts, every failure, and every skipped check with the chart's reason.
  status=0
  "$VENV/bin/checkov" --skip-download --framework kubernetes --output json \
    --directory "$OUT/$name" >"$OUT/checkov.json" 2>"$OUT/checkov.err" || status=$?
  "$VENV/bin/python" - "$OUT/checkov.json" <<'PY' || { cat "$OUT/checkov.err" >&2; exit 1; }
import json, sys
report = json.load(open(sys.argv[1]))
results = report["results"]
summary = report["summary"]
print(f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped")
for check in results.get("failed_checks", []):
    print(f"  FAILED  {check['check_id']} {check['check_name']} ({check['resource']})")
unexplained = 0
for check in results.get("skipped_checks", []):
    reason = (check["check_result"].get("suppress_comment") or "").strip()
    unexplained += not reason
    print(f"  SKIPPED {check['check_id']} ({check['resource']}): {reason or 'NO REASON GIVEN'}")
sys.exit(1 if summary["failed"] or summary["parsing_errors"] or unexplained else 0)
PY
  [ "$status" -eq 0 ] || { log "checkov exited $status"; exit 1; }
done
echo "== helm gates passed"
