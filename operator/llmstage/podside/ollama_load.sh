#!/bin/sh
# The command of Ollama's server container, run as `/bin/sh -c` in Ollama's own image: the
# server, plus a loader that holds the model load.
#
# Ollama loads a model on the first request for it and aborts the load when that request's client
# goes away (the load runs under the request's context: server/routes.go scheduleRunner,
# server/sched.go). A probe that loads would be killed at its timeout and restart a long load from
# zero forever. So the loader, which no timeout kills, sends the load request; the startup probe
# only checks the marker the loader writes once the model is in memory, and the load budget is the
# startup probe's failureThreshold x periodSeconds. The loader asks Ollama for the model's
# capabilities: an embedding model needs input text (a run refuses an empty prompt for it,
# cmd/cmd.go RunHandler), a generative one loads on an empty prompt and returns
# (server/routes.go GenerateHandler, DoneReason "load"). `exec` makes the server the container's
# main process, which gets SIGTERM; `$$` is its PID. A model that cannot load ends the server
# with SIGHUP, which Ollama does not handle (Go then exits with a non-zero status; SIGTERM would
# be a clean shutdown, status 0, shown as Completed), so the container restarts with the
# kubelet's back-off and its log says why.
#
# Its settings, from the environment the template sets:
#   LLMSTAGE_MODEL   the name clients send: loaded under it
#   LLMSTAGE_LOADED  the marker file the startup probe tests, written once the model is loaded
#   HOME             where the load's error output goes (load.log)
rm -f "$LLMSTAGE_LOADED"
(
  until ollama list >/dev/null 2>&1; do sleep 0.2; done
  if ! info=$(ollama show "$LLMSTAGE_MODEL"); then
    echo "llmstage: $LLMSTAGE_MODEL is not in the model cache; stopping" >&2
    kill -HUP $$
    exit 1
  fi
  if printf '%s\n' "$info" | awk '$1 == "Capabilities" {c = 1; next} c && NF == 0 {c = 0} c && $1 == "embedding" {e = 1} END {exit !e}'; then
    prompt="llmstage load check"
  else
    prompt=""
  fi
  echo "llmstage: loading $LLMSTAGE_MODEL"
  if ollama run "$LLMSTAGE_MODEL" "$prompt" >/dev/null 2>"$HOME/load.log"; then
    echo "llmstage: $LLMSTAGE_MODEL is loaded"
    : >"$LLMSTAGE_LOADED"
  else
    cat "$HOME/load.log" >&2
    echo "llmstage: loading $LLMSTAGE_MODEL failed; stopping" >&2
    kill -HUP $$
  fi
) &
exec ollama serve
