# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl for the control plane;
# kubelet and kube-proxy for the real node. One `go build` so shared packages compile once.
BINARIES="kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler
  kubectl=k8s.io/kubernetes/cmd/kubectl
  kubelet=k8s.io/kubernetes/cmd/kubelet
  kube-proxy=k8s.io/kubernetes/cmd/kube-proxy"

# Version ldflags: without them the servers report v0.0.0 and Helm's kubeVersion checks break.
group_ldflags() {
  local v minor flags="-s -w" p
  v=$(module_version kubernetes k8s.io/kubernetes); minor=${v#v1.}; minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}
