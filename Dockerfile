# syntax=docker/dockerfile:1
# Two images from one file, chosen by VARIANT:
#   docker build -t viseme-gateway:0.1.0 .                              CPU, python:3.11-slim
#   docker build --build-arg VARIANT=gpu -t viseme-gateway:0.1.0-gpu .  CUDA 13 + cuDNN 9
# Both: a virtualenv built in a throw-away stage, copied into a runtime stage with
# no compilers and no pip; the models ship inside the viseme_engine package; uid 10001.
# The Helm chart (helm/viseme-gateway) expects port 8080 and the -gpu tag suffix.

ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# onnxruntime-gpu 1.31 is built against CUDA 13 and cuDNN 9: keep the three in step.
# CUDA 13 needs an NVIDIA driver 580 or newer on the GPU nodes.
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
ARG ONNXRUNTIME_VERSION=1.31.1

# ---- interpreters -----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS python-cpu
ARG ONNXRUNTIME_VERSION
# The CPU build of onnxruntime: a tenth of onnxruntime-gpu's size, same API.
ENV PYTHON=/usr/local/bin/python3.11 \
    ONNXRUNTIME_REQUIREMENT=onnxruntime==${ONNXRUNTIME_VERSION}

FROM ${CUDA_IMAGE} AS python-gpu
ARG ONNXRUNTIME_VERSION
# Ubuntu 24.04's own Python 3.12 (requires-python is >=3.11): security updates come
# with the distribution, rather than from a PPA or an interpreter copied across distros.
# Not pinned to package versions: the archive drops old ones, so pins break builds;
# the base image tag fixes the distribution release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHON=/usr/bin/python3.12 \
    ONNXRUNTIME_REQUIREMENT=onnxruntime-gpu==${ONNXRUNTIME_VERSION}

# ---- build: the virtualenv ----------------------------------------------------------
FROM python-cpu AS venv-tools-cpu

FROM python-gpu AS venv-tools-gpu
# ensurepip for `python -m venv`; only in this stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12-venv \
    && rm -rf /var/lib/apt/lists/*

# A stage of this file chosen by VARIANT, not a registry image.
# hadolint ignore=DL3006
FROM venv-tools-${VARIANT} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN "$PYTHON" -m venv /opt/venv
COPY pyproject.toml README.md ./
# The project's runtime dependencies with onnxruntime (-gpu or not, by platform
# marker) swapped for this variant's pinned build; installed first so source edits do not redo this layer. Wheels only:
# nothing is compiled, and this stage has no compiler to do it with.
RUN /opt/venv/bin/python -c "import os, re, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
name = lambda d: re.match(r'[A-Za-z0-9._-]+', d).group(0).lower(); \
deps = [d for d in deps if not name(d).startswith('onnxruntime')] + [os.environ['ONNXRUNTIME_REQUIREMENT']]; \
open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt
COPY gateway ./gateway
COPY providers ./providers
COPY viseme_engine ./viseme_engine
# Then the project itself, models included (package data), without touching the
# dependencies resolved above. Loading both models once here fails the build on a
# missing model or a Git LFS pointer instead of leaving a pod that never gets ready.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -c "from viseme_engine.engine import EngineConfig, load_models; \
load_models(EngineConfig(device='cpu', threads=1))" \
    && /opt/venv/bin/pip uninstall -y pip

# ---- runtime ------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM python-${VARIANT} AS runtime
# espeak-ng: the text-to-speech route runs its CLI, one subprocess per sentence.
# tini as PID 1 forwards SIGTERM to the gateway (which drains, then exits 0) and
# reaps any orphaned process, which a Python PID 1 would leave as a zombie.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
# Listening on every interface, the gateway wants VISEME_GATEWAY_PUBLIC_URL (the base
# of the signed URLs it hands out), so it never takes it from a request's Host:
#   docker run -p 8080:8080 -e VISEME_GATEWAY_PUBLIC_URL=http://localhost:8080 IMAGE
# (the Helm chart sets it).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VISEME_GATEWAY_HOST=0.0.0.0 \
    VISEME_GATEWAY_PORT=8080
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
# /livez only: readiness (models, Redis, draining) is the orchestrator's business,
# and a restart would not fix an unreachable Redis. urlopen raises (exit 1) on
# anything but 2xx; with TLS the certificate is the gateway's own, not checked here.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = bool(os.environ.get('VISEME_GATEWAY_TLS_CERT')); urllib.request.urlopen(('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('VISEME_GATEWAY_PORT', '8080') + '/livez', timeout=4, context=ssl._create_unverified_context() if tls else None)"]
ENTRYPOINT ["tini", "--", "viseme-gateway"]
CMD ["serve"]
