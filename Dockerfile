# Hailuo Bot. Build: `docker build -t hailuo-bot .`  Run: see compose.yaml (settings come from the environment).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# Dependencies first, so code changes don't reinstall them (ffmpeg comes with imageio-ffmpeg's wheel).
COPY pyproject.toml README.md LICENSE ./
RUN mkdir bot cogs && touch bot/__init__.py cogs/__init__.py \
    && pip install . \
    && pip uninstall -y hailuo-bot \
    && rm -rf bot cogs build *.egg-info

COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-deps . && rm -rf build *.egg-info

# A non-root user owns only the data folder: the database, images and videos live in the volume.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home hailuo \
    && mkdir -p /app/data \
    && chown hailuo:hailuo /app/data
USER hailuo
VOLUME ["/app/data"]

# DATABASE_PATH and MEDIA_DIR default to data/..., that is /app/data. SIGTERM stops the bot cleanly.
# With METRICS_PORT set (compose.yaml sets 9464), GET /healthz answers 200 while the bot is healthy.
CMD ["python", "-m", "bot"]
