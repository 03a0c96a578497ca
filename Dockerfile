# syntax=docker/dockerfile:1
# Multi-stage build: `train` (profy with torch) and a slim, torch-free `guardrails`.
# The base is a build argument: there is no registry to pull from on the build machines,
# so a local base can be supplied (see containers/README.md).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY profy ./profy
COPY guardrails ./guardrails
RUN python -m venv /opt/train && /opt/train/bin/pip install ".[train]" \
 && python -m venv /opt/guardrails && /opt/guardrails/bin/pip install ".[guardrails]"

FROM ${BASE_IMAGE} AS train
RUN useradd --create-home --uid 10001 profy
COPY --from=build /opt/train /opt/train
ENV PATH=/opt/train/bin:$PATH
USER profy
WORKDIR /work
VOLUME ["/data", "/runs"]
ENTRYPOINT ["profy"]

FROM ${BASE_IMAGE} AS guardrails
RUN useradd --create-home --uid 10001 guardrails
COPY --from=build /opt/guardrails /opt/guardrails
ENV PATH=/opt/guardrails/bin:$PATH
USER guardrails
WORKDIR /work
VOLUME ["/runs", "/reports"]
ENTRYPOINT ["guardrails"]
