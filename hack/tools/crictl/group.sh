# crictl: the CRI client, to look at the real node's pods and containers when something is wrong.
BINARIES="crictl=sigs.k8s.io/cri-tools/cmd/crictl"

group_ldflags() {
  echo "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$(module_version crictl sigs.k8s.io/cri-tools)"
}
