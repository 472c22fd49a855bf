# wq-pipeline: `make demo` and `make test` create the virtualenv if needed.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SHARED ?= ../shared/data
export PREFECT_SERVER_ANALYTICS_ENABLED = false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS = 120
export PREFECT_HOME ?= $(CURDIR)/.prefect
export TF_CPP_MIN_LOG_LEVEL = 2
export OPENBLAS_NUM_THREADS = 1

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wq evaluate --data $(SHARED)/nerr_sapelo_deancreek_2012.csv --target DO_obs \
		--freq 1h --horizon 6 --method vmd --protocol stepwise --out reports/demo

test: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)
	WQ_REQUIRE_POSTGRES=1 $(PY) -m pytest -n 2 --dist loadfile tests

# Benchmarks (not run by the tests): each script prints its figures and writes bench/results/<name>.json;
# report.py then rewrites BENCHMARKS.md. vmdrs-py (optional extra `bench`) is only a comparison point.
# published.py (about 75 min) and skill.py (about 25 min) resume from bench/results/*_runs.json; `--fresh` reruns them in full.
bench: $(STAMP)
	$(PY) -c "import vmdrs_py" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]' || echo "vmdrs-py not installed: not compared"
	$(PY) bench/vmd_single.py
	$(PY) bench/vmd_stepwise.py
	$(PY) bench/ceemdan_stepwise.py
	$(PY) bench/training.py
	$(PY) bench/evaluate_demo.py
	$(PY) bench/published.py
	$(PY) bench/end_effects.py
	$(PY) bench/skill.py
	$(PY) bench/ensemble_design.py
	$(PY) bench/ensemble_pruning.py
	$(PY) bench/last_week_weights.py
	$(PY) bench/probabilistic.py
	$(PY) bench/neon_challenge.py
	$(PY) bench/fleet.py
	$(PY) bench/fleet_retrain.py
	$(PY) bench/level_free_ablation.py
	$(PY) bench/backfill.py
	$(PY) bench/report.py

clean:
	rm -rf $(VENV) .prefect reports/demo
