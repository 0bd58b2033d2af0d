#!/usr/bin/env bash
# The whole test suite (what `make test` runs): real Redis, SQLite (and PostgreSQL when TEST_POSTGRES_URL
# is set), and the real Rasa server with the trained model for the end-to-end tests.
#
# Each run gets its own throwaway Redis server and its own PostgreSQL database, so two runs on one machine
# (a developer's and CI's) never flush each other's data.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[test] %s\n' "$*"; }
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c" || true; done' EXIT

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- Redis: TEST_REDIS_URL when given, else a private server for this run ---------------------------------
if [ -z "${TEST_REDIS_URL:-}" ]; then
  if command -v redis-server >/dev/null 2>&1; then
    port=$(free_port)
    dir=$(mktemp -d)
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    cleanup+=("kill \$(cat '$dir/redis.pid') 2>/dev/null; rm -rf '$dir'")
    export TEST_REDIS_URL="redis://127.0.0.1:$port/15"
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  else
    export TEST_REDIS_URL=redis://127.0.0.1:6379/15
  fi
fi
say "Redis for tests: $TEST_REDIS_URL"

# --- PostgreSQL: a database of this run's own, created beside TEST_POSTGRES_URL's and dropped after -------
if [ -n "${TEST_POSTGRES_URL:-}" ]; then
  run_db="govbot_test_$$_$RANDOM"
  .venv/bin/python scripts/pg_test_db.py create "$TEST_POSTGRES_URL" "$run_db"
  cleanup+=(".venv/bin/python scripts/pg_test_db.py drop '$TEST_POSTGRES_URL' '$run_db'")
  export TEST_POSTGRES_URL="${TEST_POSTGRES_URL%/*}/$run_db"
  say "PostgreSQL tests: on ($run_db)"
else
  say "PostgreSQL tests: off (set TEST_POSTGRES_URL)"
fi

(cd dialogues && ../.venv-rasa/bin/rasa data validate --fail-on-warnings --max-history 5 >/dev/null 2>&1) \
  || { say "rasa data validate reported problems:"; (cd dialogues && ../.venv-rasa/bin/rasa data validate --fail-on-warnings --max-history 5); exit 1; }
.venv/bin/govbot train
# Rasa's own conversation tests (dialogues/tests/test_stories.yml) against the trained model
rasa_out=$(mktemp -d); cleanup+=("rm -rf '$rasa_out'")
(cd dialogues && ../.venv-rasa/bin/rasa test core --stories tests/test_stories.yml --model models \
   --fail-on-prediction-errors --out "$rasa_out" >"$rasa_out/log" 2>&1) \
  || { say "Rasa's conversation tests failed:"; tail -30 "$rasa_out/log"; exit 1; }
say "Rasa conversation tests (dialogues/tests/test_stories.yml): passed"
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache  # the layers in pyproject.toml
.venv/bin/mypy  # the types (configuration in pyproject.toml)
.venv/bin/python -m pytest "$@"
