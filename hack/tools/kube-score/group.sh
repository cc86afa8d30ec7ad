# kube-score (github.com/zegl/kube-score): static checks of Kubernetes objects, run by
# tests/unit/test_kube_score.py on the rendered examples and the chart (docs/security.md).
BINARIES="kube-score=github.com/zegl/kube-score/cmd/kube-score"

# Its --version prints these (goreleaser sets them upstream).
group_ldflags() {
  echo "-s -w -X main.version=$(module_version kube-score github.com/zegl/kube-score)"
}
