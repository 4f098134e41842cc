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
COPY pyproject.toml README.md requirements.lock ./
COPY dispatcher ./dispatcher
COPY config ./config
# The versions requirements.lock pins; the extras the processes of docker-compose.yml use:
# PostgreSQL's driver, the sandbox service's SMTP server, uvloop, and the /docs assets.
RUN pip install --no-cache-dir -c requirements.lock '.[postgres,sandbox,speed,docs]' \
    && useradd --create-home --uid 10001 dispatcher \
    && mkdir -p /app/var && chown dispatcher /app/var
USER dispatcher

ENTRYPOINT ["dispatcher"]
CMD ["--help"]
