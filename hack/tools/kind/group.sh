# kind (Kubernetes in Docker) for `make e2e-kind` (hack/kind/): creates the e2e clusters and, on a
# machine without a public registry, builds their node image from the base image hack/kind/ makes.
# Its version is a constant in its source (pkg/cmd/kind/version): no version ldflags.
BINARIES="kind=sigs.k8s.io/kind"
