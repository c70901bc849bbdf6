# recsys_spark: `make demo` and `make test` are all a newcomer needs; both set up on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
AIRFLOW_VENV := .venv-airflow
WHEELS := .cache/wheels
HOROVOD_WHEEL := $(WHEELS)/horovod-0.28.1-cp311-cp311-linux_x86_64.whl
PY := $(VENV)/bin/python
LAKE ?= ./lake
DS ?= $(shell date -u +%F)
CONF ?= conf/nightly.yaml
PYTEST_ARGS ?=

.PHONY: setup package demo test test-slow test-all nightly bench-etl benchmark-quality clean-lake check-java help

help:
	@echo "make demo   - set up if needed, generate synthetic data and run the nightly pipeline (LAKE=$(LAKE))"
	@echo "make test   - set up if needed, run the test suite but the tests marked slow"
	@echo "make test-slow / test-all - the slow tests (end to end, Horovod, cluster, Airflow) / everything"
	@echo "make setup  - create $(VENV) (jobs) and $(AIRFLOW_VENV) (Airflow) from the pinned stack"
	@echo "make package - build dist/recsys_spark.zip, the package the DAG ships to Spark executors"

setup: check-java $(VENV)/.ready $(AIRFLOW_VENV)/.ready

check-java:
	@command -v java >/dev/null 2>&1 || { echo "ERROR: Java 17 is required by Spark 4.0 and was not found on PATH. Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and run make again." >&2; exit 1; }
	@java -version 2>&1 | grep -Eq 'version "17[."]' || { echo "ERROR: Spark 4.0 here is verified with Java 17, found: $$(java -version 2>&1 | head -1). Install Java 17 (apt-get install openjdk-17-jre-headless) and put it first on PATH or set JAVA_HOME." >&2; exit 1; }

$(VENV)/.ready: requirements/jobs.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "ERROR: $(PYTHON) not found: TensorFlow 2.15 needs Python 3.9-3.11." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip<25"
	$(PY) -m pip install -q -r requirements/jobs.txt
	$(MAKE) --no-print-directory $(HOROVOD_WHEEL)
	$(PY) -m pip install -q --no-deps $(HOROVOD_WHEEL)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@$(VENV)/bin/horovodrun --check-build 2>/dev/null | tee $(VENV)/horovod-build.txt | grep -E '\[X\] (TensorFlow|Gloo)'
	@grep -q '\[X\] TensorFlow' $(VENV)/horovod-build.txt && grep -Eq '\[X\] Gloo' $(VENV)/horovod-build.txt || { echo "ERROR: Horovod was built without TensorFlow or Gloo; rm -rf $(WHEELS) $(VENV) and run make setup again." >&2; exit 1; }
	$(PY) -m pip check
	touch $@

# Horovod compiles against the installed TensorFlow (2 to 5 minutes); the wheel is cached in an ignored folder.
$(HOROVOD_WHEEL):
	mkdir -p $(WHEELS)
	HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
	HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 MAKEFLAGS=-j2 \
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w $(WHEELS) horovod==0.28.1

$(AIRFLOW_VENV)/.ready: requirements/airflow.txt
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade "pip<25"
	$(AIRFLOW_VENV)/bin/python -m pip install -q -r requirements/airflow.txt
	touch $@

# The package the DAG ships to executors (spark-submit --py-files): rebuilt when a module changes.
PACKAGE_ZIP := dist/recsys_spark.zip
$(PACKAGE_ZIP): $(shell find recsys_spark -name '*.py' -not -path '*/__pycache__/*')
	mkdir -p dist
	$(PYTHON) -c "import pathlib, zipfile; z = zipfile.ZipFile('$@.tmp', 'w', zipfile.ZIP_DEFLATED); \
	[z.write(p) for p in sorted(pathlib.Path('recsys_spark').rglob('*.py')) if '__pycache__' not in p.parts]; z.close()"
	mv $@.tmp $@

package: $(PACKAGE_ZIP)

demo: setup
	@echo "== recsys_spark demo: synthetic data for ds=$(DS), lake at $(LAKE) =="
	$(PY) -m jobs.generate --ds $(DS) --lake $(LAKE) --conf $(CONF)
	$(PY) -m jobs.nightly --ds $(DS) --lake $(LAKE) --conf $(CONF)

nightly: setup
	$(PY) -m jobs.nightly --ds $(DS) --lake $(LAKE) --conf $(CONF)

# make test: everything but the tests marked slow (end to end, Horovod, the cluster, the Airflow run), which
# CI (.ci/run) runs after it with make test-slow; make test-all runs both in one session.
test: setup package
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

test-slow: setup package
	$(PY) -m pytest tests -m slow $(PYTEST_ARGS)

test-all: setup package
	$(PY) -m pytest tests $(PYTEST_ARGS)

bench-etl: setup
	$(PY) bench/etl.py

# Every model, deep and traditional, through the product's jobs on ml-100k (3 seeds), Beauty and Gowalla
# from ../shared/data; BENCH_ARGS="--datasets beauty --models ease,markov" runs a part.
BENCH_ARGS ?=
benchmark-quality: setup
	$(PY) bench/quality.py $(BENCH_ARGS)

clean-lake:
	rm -rf $(LAKE)
