# kube-router (github.com/cloudnativelabs/kube-router/v2): on the real node only its
# network-policy controller runs (--run-firewall, hack/realnode), so that the NetworkPolicies the
# operator renders are enforced with iptables and ipsets. Static, as upstream's Makefile builds
# it (CGO_ENABLED=0). At run time it calls the host's iptables, iptables-save/-restore and ipset.
BINARIES="kube-router=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"

# Its --version prints these (upstream's Makefile sets them to the git commit and build date);
# the module's own release time stands in for the date, so the build does not depend on the day.
group_ldflags() {
  local m=github.com/cloudnativelabs/kube-router/v2
  echo "-s -w -X $m/pkg/version.Version=$(module_version kube-router $m)" \
    "-X $m/pkg/version.BuildDate=$(cd "$here/kube-router" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' $m)"
}
