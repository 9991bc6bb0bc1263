# syntax=docker/dockerfile:1.7
# The operator image: `kaito operator` (controller + admission webhook). Base profile only: no
# torch, no transformers — a few hundred MB instead of several GB, and nothing the operator
# does not run. Build from the repository root:
#   docker build -f docker/operator.Dockerfile -t kaito-operator:0.1.0 .
# Versions come from constraints/ci.txt (the same pins CI tests with), minus the ML stack.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY constraints/ci.txt constraints/ci.txt
# The operator never imports the ML stack: drop those pins so nothing can pull them in.
RUN grep -v -i -E '^(torch|transformers|peft|accelerate|bitsandbytes|datasets|vllm)==' constraints/ci.txt \
        > /tmp/operator-constraints.txt \
 && python -m venv /opt/kaito
COPY pyproject.toml README.md ./
COPY src/ src/
RUN /opt/kaito/bin/pip install -c /tmp/operator-constraints.txt . \
 && /opt/kaito/bin/pip check \
 && /opt/kaito/bin/python -c "import sys, kaito.cli.main, kaito.webhook.server, kaito.operator.leader_election; \
assert not {'torch', 'transformers', 'peft'} & set(sys.modules), 'operator imports the ML stack'"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kaito-operator" \
      org.opencontainers.image.description="KAITO in Python: Workspace operator and admission webhook" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/kaito /opt/kaito
# HOME and caches under /tmp: the chart mounts an emptyDir there and keeps the root read-only.
ENV PATH=/opt/kaito/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 8080 8081 9443
ENTRYPOINT ["kaito"]
CMD ["operator"]
