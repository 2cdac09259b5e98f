FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY storage storage
COPY tasks tasks
COPY workers workers
COPY beat_schedule.py ./
RUN pip install --no-cache-dir ".[postgres]" && useradd --create-home trainlog \
    && mkdir -p /var/lib/trainlog && chown trainlog /var/lib/trainlog
USER trainlog
ENV TRAINLOG_HOME=/var/lib/trainlog
CMD ["trainlog", "worker"]
