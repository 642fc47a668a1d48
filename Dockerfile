# The official Airflow 3.3.2 image plus this project: the provider (payout_gateway), the DAGs'
# business code (payout_jobs), the sandbox gateway (payout-sandbox), the DAG files, and the Celery
# and PostgreSQL providers of the [cluster] extra. docker-compose.yaml builds it for every Airflow
# service and for the sandbox; for many hosts, push it to a registry and run it on each.
#
#   docker compose build          # or: docker build -t payout-airflow:local .
FROM apache/airflow:3.3.2

# The official image's rule for extending it: install as the airflow user (uid 50000, made by the
# base image), pinning apache-airflow to the image's version so that pip never changes Airflow.
# hadolint ignore=DL3066
USER airflow
RUN mkdir -p /opt/airflow/payout-project /opt/airflow/sandbox-data \
        /opt/airflow/var/reports /opt/airflow/var/batches/incoming
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/payout-project/
COPY --chown=airflow:0 include /opt/airflow/payout-project/include
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/airflow/payout-project[cluster]"

# The DAG files are part of the image (every host runs the same code); on one host compose mounts
# ./dags over them, so that edits show up without a rebuild.
COPY --chown=airflow:0 dags /opt/airflow/dags
# The Payouts view plugin (its code is the payouts_view package installed above).
COPY --chown=airflow:0 plugins /opt/airflow/plugins
WORKDIR /opt/airflow
# hadolint ignore=DL3066
USER airflow
