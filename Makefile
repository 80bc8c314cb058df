# The two commands: `make run` starts the app, `make test` runs the test suite. Both set everything up first.
.PHONY: run test setup lint bench grounding grounding-eval
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
# Benchmarks print figures next to a baseline measured in the same run (minutes each on 2 cores).
bench:
	.venv/bin/python bench/indexing.py
	.venv/bin/python bench/retrieval.py
	.venv/bin/python bench/chat.py
	.venv/bin/python bench/style.py
	.venv/bin/python bench/grounding_eval.py
# Rebuild the grounding adapter's training data, retrain it (fixed seeds, ~75 min on 2 cores), calibrate it.
grounding:
	.venv/bin/python grounding/make_data.py
	.venv/bin/python grounding/train_adapter.py
	.venv/bin/python grounding/calibrate.py
grounding-eval:
	.venv/bin/python bench/grounding_eval.py
