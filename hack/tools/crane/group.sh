# crane (go-containerregistry): pushes the images hack/images.py builds to the local registry
# (plain HTTP with --insecure), appends layers to scratch for binary-only images, and reads
# manifests and configs back. No daemon.
BINARIES="crane=github.com/google/go-containerregistry/cmd/crane"

# Without it, `crane version` prints the wrapper module's "(devel)".
group_ldflags() {
  local v
  v=$(module_version crane github.com/google/go-containerregistry)
  echo "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$v"
}
