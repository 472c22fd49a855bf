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
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) .prefect reports/demo
