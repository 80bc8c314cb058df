# The two commands: `make run` starts the app, `make test` runs the test suite. Both set everything up first.
.PHONY: run test setup lint bench
run:
	scripts/setup.sh
	.venv/bin/streamlit run app.py
test:
	scripts/setup.sh --test
	.venv/bin/python -m pytest
setup:
	scripts/setup.sh --test
lint:
	.venv/bin/ruff check .
