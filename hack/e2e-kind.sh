#!/usr/bin/env bash
# make e2e-kind: the e2e suite (e2e/) on a kind cluster with the operator running from its image.
#
#   1. creates a NEW kind cluster (name llmstage-e2e-<random>) with its own kubeconfig file; it
#      never reads or changes ~/.kube/config and refuses any context it did not create
#   2. gives the worker node 8 fake nvidia.com/gpu (node status patch) and the GPU labels GPU
#      feature discovery would set (H100), so vLLM pods schedule as on a GPU node
#   3. builds the operator image (Dockerfile) and the stand-in runtime image (e2e/fake-llm: canned
#      OpenAI answers instead of Ollama/vLLM, no model downloads, no GPU needed), loads both
#   4. installs charts/llmstage with the operator image, then runs the same suite as CI with
#      LLMSTAGE_E2E_OPERATOR=in-cluster
#   5. deletes the cluster (KEEP_CLUSTER=1 keeps it and prints how to reach it)
#
# Needs a Docker engine and kind (https://kind.sigs.k8s.io; `go install sigs.k8s.io/kind@latest`).
# It cannot run where there is no Docker engine, such as this project's CI machines: there, `make e2e`
# runs the same suite on the local cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "e2e-kind: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "needs Docker: no docker command here. Use 'make e2e' (local cluster) on machines without Docker."
docker info >/dev/null 2>&1 || die "needs a running Docker engine ('docker info' failed). Use 'make e2e' (local cluster) on machines without Docker."
KIND=${KIND:-kind}
command -v "$KIND" >/dev/null 2>&1 || die "needs kind: go install sigs.k8s.io/kind@latest (or set KIND=/path/to/kind)"
HELM=${HELM:-.tools/bin/helm}
[ -x "$HELM" ] || HELM=$(command -v helm) || die "needs helm: make tools (or put helm on PATH)"
KUBECTL=${KUBECTL:-.tools/bin/kubectl}
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl) || die "needs kubectl: make tools (or put kubectl on PATH)"
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || die "needs the venv: make venv"

NAME="llmstage-e2e-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CONTEXT="kind-$NAME"
WORK=$(mktemp -d)
KUBECONFIG_FILE="$WORK/kubeconfig"
OPERATOR_IMAGE="llmstage:e2e-$NAME"
RUNTIME_IMAGE="llmstage-fake-llm:e2e-$NAME"
created=0

cleanup() {
  if [ "$created" = 1 ] && [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    "$KIND" delete cluster --name "$NAME" >/dev/null 2>&1 || true
  elif [ "$created" = 1 ]; then
    echo "e2e-kind: kept cluster $NAME; kubeconfig $KUBECONFIG_FILE; delete with: $KIND delete cluster --name $NAME"
  fi
}
trap cleanup EXIT

# Every kubectl/helm call goes through this guard: only the context this script created.
k() {
  local current
  current=$("$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" config current-context)
  [ "$current" = "$CONTEXT" ] || die "refusing context '$current': this script only uses the cluster it created ($CONTEXT)"
  "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" --context "$CONTEXT" "$@"
}

"$KIND" get clusters 2>/dev/null | grep -qx "$NAME" && die "a kind cluster named $NAME already exists; refusing to touch it"
cat >"$WORK/kind.yaml" <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
    labels:
      nvidia.com/gpu.present: "true"
      nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3
      nvidia.com/gpu.memory: "81559"
      nvidia.com/gpu.count: "8"
EOF
echo "e2e-kind: creating kind cluster $NAME"
created=1
"$KIND" create cluster --name "$NAME" --config "$WORK/kind.yaml" --kubeconfig "$KUBECONFIG_FILE" --wait 120s

GPU_NODE=$(k get nodes -l nvidia.com/gpu.present=true -o jsonpath='{.items[0].metadata.name}')
[ -n "$GPU_NODE" ] || die "no worker node with the GPU labels"
# Extended resources without a device plugin: advertised by a status patch (the documented way,
# kubernetes.io/docs/tasks/administer-cluster/extended-resource-node/); the kubelet keeps them.
k patch node "$GPU_NODE" --subresource=status --type=json \
  -p='[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"8"}]'
for _ in $(seq 1 30); do
  [ "$(k get node "$GPU_NODE" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')" = 8 ] && break
  sleep 1
done
[ "$(k get node "$GPU_NODE" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')" = 8 ] || die "the fake GPUs did not show up in allocatable"

echo "e2e-kind: building $OPERATOR_IMAGE and $RUNTIME_IMAGE"
docker build -t "$OPERATOR_IMAGE" .
docker build -t "$RUNTIME_IMAGE" e2e/fake-llm
"$KIND" load docker-image --name "$NAME" "$OPERATOR_IMAGE" "$RUNTIME_IMAGE"

current=$("$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" config current-context)
[ "$current" = "$CONTEXT" ] || die "refusing context '$current' for helm"
"$HELM" --kubeconfig "$KUBECONFIG_FILE" --kube-context "$CONTEXT" install llmstage charts/llmstage \
  --namespace llmstage-system --create-namespace --wait --timeout 180s \
  --set image.repository="${OPERATOR_IMAGE%%:*}" --set image.tag="${OPERATOR_IMAGE#*:}" \
  --set image.pullPolicy=Never --set operator.unschedulableGraceSeconds=8
k -n llmstage-system rollout status deployment/llmstage --timeout=180s

echo "e2e-kind: running the e2e suite against $CONTEXT"
# PYTEST_ARGS is split into words on purpose (e.g. PYTEST_ARGS="-k promotion -x").
# shellcheck disable=SC2086
LLMSTAGE_TEST_KUBECONFIG="$KUBECONFIG_FILE" \
LLMSTAGE_E2E_OPERATOR=in-cluster \
LLMSTAGE_E2E_RELEASE=llmstage \
LLMSTAGE_E2E_RELEASE_NAMESPACE=llmstage-system \
LLMSTAGE_E2E_RUNTIME_IMAGE="$RUNTIME_IMAGE" \
  "$PY" -m pytest e2e ${PYTEST_ARGS:-} || { k -n llmstage-system logs deployment/llmstage --tail=200 >&2 || true; exit 1; }
