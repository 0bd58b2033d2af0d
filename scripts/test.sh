#!/usr/bin/env bash
# The whole test suite (what `make test` runs): real Redis, SQLite (and PostgreSQL when TEST_POSTGRES_URL
# is set), and the real Rasa server with the trained model for the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[test] %s\n' "$*"; }

# A Redis for the tests: TEST_REDIS_URL, else 127.0.0.1:6379 when one answers, else a private throwaway one.
if [ -z "${TEST_REDIS_URL:-}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    export TEST_REDIS_URL=redis://127.0.0.1:6379/15
  else
    mkdir -p var/redis-test
    redis-server --bind 127.0.0.1 --port 6381 --save "" --appendonly no --daemonize yes \
      --dir var/redis-test --pidfile "$PWD/var/redis-test/redis.pid" >/dev/null
    trap 'kill "$(cat var/redis-test/redis.pid 2>/dev/null)" 2>/dev/null || true' EXIT
    export TEST_REDIS_URL=redis://127.0.0.1:6381/15
    sleep 0.5
  fi
fi
say "Redis for tests: $TEST_REDIS_URL"
[ -n "${TEST_POSTGRES_URL:-}" ] && say "PostgreSQL tests: on" || say "PostgreSQL tests: off (set TEST_POSTGRES_URL)"

(cd dialogues && ../.venv-rasa/bin/rasa data validate --fail-on-warnings --max-history 5 >/dev/null 2>&1) \
  || { say "rasa data validate reported problems:"; (cd dialogues && ../.venv-rasa/bin/rasa data validate --fail-on-warnings --max-history 5); exit 1; }
.venv/bin/govbot train
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
