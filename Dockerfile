# The Ripartire image: `ripartire run` as a non-root user, with the dashboard's assets.
# No secret is in it: every setting comes from the environment at run time (compose.yaml
# reads them from an env file; see .env.example). The install steps are the Makefile's
# (tests/test_deployment_files.py checks that they stay the same commands).
#
#   docker build -t ripartire .
#   docker compose up -d            # PostgreSQL, the migrations, the app

# --- the dashboard's front-end packages (Bootstrap Italia, htmx), served by the app ----
FROM node:22-bookworm-slim AS assets
WORKDIR /build
COPY dashboard/assets/package.json dashboard/assets/package.json
RUN cd dashboard/assets && npm install --no-package-lock --no-audit --no-fund --loglevel=error

# --- the application -------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/app/.venv/bin:$PATH
# pg_dump, pg_restore and psql for `ripartire backup|restore` on PostgreSQL: Debian 12's
# client is PostgreSQL 15, which reads servers up to 15 (compose.yaml runs 15).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home ripartire
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY dashboard dashboard
COPY bot bot
# The Makefile's install, without the developers' extras (tests, linters).
RUN test -x /app/.venv/bin/python || python3 -m venv /app/.venv
RUN /app/.venv/bin/python -m pip install --quiet --upgrade pip
RUN /app/.venv/bin/python -m pip install --quiet -e '.'
COPY --from=assets /build/dashboard/assets/node_modules dashboard/assets/node_modules
# The default SQLite database's folder (./data) and the backups' (compose.yaml mounts a
# volume there): the only places the app writes.
RUN mkdir -p /app/data /app/backups && chown ripartire:ripartire /app/data /app/backups
VOLUME ["/app/data"]

USER ripartire
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["ripartire", "run", "--host", "0.0.0.0", "--port", "8000"]
