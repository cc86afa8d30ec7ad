# The LeaderWorkerSet controller (kubernetes-sigs/lws, cmd/main.go): multi-node vLLM groups run
# on the local cluster under the real controller, with its webhooks (hack/cluster/lws.py).
BINARIES="lws-controller=sigs.k8s.io/lws/cmd"
# Linked as .tools/lws: the binary and, beside it, the CRDs of the same module version.
LINK_DIR=lws
group_post() {
  local src
  src=$(cd "$here/lws" && go list -m -f '{{.Dir}}' sigs.k8s.io/lws)
  mkdir -p "$1/crds"
  cp "$src"/config/crd/bases/*.yaml "$1/crds/"
  chmod u+w "$1"/crds/*.yaml
}
