# syntax=docker/dockerfile:1.7
# The runtime image: what Workspace and RAGEngine pods run — the model server (`python -m kaito.runtime.inference`),
# the trainer (`python -m kaito.runtime.tuning`) and the RAG service (`python -m kaito.runtime.rag`), on NVIDIA GPUs.
#   docker build -f docker/runtime.Dockerfile -t kaito-runtime:0.1.0 .
#   docker build -f docker/runtime.Dockerfile --build-arg VLLM_VERSION=<version> -t kaito-runtime-vllm:0.1.0 .
# torch comes as PyTorch's CUDA wheel, which carries its CUDA libraries; the host supplies only the
# driver (NVIDIA container toolkit). Everything else is pinned by constraints/ci.txt, the versions
# CI tests with. vLLM pins its own torch build, so with VLLM_VERSION set, vLLM chooses torch.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE}
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG VLLM_VERSION=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/src
COPY constraints/ci.txt constraints/ci.txt
# torch (and, for vLLM images, whatever vLLM pins) is installed first and then left alone.
RUN grep -v -i -E '^(torch|vllm)==' constraints/ci.txt > /tmp/runtime-constraints.txt \
 && python -m venv /opt/kaito \
 && if [ -n "$VLLM_VERSION" ]; then \
        /opt/kaito/bin/pip install "vllm==${VLLM_VERSION}"; \
    else \
        /opt/kaito/bin/pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"; \
    fi
COPY pyproject.toml README.md ./
COPY src/ src/
RUN /opt/kaito/bin/pip install -c /tmp/runtime-constraints.txt ".[runtime,qlora,rag]" \
 && /opt/kaito/bin/python -c "import kaito.runtime.inference, kaito.runtime.tuning, kaito.runtime.rag.server, faiss, qdrant_client, peft, bitsandbytes" \
 && rm -rf /opt/src

RUN useradd --uid 1000 --create-home --home-dir /workspace --shell /usr/sbin/nologin kaito
ENV PATH=/opt/kaito/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/workspace/.cache/huggingface
WORKDIR /workspace
USER 1000:1000
EXPOSE 5000
ENTRYPOINT ["python", "-m", "kaito.runtime.inference"]
