# kindnetd, kind's CNI daemon (ptp routes between nodes, masquerade, network policies), for the
# kind node image (hack/kind/node_image.py). Its source is a module nested in kind's repository
# (images/kindnetd, own go.mod) that the Go proxy does not serve, at any version: src/ is a
# verbatim copy of kubernetes-sigs/kind v0.31.0's images/kindnetd (commit a323333f; go.mod,
# go.sum, cmd/ and the Apache-2.0 LICENSE), and go.mod replaces the module with it.
# kind v0.33.0's own kindnetd (its image v20260820-69b56db7, commit 69b56db7) needs
# sigs.k8s.io/kube-network-policies at a pseudo-version the proxy refuses (403), so v0.31.0's,
# whose dependencies it serves. build.sh hashes src/ into the group's key.
BINARIES="kindnetd=sigs.k8s.io/kind/images/kindnetd/cmd/kindnetd"
