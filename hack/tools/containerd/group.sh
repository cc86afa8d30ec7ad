# containerd 2.x for the real node: the daemon, the runc shim and ctr (for debugging).
# Static, like upstream's release build: no cgo, so no btrfs snapshotter (overlayfs is used).
BINARIES="containerd=github.com/containerd/containerd/v2/cmd/containerd
  containerd-shim-runc-v2=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  ctr=github.com/containerd/containerd/v2/cmd/ctr"
TAGS="urfave_cli_no_docs no_btrfs osusergo netgo static_build"

group_ldflags() {
  echo "-s -w -X github.com/containerd/containerd/v2/version.Version=$(module_version containerd github.com/containerd/containerd/v2)"
}
