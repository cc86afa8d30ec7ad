#!/usr/bin/env bash
# Build the test-bed binaries from the Go modules pinned in hack/tools/<group>/go.mod.
#
# Binaries live in a per-machine cache outside the clone, one directory per group keyed by
# the hash of its go.mod, go.sum, build flags and Go version, so a fresh clone on the same
# machine reuses them and a changed pin rebuilds only its group. .tools/bin/<name> links into it.
#
#   hack/tools/build.sh            build what is missing, link .tools/bin
#   hack/tools/build.sh --print    print the cache directory of each group
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LLMSTAGE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmstage/tools}
bin_link_dir="$repo/.tools/bin"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -mod=mod"
command -v go >/dev/null || { echo "error: Go is not installed (need Go >= 1.26)" >&2; exit 1; }

# group -> "binary=package ..." (package relative to nothing: full import path)
declare -A packages=(
  [kubernetes]="kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kubectl=k8s.io/kubernetes/cmd/kubectl kubelet=k8s.io/kubernetes/cmd/kubelet kube-proxy=k8s.io/kubernetes/cmd/kube-proxy"
  [etcd]="etcd=go.etcd.io/etcd/server/v3"
  [kwok]="kwok=sigs.k8s.io/kwok/cmd/kwok"
  [helm]="helm=helm.sh/helm/v3/cmd/helm"
)
groups=(etcd kwok helm kubernetes)

module_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }

# Version ldflags: without them the servers report v0.0.0 and Helm's kubeVersion checks break.
ldflags_for() {
  local group=$1 v minor flags="-s -w"
  case $group in
    kubernetes)
      v=$(module_version kubernetes k8s.io/kubernetes); minor=${v#v1.}; minor=${minor%%.*}
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
      done ;;
    etcd) ;;  # etcd's version is a constant in its source
    kwok) ;;  # kwok's version is a constant in its source
    helm)
      v=$(module_version helm helm.sh/helm/v3)
      minor=$(module_version helm k8s.io/client-go); minor=${minor#v0.}; minor=${minor%%.*}
      flags+=" -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" ;;
  esac
  echo "$flags"
}

# Bump when the way binaries are built changes in a way the inputs below do not show.
RECIPE=1

# The cache key covers what decides the binaries: the pins, the flags and the Go version.
group_dir() {
  local key
  key=$( { cat "$here/$1/go.mod" "$here/$1/go.sum"; echo "$RECIPE $GOFLAGS $CGO_ENABLED"; ldflags_for "$1"; \
           go env GOVERSION; } | sha256sum | cut -c1-16)
  echo "$cache/$1-$key"
}

build_group() {
  local group=$1 dir tmp start pkgs=() spec out
  dir=$(group_dir "$group")
  if [ -f "$dir/.complete" ]; then return 0; fi
  tmp="$dir.tmp.$$"; rm -rf "$tmp"; mkdir -p "$tmp"
  for spec in ${packages[$group]}; do pkgs+=("${spec#*=}"); done
  # One package: name the binary explicitly (etcd's package path ends in "server").
  # Several: build them in one go so shared packages compile once, named by their last element.
  if [ ${#pkgs[@]} -eq 1 ]; then out="$tmp/${packages[$group]%%=*}"; else out="$tmp/"; fi
  echo ">> building $group (${pkgs[*]}) into $dir"
  start=$(date +%s)
  (cd "$here/$group" && /usr/bin/time -f "%e s wall, %M KB peak RSS" -o "$tmp/.build-stats" \
     go build -ldflags "$(ldflags_for "$group")" -o "$out" "${pkgs[@]}")
  echo ">> $group built in $(( $(date +%s) - start )) s ($(cat "$tmp/.build-stats"))"
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
}

if [ "${1:-}" = "--print" ]; then
  for g in "${groups[@]}"; do echo "$g $(group_dir "$g")"; done; exit 0
fi

mkdir -p "$cache" "$bin_link_dir"
for g in "${groups[@]}"; do
  build_group "$g"
  for spec in ${packages[$g]}; do ln -sfn "$(group_dir "$g")/${spec%%=*}" "$bin_link_dir/${spec%%=*}"; done
done
echo ">> tools ready in $bin_link_dir"
