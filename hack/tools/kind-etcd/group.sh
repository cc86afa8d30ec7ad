# etcd for the kind node image (hack/kindcluster/images.py), at the version kubeadm v1.37.2 runs
# (cmd/kubeadm/app/constants: DefaultEtcdVersion = "3.7.0-0", the image registry.k8s.io/etcd:3.7.0-0).
# The local cluster's control plane keeps its own pin (hack/tools/etcd). etcd's version is a
# constant in its source: no version ldflags.
BINARIES="etcd=go.etcd.io/etcd/server/v3"
# Linked as .tools/kind-etcd, not into .tools/bin, where `etcd` is the control plane's.
LINK_DIR=kind-etcd
