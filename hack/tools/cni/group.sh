# The CNI plugins the real node's network config uses: a bridge with host-local IPAM, loopback,
# and portmap (hostPort). One binary each, as CNI looks them up by name in its bin dir.
BINARIES="bridge=github.com/containernetworking/plugins/plugins/main/bridge
  loopback=github.com/containernetworking/plugins/plugins/main/loopback
  host-local=github.com/containernetworking/plugins/plugins/ipam/host-local
  portmap=github.com/containernetworking/plugins/plugins/meta/portmap"
# Linked as .tools/cni (the node's CNI bin dir), not into .tools/bin: `bridge` is no command.
LINK_DIR=cni
