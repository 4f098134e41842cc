# The dispatcher in one image: every process of docker-compose.yml runs it with a different
# command (migrate, serve, worker, sandbox). Settings come only from DISPATCHER_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The font faxes are drawn in: WenQuanYi Micro Hei (Latin, Greek, Cyrillic and Chinese).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY config ./config
RUN pip install --no-cache-dir '.[postgres]' \
    && useradd --create-home --uid 10001 dispatcher \
    && mkdir -p /app/var && chown dispatcher /app/var
USER dispatcher

ENTRYPOINT ["dispatcher"]
CMD ["--help"]
