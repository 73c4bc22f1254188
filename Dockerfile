# fraudstream: one image for the worker, the learner, the API and the simulator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY fraudstream ./fraudstream
COPY stream ./stream
COPY features ./features
COPY models ./models
COPY api ./api
RUN pip install .

RUN useradd --create-home --uid 10001 fraudstream && mkdir -p /data && chown fraudstream /data
USER fraudstream
ENV FRAUDSTREAM_HOME=/data FRAUDSTREAM_REGISTRY_DIR=/data/registry

ENTRYPOINT ["fraudstream"]
CMD ["--help"]
