BINARIES="helm=helm.sh/helm/v3/cmd/helm"

# Without the version, Helm's kubeVersion checks see v0.0.0.
group_ldflags() {
  local v minor
  v=$(module_version helm helm.sh/helm/v3)
  minor=$(module_version helm k8s.io/client-go); minor=${minor#v0.}; minor=${minor%%.*}
  echo "-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
}
