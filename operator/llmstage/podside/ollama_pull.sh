#!/bin/sh
# Ollama's pull step: the init container pull-model, run as `/bin/sh -c` in Ollama's own image.
#
# It pulls the model into the cache before the server starts, so the download shows in this
# container's logs (`kubectl logs POD -c pull-model`) and no probe can kill a pod that is still
# downloading. A pull needs a running server, so a private one listens on loopback for the
# duration of the pull. A model already in the cache is not pulled again: restarts do not depend
# on the registry being reachable. When the manifest and every blob it names are in the cache
# (Ollama writes the manifest last, after verifying each blob's digest: server/images.go
# PullModel), the step ends without starting a server: a restart or a new pod on a filled cache
# goes straight to the server, which checks the model again itself.
#
# Several pods on one cache (ReadWriteMany) pull one at a time: a pull writes each blob to
# BLOB-partial and BLOB-partial-N beside the final name and renames at the end
# (server/download.go); two processes on the same blob write into the same partial file and the
# second rename or cleanup fails. So the pull holds an flock on a file of the cache volume; the
# next pod then finds the model and skips the pull. OLLAMA_NOPRUNE=1 here and in the server:
# without it every server start deletes partial and unreferenced blobs (server/routes.go Serve ->
# PruneLayers), i.e. another pod's download in progress.
#
# The name clients send (status.servedModelName) can differ from what is pulled (another
# servedModelName, a Hugging Face id as model name, a private registry's host): then the pulled
# model is copied to that name (a copy writes one more manifest for the same blobs), so Ollama
# serves it under the name clients send. A copy that is already identical is left alone, so a
# serving pod never reads a half-rewritten manifest.
#
# Its settings, from the environment the template sets (names never spliced into this text):
#   LLMSTAGE_PULL, LLMSTAGE_PULL_MANIFEST    what is pulled, and its manifest under manifests/
#   LLMSTAGE_MODEL, LLMSTAGE_MODEL_MANIFEST  the name clients send and its manifest, set only
#                                            when it differs from the pulled name: copied to it
#   LLMSTAGE_PULL_INSECURE                   set (to 1): pull over plain HTTP (--insecure)
#   OLLAMA_MODELS, OLLAMA_HOST, HOME         the cache, the private server's address, its log
set -eu
manifests="$OLLAMA_MODELS/manifests"
cached() {
  [ -f "$manifests/$1" ] || return 1
  # shellcheck disable=SC2013 # one digest a line, no spaces: words are lines
  for digest in $(grep -o 'sha256:[0-9a-f]\{64\}' "$manifests/$1"); do
    [ -f "$OLLAMA_MODELS/blobs/sha256-${digest#sha256:}" ] || return 1
  done
}
if [ -n "${LLMSTAGE_MODEL:-}" ]; then
  if cached "$LLMSTAGE_PULL_MANIFEST" && cmp -s "$manifests/$LLMSTAGE_PULL_MANIFEST" "$manifests/$LLMSTAGE_MODEL_MANIFEST"; then
    echo "llmstage: $LLMSTAGE_PULL is already in the model cache $OLLAMA_MODELS as $LLMSTAGE_MODEL"
    exit 0
  fi
elif cached "$LLMSTAGE_PULL_MANIFEST"; then
  echo "llmstage: $LLMSTAGE_PULL is already in the model cache $OLLAMA_MODELS"
  exit 0
fi
ollama serve >"$HOME/pull-server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
until ollama list >/dev/null 2>&1; do
  if ! kill -0 "$server" 2>/dev/null; then cat "$HOME/pull-server.log"; exit 1; fi
  sleep 0.2
done
exec 9>>"$OLLAMA_MODELS/.llmstage-pull.lock"
if command -v flock >/dev/null 2>&1; then
  echo "llmstage: waiting for the pull lock of the model cache"
  flock 9
else
  echo "llmstage: no flock in this image; pulls of pods sharing this cache are not serialised" >&2
fi
if ollama show "$LLMSTAGE_PULL" >/dev/null 2>&1; then
  echo "llmstage: $LLMSTAGE_PULL is already in the model cache $OLLAMA_MODELS"
elif [ -n "${LLMSTAGE_PULL_INSECURE:-}" ]; then
  echo "llmstage: pulling $LLMSTAGE_PULL into $OLLAMA_MODELS"
  ollama pull --insecure "$LLMSTAGE_PULL"
else
  echo "llmstage: pulling $LLMSTAGE_PULL into $OLLAMA_MODELS"
  ollama pull "$LLMSTAGE_PULL"
fi
if [ -n "${LLMSTAGE_MODEL:-}" ]; then
  if [ -f "$manifests/$LLMSTAGE_MODEL_MANIFEST" ] && cmp -s "$manifests/$LLMSTAGE_PULL_MANIFEST" "$manifests/$LLMSTAGE_MODEL_MANIFEST"; then
    echo "llmstage: $LLMSTAGE_MODEL already names $LLMSTAGE_PULL"
  else
    echo "llmstage: ollama cp $LLMSTAGE_PULL $LLMSTAGE_MODEL (the name clients send)"
    ollama cp "$LLMSTAGE_PULL" "$LLMSTAGE_MODEL"
  fi
fi
