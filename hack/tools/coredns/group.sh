# CoreDNS for cluster DNS on the real node, at the version kubeadm v1.37.2 installs
# (k8s.io/kubernetes cmd/kubeadm/app/constants CoreDNSVersion = "v1.14.6").
BINARIES="coredns=github.com/coredns/coredns"
