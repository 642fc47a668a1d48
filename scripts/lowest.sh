#!/usr/bin/env bash
# The lowest-versions check (`make lowest`): installs the lowest versions pyproject.toml allows for
# our direct dependencies (uv's --resolution lowest-direct) in a separate venv (.venv-lowest) and
# runs the provider tests there. A failure means a floor in pyproject.toml is too low: raise it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${LOWEST_VENV:-.venv-lowest}
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check uv
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --resolution lowest-direct -e '.[dev]'
echo "lowest: installed"
"$VENV/bin/uv" pip list --python "$VENV/bin/python" 2>/dev/null \
    | grep -iE '^(apache-airflow|apache-airflow-providers-http|pydantic|tenacity|aiohttp|fastapi|uvicorn|requests|pytest|pytest-asyncio|hypothesis|schemathesis|httpx) '
"$VENV/bin/python" -m pytest -q -x -p no:cacheprovider tests/provider "$@"
