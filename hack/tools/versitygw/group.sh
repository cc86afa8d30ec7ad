# versitygw (github.com/versity/versitygw): a real S3 server for the tests of the bucket download
# step, its posix backend serving a temporary directory on loopback, signing checked with SigV4,
# and its standalone IAM service. Started and stopped by testkit/s3server.py. CGO off, as upstream's
# Dockerfile builds it.
BINARIES="versitygw=github.com/versity/versitygw/cmd/versitygw"

# Its `versitygw --version` prints these (upstream's Makefile sets them from git).
group_ldflags() {
  echo "-s -w -X main.Version=$(module_version versitygw github.com/versity/versitygw) -X main.Build=module"
}
