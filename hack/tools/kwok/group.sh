# kwok's version is a constant in its source: no version ldflags.
BINARIES="kwok=sigs.k8s.io/kwok/cmd/kwok"
