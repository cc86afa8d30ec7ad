# etcd's version is a constant in its source: no version ldflags.
BINARIES="etcd=go.etcd.io/etcd/server/v3"
