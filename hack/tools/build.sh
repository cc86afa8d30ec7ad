#!/usr/bin/env bash
# Build the test-bed binaries from the Go modules pinned in hack/tools/<group>/go.mod.
#
# Each group is a directory: go.mod/go.sum pin the module, group.sh says what to build
# (BINARIES="name=package ..."), how (CGO, TAGS, group_ldflags), what the build needs first
# (group_prepare: Debian packages, headers), what else goes beside the binaries (group_post DIR:
# e.g. shared libraries built from the same module) and, with LINK_DIR=NAME, that the group's
# directory is linked as .tools/NAME instead of each binary into .tools/bin (CNI plugins).
# Binaries live in a per-machine cache outside the clone, one directory per group keyed by the
# hash of the group's files, the recipe and the Go version, so a fresh clone on the same machine
# reuses them and a changed pin rebuilds only its group. .tools/bin/<name> links into it.
#
#   hack/tools/build.sh                 build what is missing, link .tools/bin
#   hack/tools/build.sh GROUP...        only these groups
#   hack/tools/build.sh --print         print the cache directory of each group
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LLMSTAGE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmstage/tools}
bin_link_dir="$repo/.tools/bin"

# -mod=readonly: go.mod and go.sum are the whole truth; a build that would need to add or change a
# requirement fails instead of resolving it against what the proxy serves today.
export GOTOOLCHAIN=local GOFLAGS="-trimpath -mod=readonly"
command -v go >/dev/null || { echo "error: Go is not installed (need Go >= 1.26)" >&2; exit 1; }

# Groups in build order: the default set, then the real node's (built when asked for by name
# or with --all; hack/cluster.py asks for them where the machine can run containers).
default_groups=(etcd kwok helm kubernetes lws lwepp kube-score versitygw)
all_groups=("${default_groups[@]}")
for d in "$here"/*/; do
  g=$(basename "$d")
  [[ " ${all_groups[*]} " == *" $g "* ]] || all_groups+=("$g")
done

# Bump when the way binaries are built changes in a way the inputs below do not show.
RECIPE=2

module_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }

# Load a group's definition into this shell (call in a subshell).
load_group() {
  BINARIES="" CGO=0 TAGS="" LINK_DIR=""
  group_ldflags() { echo "-s -w"; }
  group_prepare() { :; }
  group_post() { :; }
  # shellcheck source=/dev/null
  source "$here/$1/group.sh"
}

group_dir() {
  local key
  key=$( (
    load_group "$1"
    cat "$here/$1"/go.mod "$here/$1"/go.sum "$here/$1"/group.sh
    # A group that carries its own source (a module the Go proxy does not serve) keeps it in src/.
    if [ -d "$here/$1/src" ]; then (cd "$here/$1" && find src -type f -print0 | sort -z | xargs -0 sha256sum); fi
    echo "$RECIPE $GOFLAGS $CGO $TAGS"
    group_ldflags
    go env GOVERSION
  ) | sha256sum | cut -c1-16)
  echo "$cache/$1-$key"
}

build_group() (
  local group=$1 dir tmp start pkgs=() spec out
  dir=$(group_dir "$group")
  if [ -f "$dir/.complete" ]; then exit 0; fi
  load_group "$group"
  group_prepare
  tmp="$dir.tmp.$$"; rm -rf "$tmp"; mkdir -p "$tmp"
  for spec in $BINARIES; do pkgs+=("${spec#*=}"); done
  # One package: name the binary explicitly (etcd's package path ends in "server").
  # Several: build them in one go so shared packages compile once, named by their last element.
  if [ ${#pkgs[@]} -eq 1 ]; then out="$tmp/${BINARIES%%=*}"; else out="$tmp/"; fi
  echo ">> building $group (${pkgs[*]}) into $dir"
  start=$(date +%s)
  (cd "$here/$group" && CGO_ENABLED=$CGO /usr/bin/time -f "%e s wall, %M KB peak RSS" -o "$tmp/.build-stats" \
     go build -tags "$TAGS" -ldflags "$(group_ldflags)" -o "$out" "${pkgs[@]}")
  group_post "$tmp"
  echo ">> $group built in $(( $(date +%s) - start )) s ($(cat "$tmp/.build-stats"))"
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
)

link_group() (
  local dir spec
  dir=$(group_dir "$1")
  load_group "$1"
  if [ -n "$LINK_DIR" ]; then ln -sfn "$dir" "$repo/.tools/$LINK_DIR"; exit 0; fi
  for spec in $BINARIES; do ln -sfn "$dir/${spec%%=*}" "$bin_link_dir/${spec%%=*}"; done
)

groups=("${default_groups[@]}")
case "${1:-}" in
  --print) for g in "${all_groups[@]}"; do echo "$g $(group_dir "$g")"; done; exit 0 ;;
  --all) groups=("${all_groups[@]}") ;;
  "") ;;
  *) groups=("$@") ;;
esac

mkdir -p "$cache" "$bin_link_dir"
for g in "${groups[@]}"; do
  [ -f "$here/$g/group.sh" ] || { echo "error: no tool group $g (hack/tools/$g/group.sh)" >&2; exit 1; }
  build_group "$g"
  link_group "$g"
done
echo ">> tools ready in $bin_link_dir"
