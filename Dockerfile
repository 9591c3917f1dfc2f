# syntax=docker/dockerfile:1
# audit-harvester: one image for every role (worker, beat, metrics, migrations, CLI).
#   docker build -t audit-harvester .
#   docker run --rm audit-harvester --help
# The role is the command: `worker --queues harvest`, `beat`, `metrics serve`, `db upgrade`.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/harvester
WORKDIR /src
# Dependencies first: a source change then reuses the cached dependency layer.
COPY pyproject.toml README.md ./
RUN mkdir -p harvester workers schedules \
    && touch harvester/__init__.py workers/__init__.py schedules/__init__.py \
    && /opt/harvester/bin/pip install . \
    && /opt/harvester/bin/pip uninstall -y audit-harvester
COPY harvester ./harvester
COPY workers ./workers
COPY schedules ./schedules
RUN /opt/harvester/bin/pip install --no-deps . \
    && /opt/harvester/bin/python -m compileall -q /opt/harvester/lib

FROM python:3.11-slim
LABEL org.opencontainers.image.title="audit-harvester" \
      org.opencontainers.image.description="CloudTrail and EKS audit-log harvester and anomaly detector" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed uid, so Kubernetes' runAsNonRoot can check it and volumes can be chowned to it.
RUN groupadd --system --gid 10001 harvester \
    && useradd --system --uid 10001 --gid harvester --home-dir /var/lib/harvester \
       --create-home --shell /usr/sbin/nologin harvester \
    && install -d -o harvester -g harvester /run/harvester /run/harvester/metrics
COPY --from=build /opt/harvester /opt/harvester
ENV PATH=/opt/harvester/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HARVESTER_DATA_DIR=/var/lib/harvester
USER 10001:10001
WORKDIR /var/lib/harvester
# Celery's warm shutdown: SIGTERM lets running tasks finish (up to the hard time limit).
STOPSIGNAL SIGTERM
ENTRYPOINT ["harvester"]
CMD ["--help"]
