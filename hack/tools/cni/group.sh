# The CNI plugins the real node's network config uses: a bridge with host-local IPAM, loopback,
# and portmap (hostPort); and ptp, which kindnetd's config uses on kind nodes (the kind base image
# of hack/kind/ carries host-local, loopback, ptp and portmap, as kind's images/base/Dockerfile).
# One binary each, as CNI looks them up by name in its bin dir.
BINARIES="bridge=github.com/containernetworking/plugins/plugins/main/bridge
  loopback=github.com/containernetworking/plugins/plugins/main/loopback
  host-local=github.com/containernetworking/plugins/plugins/ipam/host-local
  portmap=github.com/containernetworking/plugins/plugins/meta/portmap
  ptp=github.com/containernetworking/plugins/plugins/main/ptp"
# Linked as .tools/cni (the node's CNI bin dir), not into .tools/bin: `bridge` is no command.
LINK_DIR=cni
