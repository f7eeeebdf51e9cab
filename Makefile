# convscope: `make lab` to teach, `make test` to check, `make run` to re-render the course.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NB ?=
PARAMS ?=

# Everything Jupyter, IPython and matplotlib write stays inside the venv, not in $HOME.
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter
export JUPYTER_CONFIG_DIR := $(CURDIR)/$(VENV)/etc/jupyter
export JUPYTER_DATA_DIR := $(CURDIR)/$(VENV)/share/jupyter
export JUPYTER_RUNTIME_DIR := $(CURDIR)/$(VENV)/share/jupyter/runtime
export IPYTHONDIR := $(CURDIR)/$(VENV)/ipython
export MPLCONFIGDIR := $(CURDIR)/$(VENV)/matplotlib
export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Idle OpenMP threads sleep instead of spinning: with two kernels busy on 2 cores (two open
# notebooks, a gallery run beside a lesson), spinning threads slowed small-tensor work 10-30x.
export OMP_WAIT_POLICY := PASSIVE

# The test stages run on JOBS pytest-xdist workers, each torch on one thread: on two cores this
# halves the suite, where two workers with two threads each fought over the cores.
JOBS ?= 2
unit notebooks ui outputs: export OMP_NUM_THREADS := 1
# Stored outputs are the CPU's: "auto" means the CPU in the test stages, on a GPU machine too
# (the GPU is exercised by tests/core/test_devices.py, against the CPU).
unit notebooks ui outputs: export CONVSCOPE_DEVICE := cpu
# nbval's second pass runs under another CPU setting: torch's, oneDNN's and MKL's oldest x86
# kernels (SSE4.1/4.2; ignored on ARM) and two threads per worker, so every run of the suite
# checks that the stored outputs hold on another kind of machine (scripts/measure_spread.py
# measures three settings).
OTHER_CPU := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 \
	OMP_NUM_THREADS=2

ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test env browser unit notebooks ui lint run gallery outputs describe student grade slides bench clean \
	lock spread hub
CHROMIUM_FILE := $(VENV)/chromium-path

# Everything from the lock file, hash-checked and without resolving anything: torch is the CPU
# wheel (2.13.0+cpu on x86-64 Linux, PyPI's CPU-only 2.13.0 elsewhere), so no CUDA build can be
# pulled in. Where pip's configured indexes lack the CPU wheel, the second try adds PyTorch's CPU
# index. pip byte-compiles everything it installs: where PYTHONDONTWRITEBYTECODE is set, nothing
# else would, and every kernel would compile torch's modules again (nbval 78 s a pass, not 50 s).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock \
	  || $(BIN)/python -m pip install --quiet --require-hashes --no-deps \
	       --extra-index-url $(TORCH_INDEX) -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (convscope)" >/dev/null
	touch $(STAMP)

# JupyterLab with jupyterlab-rise (a dependency): any notebook opens as a live slideshow
# (toolbar: "Render as slideshow"), its widgets working.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

# The browser is found (or installed) first: a machine without one stops in seconds.
test:
	@start=$$(date +%s); \
	for stage in env browser lint unit notebooks ui; do \
	  begun=$$(date +%s); \
	  $(MAKE) --no-print-directory $$stage || exit 1; \
	  echo "stage $$stage: $$(( $$(date +%s) - begun )) s"; \
	done; \
	echo "suite time: $$(( $$(date +%s) - start )) s"

env: $(STAMP)

browser: $(STAMP)
	bash scripts/find_chromium.sh $(CHROMIUM_FILE) $(BIN)/python

# Style, and the package's structure: layers import only downwards, no cycles, no imports
# hidden in functions, no private names across modules (tests/test_architecture.py).
lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_architecture.py

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/browser -n $(JOBS) --dist worksteal

# Every notebook in JupyterLab in headless Chromium (Debian's chromium; screenshots in build/ui).
ui: browser
	@start=$$(date +%s); \
	CONVSCOPE_CHROMIUM=$$(cat $(CHROMIUM_FILE)) $(BIN)/python -m pytest tests/browser \
	  -n $(JOBS) --dist worksteal && \
	echo "browser tests: $$(( $$(date +%s) - start )) s for seven notebooks"

# Strict nbval (stored outputs compared), twice in a row: the notebooks must be deterministic,
# the second time under another CPU setting. Within a pass the notebooks are shared among the
# workers, each notebook in one kernel.
NBVAL := $(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with \
	tests/sanitize.cfg -p no:cacheprovider -n $(JOBS) --dist loadfile notebooks
notebooks: $(STAMP)
	@echo "nbval pass 1: this CPU's own kernels, one thread per worker"
	$(NBVAL)
	@echo "nbval pass 2: $(OTHER_CPU)"
	env $(OTHER_CPU) $(NBVAL)

run: $(STAMP)
	$(BIN)/python -m convscope run $(NB) $(PARAMS) --out build

# Every conv/pool layer of the deconvnet lesson, every digit class of the saliency lesson, every
# method of lesson 07.
gallery: $(STAMP)
	$(BIN)/python -m convscope run 05 --grid layer=conv1,pool1,conv2,pool2,conv3,pool3 --out build
	$(BIN)/python -m convscope run 06 --grid class_name=0,1,2,3,4,5,6,7,8,9 --out build
	$(BIN)/python -m convscope run 07 --grid method=gradient,deconvnet,guided_backprop,grad_cam,guided_grad_cam,occlusion,smoothgrad,integrated_gradients --out build

# Re-execute committed notebooks in place after editing them (NB=02 for one); widget state is not
# stored: it is volatile and would carry every widget figure as well.
outputs: $(STAMP)
	$(BIN)/python -m convscope outputs $(NB)

# After editing only markdown: the slide types, every figure's alt text (the sentence after it)
# and its storage (a palette PNG where nothing visible is lost) set again, without re-executing.
describe: $(STAMP)
	$(BIN)/python -m convscope outputs --text-only $(NB)

# Students' copies (nbgrader's release, in build/student): each exercise's solution a stub,
# its hidden checks and every output removed. `make grade SUBMISSIONS=folder` autogrades a
# folder of <student>/<lesson>.ipynb: build/grades/scores.csv and each student's feedback.
SUBMISSIONS ?= submissions
student: $(STAMP)
	$(BIN)/python -m convscope student $(NB) --out build/student

grade: $(STAMP)
	$(BIN)/python -m convscope grade $(SUBMISSIONS) $(NB) --out build/grades

# A reveal.js deck of every executed notebook in build/slides/, opening offline: reveal.js,
# MathJax, require.js and jQuery come from their npm packages (fetched once, at build time).
slides: $(STAMP)
	$(BIN)/python -m convscope slides $(NB) --out build/slides

# A JupyterHub for a class on this machine (README: "A course server"), its proxy from npm.
# HUB_FLAGS: e.g. --port 8001 --group ml-course, or --accounts rehearsal to try it out alone.
HUB_FLAGS ?=
hub: $(STAMP)
	$(BIN)/python -m convscope hub $(HUB_FLAGS)

bench: $(STAMP)
	$(BIN)/python bench/bench_digits.py
	$(BIN)/python bench/bench_shapes.py
	$(BIN)/python bench/bench_fully_convolutional.py
	$(BIN)/python bench/bench_saliency.py
	$(BIN)/python bench/bench_methods.py
	$(BIN)/python bench/bench_imagenet.py
	$(BIN)/python bench/bench_precision.py
	$(BIN)/python bench/bench_lessons.py
	$(BIN)/python bench/bench_hub.py

# Refresh requirements.lock and environment.yml from pyproject.toml (pip-compile, in a scratch
# environment under build/); run `make test` on the result before committing it.
lock:
	$(PYTHON) scripts/lock.py

# How far each printed number moves between CPU settings (every notebook under each).
spread: $(STAMP)
	$(BIN)/python scripts/measure_spread.py

clean:
	rm -rf build
