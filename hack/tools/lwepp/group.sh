# The Gateway API Inference Extension's endpoint picker of its pinned release: the lightweight
# reference picker (cmd/lwepp, round robin over an InferencePool's ready pods; the inference-aware
# one moved to llm-d in v1.6). tests/integration/test_routing.py runs it against a rendered pool.
BINARIES="lwepp=sigs.k8s.io/gateway-api-inference-extension/cmd/lwepp"
