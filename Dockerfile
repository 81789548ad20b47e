# The batchwire image: one Python package, run as `batchwire worker` or `batchwire connector`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY connectors ./connectors
COPY schemas ./schemas
RUN pip install --no-cache-dir .
ENV BATCHWIRE_DATA_DIR=/data
VOLUME /data
ENTRYPOINT ["batchwire"]
