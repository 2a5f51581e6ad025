# One image for the service, the standalone dispatcher and the mock receiver.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY counter ./counter
COPY mock_external ./mock_external
RUN pip install --no-cache-dir .

# Inside a container the service must listen on all interfaces to be reachable.
ENV COUNTER_HOST=0.0.0.0 \
    COUNTER_DATA_DIR=/data
EXPOSE 8000
CMD ["counter", "serve"]
