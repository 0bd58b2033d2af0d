#!/usr/bin/env bash
# Create/refresh both virtualenvs and make sure a redis-server is available.  Idempotent and fast when
# nothing changed (stamp files hold a hash of what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

find_python() {  # find_python MIN_MINOR MAX_MINOR -> path of a python3.x with MIN<=x<=MAX
  local min=$1 max=$2 c v
  for c in ${GOVBOT_PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10 \
           "$HOME"/.pyenv/versions/3.*/bin/python3 /usr/local/bin/python3.1? /usr/bin/python3.1?; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    v=$("$c" -c 'import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else 0)' 2>/dev/null) || continue
    if [ "$v" -ge "$min" ] && [ "$v" -le "$max" ]; then command -v "$c" 2>/dev/null || echo "$c"; return 0; fi
  done
  return 1
}

# --- gateway virtualenv (Python >= 3.11) -------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  py=$(find_python 11 13) || { say "需要 Python >= 3.11 (Python 3.11+ is required)"; exit 1; }
  say "creating .venv with $py"
  "$py" -m venv .venv
fi
want=$(hash_of pyproject.toml)
if [ "$(cat .venv/.installed 2>/dev/null)" != "$want" ]; then
  say "installing the gateway (pip install -e .[dev])"
  .venv/bin/pip install -q -e ".[dev]"
  echo "$want" > .venv/.installed
fi

# --- Rasa virtualenv (Python 3.10; Rasa 3.6 needs < 3.11) -----------------------------------------------
if [ ! -x .venv-rasa/bin/python ]; then
  py310=$(GOVBOT_PYTHON=${RASA_PYTHON:-} find_python 10 10) || py310=""
  if [ -z "$py310" ] && command -v uv >/dev/null 2>&1; then
    say "no python3.10 found; trying 'uv python install 3.10'"
    uv python install 3.10 && py310=$(uv python find 3.10) || py310=""
  fi
  if [ -z "$py310" ]; then
    say "Rasa 3.6 需要 Python 3.10，但未找到。请安装后重试，例如："
    say "  pyenv install 3.10.13   或   uv python install 3.10   或   apt-get install python3.10-venv"
    say "  也可用 RASA_PYTHON=/path/to/python3.10 指定。"
    exit 1
  fi
  say "creating .venv-rasa with $py310"
  "$py310" -m venv .venv-rasa
fi
want=$(hash_of dialogues/requirements.txt)
if [ "$(cat .venv-rasa/.installed 2>/dev/null)" != "$want" ]; then
  say "installing Rasa into .venv-rasa (first time: several minutes)"
  .venv-rasa/bin/pip install -q -r dialogues/requirements.txt
  echo "$want" > .venv-rasa/.installed
fi

# --- redis-server (only needed when REDIS_URL is not set) ----------------------------------------------
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing redis-server (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    say "找不到 redis-server：请安装（如 sudo apt-get install redis-server），或设置 REDIS_URL 指向现有 Redis。"
    exit 1
  fi
fi
# --- Chromium for the console's browser tests (Debian's package; Playwright drives it) -----------------------
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium and CJK fonts for the browser tests (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  else
    say "未找到 chromium：浏览器测试将跳过（apt-get install chromium fonts-noto-cjk 后重试）"
  fi
fi
say "ready"
