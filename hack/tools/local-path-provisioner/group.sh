# Rancher's local-path-provisioner for the kind node image (hack/kind/node_image.py): kind's default
# StorageClass `standard`. kind v0.33.0 names v0.0.34 (images/local-path-provisioner/Makefile);
# the Go proxy this machine uses refuses that version (403), so v0.0.30, the newest it serves.
BINARIES="local-path-provisioner=github.com/rancher/local-path-provisioner"

# As upstream's scripts/build: main.VERSION (without it the binary reports 0.0.1).
group_ldflags() {
  echo "-s -w -X main.VERSION=$(module_version local-path-provisioner github.com/rancher/local-path-provisioner)"
}
