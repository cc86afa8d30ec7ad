# The llmstage operator image: `llmstage run` as a non-root user, fit for readOnlyRootFilesystem.
#
#   docker build -t REGISTRY/llmstage:0.1.0 .   (REGISTRY: yours; nothing is published yet)
#
# Dependencies are installed from requirements/runtime.txt, the hashed lock that the tests' venv
# installs too (`make lock` makes it): only wheels whose sha256 the lock lists, no resolution.
# Then the package itself without dependencies, so the image holds exactly that set; `pip check`
# fails the build if the set is incomplete.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/llmstage
COPY requirements/runtime.txt /src/requirements/runtime.txt
RUN /opt/llmstage/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /src/requirements/runtime.txt
COPY pyproject.toml README.md /src/
COPY operator /src/operator
# Not editable: the package and its data (templates, catalog) are copied into site-packages,
# compiled to .pyc here because nothing can be written at run time.
RUN /opt/llmstage/bin/pip install --no-deps /src \
    && /opt/llmstage/bin/pip check \
    && /opt/llmstage/bin/python -m compileall -q /opt/llmstage/lib \
    && /opt/llmstage/bin/llmstage --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="llmstage" \
      org.opencontainers.image.description="Kubernetes operator: Ollama in dev and staging, GPU-scheduled vLLM in production" \
      org.opencontainers.image.licenses="Apache-2.0"
# No org.opencontainers.image.source yet: the project has no public repository address.
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
