PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install test demo demo-detect sweep bench gpu-check docs docs-serve clean

# One command sets up a fresh machine: a virtual environment with the package and its test tools.
install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev]"

# Lint, formatting and the import layers first (seconds; ruff's settings and the import-linter contracts in
# pyproject.toml), then the whole suite, on CPU, in under six minutes on two cores.
test:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder tests

# Offline demo: WRN-10-1 + BAM on scikit-learn's handwritten digits (shipped in its wheel: no download), on CPU.
# Fits (TensorBoard logs, checkpoints), tests the run's last.ckpt, draws BAM's attention on four test digits.
# One thread: so small a network gains little from a second, and OpenMP's waiting threads make it
# 3-8x slower whenever the cores are shared (measured on 2 cores); set OMP_NUM_THREADS to override.
DEMO        := runs/demo_digits
DEMO_CONFIG := configs/demo_digits.yaml
DEMO_DIGITS := $(foreach d,0 1 2 3,$(DEMO)/digit$(d).png)
DEMO_CKPT    = $$(ls -t $(DEMO)/lightning_logs/version_*/checkpoints/last.ckpt | head -n 1)

demo: export OMP_NUM_THREADS ?= 1
demo: SHELL := /bin/bash
demo: .SHELLFLAGS := -o pipefail -c
demo:
	$(BIN)/bam fit --config $(DEMO_CONFIG)
	$(BIN)/bam test --config $(DEMO_CONFIG) --ckpt_path $(DEMO_CKPT) | tee $(DEMO)/test.txt
	$(BIN)/python -c "from bam_lightning.data.digits import main; main()" $(DEMO_DIGITS)
	$(BIN)/bam attention --ckpt_path $(DEMO_CKPT) $(addprefix --image ,$(DEMO_DIGITS)) --out $(DEMO)/attention.png
	@echo "demo: test accuracy $$(grep -m 1 test/acc1 $(DEMO)/test.txt | grep -oE '[0-9]+\.[0-9]+' | xargs printf %.2f) %;" \
	  "checkpoint $(DEMO_CKPT); TensorBoard logs $(DEMO)/lightning_logs; attention maps $(DEMO)/attention.png"

# Offline detection demo: SSD300 + BAM (MobileNet, width 0.5) from scratch on handwritten digits 0-9 pasted on canvases,
# written in COCO's layout (digit_canvases), on CPU in under 6 minutes. Fits, tests the run's last.ckpt (COCO mAPs),
# draws its detections on four validation images.
DETECT        := runs/demo_detect
DETECT_CONFIG := configs/demo_detect.yaml
DETECT_CKPT    = $$(ls -t $(DETECT)/lightning_logs/version_*/checkpoints/last.ckpt | head -n 1)
DETECT_IMAGES  = $$(ls $(DETECT)/data/val/*.jpg | head -n 4 | sed 's/^/--image /')

demo-detect: export OMP_NUM_THREADS ?= 2
demo-detect: SHELL := /bin/bash
demo-detect: .SHELLFLAGS := -o pipefail -c
demo-detect:
	$(BIN)/python -c "from bam_lightning.data.digit_canvases import main; main()" \
	  --format coco --out $(DETECT)/data --train 600 --val 100
	$(BIN)/bam fit --config $(DETECT_CONFIG)
	$(BIN)/bam test --config $(DETECT_CONFIG) --ckpt_path $(DETECT_CKPT) | tee $(DETECT)/test.txt
	$(BIN)/bam detect --ckpt_path $(DETECT_CKPT) $(DETECT_IMAGES) --out $(DETECT)/detections.png
	@echo "demo-detect: test mAP@.5 $$(grep -m 1 'test/map_50 ' $(DETECT)/test.txt | grep -oE '[0-9]+\.[0-9]+' | xargs printf %.2f) %" \
	  "(target >= 60 %); checkpoint $(DETECT_CKPT); TensorBoard logs $(DETECT)/lightning_logs; detections $(DETECT)/detections.png"

# Several configs over several seeds, then the results table (mean ± std over seeds): a thin call of `bam sweep`
# (bam sweep --help: --launcher slurm for a SLURM job array, --dry_run, --status), runs under SWEEP_DIR/<row>/seed<k>/:
#   make sweep CONFIGS="configs/cifar100/wrn28_8_bam.yaml configs/cifar100/wrn28_8_baseline.yaml" SEEDS="0 1 2"
# An ablation row is its Table 3 config and its delta joined by '+':
#   make sweep CONFIGS="configs/cifar100/resnet50_bam.yaml+configs/ablations/table1a_dilation1.yaml"
# ARGS is added to every run (e.g. ARGS="--trainer.devices 8 --trainer.strategy ddp"); SWEEP_ARGS to bam sweep
# (e.g. SWEEP_ARGS="--local.parallel 2"). Run again, it skips finished runs and resumes unfinished ones.
SEEDS     ?= 0 1 2
SWEEP_DIR ?= runs/sweep
sweep:
	@test -n "$(CONFIGS)" || { echo 'make sweep: set CONFIGS="a.yaml b.yaml ..."'; exit 2; }
	$(BIN)/bam sweep --configs $(CONFIGS) --seeds $(SEEDS) --out $(SWEEP_DIR) --args "$(ARGS)" $(SWEEP_ARGS)

# Speed and memory, not part of the tests (numbers depend on the machine): BAM alone (fused vs reference),
# training steps with and without BAM, bam fit vs a bare PyTorch loop. Prints the tables and writes
# benchmarks/results/<device>.json. The GPU when there is one; DEVICE=cpu or DEVICE=cuda to choose,
# BENCH_ARGS for more (e.g. "--compile", "--suites module"; python -m benchmarks --help).
# Opt-in: BENCH_ARGS="--suites detection", the paper's detectors' training steps with and without BAM.
bench:
	$(BIN)/python -m benchmarks $(if $(DEVICE),--device $(DEVICE)) $(BENCH_ARGS)

# Everything one GPU run must answer, in under 8 minutes: CUDA correctness tests, the main config's speed through
# bam fit, the ResNet-50 row, bam fit vs a bare loop; one table and benchmarks/results/cuda-<gpu>.json.
# DEVICE=cpu: the same, shrunk, to check the plumbing (the suite runs it).
gpu-check:
	$(BIN)/python -m benchmarks.gpu_check $(if $(DEVICE),--device $(DEVICE)) $(GPU_CHECK_ARGS)

# The documentation site (MkDocs, the Material theme, the API reference from the docstrings by mkdocstrings; the docs
# extra, in dev): site/, built with --strict, so a broken link, anchor or API reference fails it (tests/test_docs.py
# builds it too). docs-serve: the same site on http://127.0.0.1:8000, rebuilt as you edit.
# NO_MKDOCS_2_WARNING: Material's notice about its successor, printed on every build, says nothing about the site.
docs docs-serve: export NO_MKDOCS_2_WARNING := 1
docs:
	$(BIN)/mkdocs build --strict

docs-serve:
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
