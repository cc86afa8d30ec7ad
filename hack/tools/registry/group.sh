# The OCI registry (CNCF distribution) that lives with the local cluster and serves the images
# and the model built here; configured by hack/cluster/registry.yml. CGO off, as upstream's
# Dockerfile builds it.
BINARIES="registry=github.com/distribution/distribution/v3/cmd/registry"

# Without the version, `registry --version` says v3.1.2+unknown (the source's placeholder).
group_ldflags() {
  local v pkg=github.com/distribution/distribution/v3
  v=$(module_version registry $pkg)
  echo "-s -w -X $pkg/version.version=$v -X $pkg/version.mainpkg=$pkg"
}
