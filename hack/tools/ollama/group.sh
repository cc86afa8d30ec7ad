# Ollama for the real node's dev runtime, CPU only, at the version the operator renders
# (DEFAULT_OLLAMA_IMAGE in operator/llmstage/resolve.py); hack/images.py puts it in the
# ollama/ollama image and uses it on the host to import and push the model.
#
# The Go build alone carries the ggml CPU backend: ml/backend/ggml/ggml/src/ggml-cpu is a cgo
# package compiled into the binary (GGML_USE_CPU), so `ollama serve` runs models with no
# lib/ollama/*.so. It is compiled for the baseline x86-64 ISA (no -march): portable, but without
# the AVX2/AVX-512 kernels that upstream's release gets from its cmake-built
# lib/ollama/libggml-cpu-<variant>.so (Dockerfile stage `cpu`, loaded at run time by score).
# Good enough for the 135M test model (see hack/images.py for the figures measured here).
BINARIES="ollama=github.com/ollama/ollama"
CGO=1

# As upstream's release workflow (scripts/env.sh): version, and gin in release mode.
group_ldflags() {
  local v
  v=$(module_version ollama github.com/ollama/ollama)
  echo "-s -w -X github.com/ollama/ollama/version.Version=${v#v} -X github.com/ollama/ollama/server.mode=release"
}

# The module zip leaves out llama.cpp's vendor/ directory (Go module zips omit vendor/), so
# three headers come from elsewhere, closest to the versions upstream vendors at v0.12.10:
#   nlohmann/json.hpp, json_fwd.hpp   Debian nlohmann-json3-dev 3.11.2 (upstream: 3.12.0)
#   stb/stb_image.h                   Debian libstb-dev (upstream: v2.30)
#   miniaudio/miniaudio.h             Go module github.com/gen2brain/malgo v0.11.24, pinned in
#                                     go.mod/go.sum through tools.go: miniaudio v0.11.23, the
#                                     release before upstream's v0.11.24 development snapshot
#                                     (differences: MSVC/ARM atomics, comments). Debian bookworm
#                                     packages no miniaudio.
# llama.cpp includes it as "miniaudio/miniaudio.h", malgo keeps it at its root: a copy in a
# fixed directory of the tool cache (fixed so Go's build cache keys stay stable).
group_prepare() {
  local malgo inc="$cache/ollama-include"
  # shellcheck source=/dev/null
  source "$repo/hack/lib/debs.sh"
  ensure_debs gcc g++ nlohmann-json3-dev libstb-dev
  malgo=$(cd "$here/ollama" && go mod download github.com/gen2brain/malgo \
          && go list -m -f '{{.Dir}}' github.com/gen2brain/malgo)
  mkdir -p "$inc/miniaudio"
  cp -f "$malgo/miniaudio.h" "$inc/miniaudio/miniaudio.h"
  export CGO_CPPFLAGS="-I$inc"
}
