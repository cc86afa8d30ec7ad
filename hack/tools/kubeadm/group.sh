# kubeadm for the kind node image (hack/kind/node_image.py): kind boots every node with it, at the
# same k8s.io/kubernetes version as the cluster's other binaries (hack/tools/kubernetes). A group of
# its own so that adding it did not rebuild that group; the packages both use compile once (GOCACHE).
BINARIES="kubeadm=k8s.io/kubernetes/cmd/kubeadm"

# As hack/tools/kubernetes: without the version kubeadm reports v0.0.0 and asks for images of it.
group_ldflags() {
  local v minor flags="-s -w" p
  v=$(module_version kubeadm k8s.io/kubernetes); minor=${v#v1.}; minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}
