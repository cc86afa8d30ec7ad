# runc, the OCI runtime containerd's shim calls. With seccomp (cgo + libseccomp), as upstream's
# Makefile builds it: pods ask for the RuntimeDefault seccomp profile, which a runc built without
# the tag refuses. Upstream's default tags also include libpathrs, a Rust library Debian bookworm
# does not package; without it runc uses its Go implementation (pathrs-lite).
BINARIES="runc=github.com/opencontainers/runc"
CGO=1
TAGS="seccomp urfave_cli_no_docs"

group_ldflags() {
  local v; v=$(module_version runc github.com/opencontainers/runc)
  echo "-s -w -X main.version=${v#v}"
}

group_prepare() {
  # shellcheck source=/dev/null
  source "$repo/hack/lib/debs.sh"
  ensure_debs libseccomp-dev pkg-config gcc libc6-dev
}
