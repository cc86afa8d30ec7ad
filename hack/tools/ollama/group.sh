# Ollama for the real node's dev runtime, CPU only, at the version the operator renders
# (DEFAULT_OLLAMA_IMAGE in operator/llmstage/resolve/ollama.py); hack/images.py puts it in the
# ollama/ollama image and uses it on the host to import and push the model.
#
# Two parts, as upstream's Dockerfile at v0.12.10 builds them (stages `build` and `cpu`):
# - the Go binary (cgo). It links a ggml CPU backend in (ml/backend/ggml/ggml/src/ggml-cpu,
#   GGML_USE_CPU), compiled for the baseline x86-64 ISA: it serves on its own, but slowly.
# - lib/ollama/libggml-base.so and libggml-cpu-<variant>.so (x64, sse42, sandybridge, haswell,
#   skylakex, icelake, alderlake), built by cmake from the same module (GGML_CPU_ALL_VARIANTS,
#   GGML_BACKEND_DL); at start ollama loads the variant that scores best on the CPU and prefers
#   it over the linked-in one. Measured here on the 135M test model, generating 128 tokens:
#   25 tok/s with the binary alone, 82 tok/s with the libraries (icelake variant, AVX-512),
#   prompt evaluation 0.47 s vs 0.02-0.06 s.
# The libraries go to <group dir>/build/lib/ollama, which the binary finds next to itself (its
# development path; ml/path.go); hack/images.py installs them as /usr/lib/ollama in the image,
# upstream's path.
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
  ensure_debs gcc g++ cmake nlohmann-json3-dev libstb-dev
  malgo=$(cd "$here/ollama" && go mod download github.com/gen2brain/malgo \
          && go list -m -f '{{.Dir}}' github.com/gen2brain/malgo)
  mkdir -p "$inc/miniaudio"
  cp -f "$malgo/miniaudio.h" "$inc/miniaudio/miniaudio.h"
  export CGO_CPPFLAGS="-I$inc"
}

# Upstream's `cmake --preset CPU && cmake --build && cmake --install --component CPU --strip`,
# out of the (read-only) module directory.
group_post() {
  local out=$1 src
  src=$(cd "$here/ollama" && go list -m -f '{{.Dir}}' github.com/ollama/ollama)
  cmake -S "$src" -B "$out/.cmake" -DCMAKE_BUILD_TYPE=Release -DGGML_CCACHE=OFF \
        -DCMAKE_INSTALL_PREFIX="$out/build" >"$out/.cmake.log" 2>&1 \
    && cmake --build "$out/.cmake" --parallel "$(nproc)" >>"$out/.cmake.log" 2>&1 \
    && cmake --install "$out/.cmake" --component CPU --strip >>"$out/.cmake.log" 2>&1 \
    || { tail -30 "$out/.cmake.log" >&2; echo "error: cmake build of ollama's CPU backends failed" >&2; return 1; }
  rm -rf "$out/.cmake"
  ls "$out"/build/lib/ollama/libggml-cpu-*.so >/dev/null
}
