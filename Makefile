# Two commands for a newcomer: `make run` (the main job on the embedded digits data)
# and `make test`. Each sets up its own virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of torch; set TORCH=torch (or a CUDA wheel spec) on a GPU machine.
TORCH  ?= torch==2.13.0
# The torchvision release built for that torch (0.28 pairs with 2.13), installed with it so
# that pip never swaps torch for another version to satisfy a newer torchvision.
TORCHVISION ?= torchvision==0.28.0
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.gennas-installed

.PHONY: run test setup clean

setup: $(STAMP)

# The peers extra (Optuna, BoTorch) is installed so the peer searchers' tests run; pip keeps the torch above
# (botorch asks for torch>=2.4).
# torchattacks, for the attack cross-check (tests/test_attack_crosscheck.py), pins requests~=2.25.1
# without ever importing requests: --no-deps keeps pip from downgrading requests for everything else.
# Its real dependencies (torch, torchvision, numpy, scipy, tqdm) are installed by the lines before it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" "$(TORCHVISION)"
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,peers]'
	$(BIN)/python -m pip install --quiet --no-deps "torchattacks==3.5.1"
	touch $(STAMP)

run: $(STAMP)
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/gennas run --dataset digits --out runs/digits

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
