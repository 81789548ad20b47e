# The batchwire image: one Python package, run as `batchwire worker` or `batchwire connector`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY connectors ./connectors
COPY schemas ./schemas
# editable: the codec reads schemas/ beside the package
RUN pip install --no-cache-dir -e .
ENV BATCHWIRE_DATA_DIR=/data
VOLUME /data
ENTRYPOINT ["batchwire"]
