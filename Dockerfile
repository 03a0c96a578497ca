# syntax=docker/dockerfile:1
#
# Profy images from one Dockerfile (build with --target):
#   build-*           builder stages: a venv per image, filled by pip (never shipped)
#   train             profy + torch/torchaudio (extras train,export)         ENTRYPOINT profy
#   guardrails        slim, torch-free gate (extra guardrails)               ENTRYPOINT guardrails
#   guardrails-spark  guardrails + a JRE + pyspark, for --engine spark audits
#
#   docker build --target guardrails -t profy/guardrails .
#   docker run --rm -v "$PWD/runs:/runs:ro" -v "$PWD/reports:/reports" profy/guardrails \
#       ci /runs/experiment_X --report-dir /reports --junit /reports/junit.xml
#
# The base is a build argument: the default is the public Python slim image (pin it by
# digest in your registry-backed CI: --build-arg BASE_IMAGE=python:3.11.13-slim-bookworm@sha256:...).
# Any Debian-like base with `python3 -m venv` works; the podman check here builds one from
# debootstrap (tests/containers/image_test.sh, `make image-test`). Venvs live in /opt/venv
# and are copied between stages of the same base, so their interpreter symlinks stay valid.
#
# Package versions: pyproject.toml pins torch exactly; everything else is held by
# containers/constraints.txt (pip freeze of the tested .venv, `make constraints`).
#
# Behind a TLS-intercepting proxy, mount its CA for the build only and name it:
#   podman build -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/host-ca.crt:ro \
#                --build-arg PIP_CERT=/etc/ssl/certs/host-ca.crt ...
# The certificate is never copied into a layer, and no pip config is written (podman 4.3
# leaves an empty mount-point file behind; tests/containers/image_test.sh checks it is empty).
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------- builders
FROM ${BASE_IMAGE} AS build-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Dependencies first (cached until pyproject.toml or the constraints change), code second.
# (README.md, which pyproject names, comes with the code: editing it re-runs only that step.)
COPY containers/constraints.txt containers/venv-install.sh pyproject.toml ./

# ARGs do not cross stages, so each builder declares the two it reads.
FROM build-base AS build-guardrails
ARG PIP_CERT
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN sh venv-install.sh deps /opt/venv "guardrails"
COPY README.md ./
COPY profy ./profy
COPY guardrails ./guardrails
RUN sh venv-install.sh project /opt/venv

FROM build-base AS build-spark
ARG PIP_CERT
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN sh venv-install.sh deps /opt/venv "guardrails,spark"
COPY README.md ./
COPY profy ./profy
COPY guardrails ./guardrails
RUN sh venv-install.sh project /opt/venv

FROM build-base AS build-train
ARG PIP_CERT
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN sh venv-install.sh deps /opt/venv "train,export"
COPY README.md ./
COPY profy ./profy
COPY guardrails ./guardrails
RUN sh venv-install.sh project /opt/venv

# ---------------------------------------------------------------- runtime base
# No compiler, no pip, no caches: a user, the mount points, and the venv on PATH.
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/cache/xdg \
    MPLCONFIGDIR=/cache/matplotlib
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin profy \
 && mkdir -p /data /runs /cache /reports /work \
 && chown profy:profy /runs /cache /reports /work
WORKDIR /work

# ---------------------------------------------------------------- images
FROM runtime AS guardrails
LABEL org.opencontainers.image.title="profy-guardrails" \
      org.opencontainers.image.description="Torch-free release gates for Profy run folders"
COPY --from=build-guardrails /opt/venv /opt/venv
USER 10001:10001
VOLUME ["/runs", "/reports", "/cache"]
# Exec form: guardrails is PID 1, so its exit code (0 pass, 1 fail, 2 bad input) is the
# container's, and SIGTERM reaches it.
ENTRYPOINT ["guardrails"]
CMD ["--help"]

FROM runtime AS guardrails-spark
LABEL org.opencontainers.image.title="profy-guardrails-spark"
# The JRE pyspark needs; versions follow the base's Debian release (security updates).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends openjdk-17-jre-headless \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
COPY --from=build-spark /opt/venv /opt/venv
USER 10001:10001
VOLUME ["/runs", "/reports", "/cache"]
ENTRYPOINT ["guardrails"]
CMD ["--help"]

FROM runtime AS train
LABEL org.opencontainers.image.title="profy-train"
COPY --from=build-train /opt/venv /opt/venv
USER 10001:10001
VOLUME ["/data", "/runs", "/cache"]
ENTRYPOINT ["profy"]
CMD ["--help"]
