# One image for every Nova process; docker-compose.yml picks the command (worker, gateway).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NOVA_DATA_DIR=/var/lib/nova \
    NOVA_CACHE_DIR=/var/cache/nova

WORKDIR /src
# Only what the package needs (see .dockerignore): no tests, no virtualenv, no local data.
COPY pyproject.toml README.md ./
COPY nova ./nova
COPY streams ./streams
COPY schemas ./schemas
COPY gateway ./gateway
COPY analytics ./analytics
RUN pip install . \
    && useradd --system --create-home --uid 10001 nova \
    && mkdir -p /var/lib/nova /var/cache/nova \
    && chown nova:nova /var/lib/nova /var/cache/nova

USER nova
WORKDIR /home/nova
ENTRYPOINT ["nova"]
CMD ["--help"]
