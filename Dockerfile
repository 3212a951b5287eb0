# syntax=docker/dockerfile:1
# One image for the five Fieldforce apps. The app is chosen at run time:
#   docker run -e APP=customers -e PORT=8001 ... fieldforce
#   docker run ... fieldforce python -m fieldforce.cli migrate
# docker-compose.yml builds it once and runs it six times (five apps and the migrate job).

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the locked workspace, installed into /app/.venv ---------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Third-party dependencies first, from the lock file and the members' pyproject.toml alone, so
# a change to the code reuses this layer.
COPY pyproject.toml uv.lock ./
COPY libs/servicekit/pyproject.toml libs/servicekit/
COPY gateway/pyproject.toml gateway/
COPY services/customers/pyproject.toml services/customers/
COPY services/visits/pyproject.toml services/visits/
COPY services/opportunities/pyproject.toml services/opportunities/
COPY services/analytics/pyproject.toml services/analytics/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace

# Then the workspace's own packages, as wheels (not editable), so the runtime stage needs only
# the virtual environment: code, migrations and all.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 fieldforce \
    && useradd --system --uid 10001 --gid fieldforce --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin fieldforce
COPY --from=builder /app/.venv /app/.venv
COPY --chmod=755 deploy/docker/entrypoint.sh /usr/local/bin/fieldforce-entrypoint
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP=gateway \
    PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004
# Liveness only: the slim image has no curl, so Python's urllib asks /healthz on the app's port.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)" || exit 1
ENTRYPOINT ["fieldforce-entrypoint"]
