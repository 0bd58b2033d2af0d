# The two commands: `make run` and `make test`.  Everything else is a helper.
.PHONY: run test setup eval bench lint format clean

# Demo mode unless GOVBOT_MODE or a .env file says otherwise (the launcher says which mode it runs in).
run: setup
	@if [ -z "$${GOVBOT_MODE:-}" ] && [ ! -f .env ]; then export GOVBOT_MODE=demo; fi; exec .venv/bin/govbot run

test: setup
	scripts/test.sh

setup:
	scripts/setup.sh

eval: setup
	.venv/bin/govbot train
	.venv/bin/python -m eval.chat
	.venv/bin/python -m eval.triage
	.venv/bin/python -m eval.run_eval

bench: setup
	.venv/bin/python bench/kb_search.py
	.venv/bin/python bench/wechat_e2e.py

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/ruff format --check bot sms_gateway knowledge_base tests bench

format:
	.venv/bin/ruff format bot sms_gateway knowledge_base tests bench
	.venv/bin/ruff check --fix .

clean:
	rm -rf var dialogues/models .pytest_cache .ruff_cache .mypy_cache
