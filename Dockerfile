# The llmstage operator image: `llmstage run` as a non-root user, fit for readOnlyRootFilesystem.
#
#   docker build -t REGISTRY/llmstage:0.1.0 .   (REGISTRY: yours; nothing is published yet)
#
# Dependencies are installed from requirements/runtime.txt, the hashed lock that the tests' venv
# installs too (`make lock` makes it): only wheels whose sha256 the lock lists, no resolution;
# google-auth likewise from requirements/gcs.txt, into /opt/llmstage/fetch-gcs.
# Then the package itself without dependencies, so the image holds exactly that set; `pip check`
# fails the build if the set is incomplete.

# By digest (the multi-architecture index of python:3.11.14-slim-bookworm), so a re-pushed tag
# cannot change what is built. hack/images.py builds FROM a local Debian bookworm base instead.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/llmstage
COPY requirements/runtime.txt /src/requirements/runtime.txt
RUN /opt/llmstage/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /src/requirements/runtime.txt
# google-auth for the gcs download step (python -m llmstage.fetch), from its own hashed lock, outside
# site-packages: only llmstage.fetch.gcs puts /opt/llmstage/fetch-gcs on sys.path, so google.auth
# and the cryptography it imports stay out of the operator's memory (requirements/gcs.in).
# requests and cryptography are the venv's.
COPY requirements/gcs.txt /src/requirements/gcs.txt
RUN /opt/llmstage/bin/pip install --require-hashes --no-deps --only-binary=:all: --target /opt/llmstage/fetch-gcs -r /src/requirements/gcs.txt
COPY pyproject.toml README.md /src/
COPY operator /src/operator
# Not editable: the package and its data (templates, catalog) are copied into site-packages,
# compiled to .pyc here because nothing can be written at run time. The gcs step must import
# google-auth (with the venv's requests), and the operator's modules must not; the kubernetes client
# is not installed at all (llmstage.kubeapi does its part).
RUN /opt/llmstage/bin/pip install --no-deps /src \
    && /opt/llmstage/bin/pip check \
    && /opt/llmstage/bin/python -c 'import llmstage.fetch.gcs' \
    && /opt/llmstage/bin/python -c 'import sys, llmstage.controller.handlers, llmstage.cli; assert not {"google.auth", "cryptography", "kubernetes"} & set(sys.modules), "the operator imported google.auth or the kubernetes client"' \
    && ! /opt/llmstage/bin/python -c 'import kubernetes' 2>/dev/null \
    && /opt/llmstage/bin/python -m compileall -q /opt/llmstage/lib /opt/llmstage/fetch-gcs \
    && /opt/llmstage/bin/llmstage --version
# Nothing installs packages at run time: pip and setuptools (which venv bundles) leave the venv.
RUN /opt/llmstage/bin/python -m pip uninstall --quiet --yes pip setuptools \
    && ! ls /opt/llmstage/lib/python3*/site-packages | grep -E '^(pip|setuptools|_distutils_hack|pkg_resources)\b'

FROM ${PYTHON_IMAGE}
# Where the image comes from: `make image` passes the package version, the git commit and the
# repository's address (`git remote get-url origin`; none yet: the project is not published).
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="llmstage" \
      org.opencontainers.image.description="Kubernetes operator: Ollama in dev and staging, GPU-scheduled vLLM in production" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
# Nothing installs packages at run time: the base's pip, setuptools and wheel go (python:*-slim
# installs them in /usr/local), and so do the copies ensurepip and Debian's python3-venv keep as
# wheels. The last line fails the build if any is left.
RUN set -e; \
    for py in /usr/local/bin/python3 /usr/bin/python3; do \
      if [ -x "$py" ] && "$py" -m pip --version >/dev/null 2>&1; then "$py" -m pip uninstall --quiet --yes pip setuptools wheel; fi; \
    done; \
    rm -f /usr/local/lib/python3*/ensurepip/_bundled/*.whl /usr/lib/python3*/ensurepip/_bundled/*.whl \
          /usr/share/python-wheels/pip-*.whl /usr/share/python-wheels/setuptools-*.whl /usr/share/python-wheels/wheel-*.whl; \
    ! find / -xdev \( -name 'pip-*' -o -name 'setuptools-*' -o -name 'pip' -o -name 'setuptools' \) -print | grep .
# No writes to the image at run time: no bytecode caches, logs on stdout, HOME and temp files
# on /tmp (an emptyDir in the chart).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PATH=/opt/llmstage/bin:$PATH
COPY --from=build /opt/llmstage /opt/llmstage
# Numeric, so runAsNonRoot can verify it without a passwd entry (the chart runs as 65532 too).
USER 65532:65532
# 8080: kopf liveness (/healthz); 9090: Prometheus metrics.
EXPOSE 8080 9090
ENTRYPOINT ["llmstage", "run"]
