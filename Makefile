# Two commands on a fresh Debian machine: `make run` and `make test`.
VENV      := .venv
PY        := $(VENV)/bin/python
PIP       := $(VENV)/bin/pip
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: audio I/O and speech synthesis for the daemon, demo music (CC BY-SA) ...
APT_RUN   := python3-venv python3-dev portaudio19-dev libspeexdsp1 espeak-ng sox libsox-fmt-all \
             singularity-music
# Node.js may come from elsewhere (its own npm); Debian's npm then conflicts with it.
APT_NODE  := $(shell command -v npm >/dev/null 2>&1 || echo nodejs npm)
# ... and for tests, wake-word training and eval data, and the Spotify stand-in.
APT_TEST  := $(APT_RUN) systemd $(APT_NODE) fluidsynth fluid-soundfont-gm fortunes wamerican \
             hyperrogue-music drascula-music asc-music fb-music-high warzone2100-data
PRISM     := .tools/node_modules/.bin/prism

.PHONY: run test lint check-contract deps-run deps-test clean

define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

$(VENV)/bin/activate:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The daemon, its reply voice (piper), what `heymusic enroll` needs and the music folder analysis.
$(VENV)/.stamp-run: pyproject.toml | $(VENV)/bin/activate
	$(PIP) install -q -e ".[mic,voice,enroll,analysis,rooms]"
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(VENV)/bin/activate
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[mic,voice,enroll,analysis,rooms,train,test]"
	touch $@ $(VENV)/.stamp-run

$(PRISM):
	npm install --silent --no-audit --no-fund --prefix .tools @stoplight/prism-cli@5

deps-run:
	$(call apt_install,$(APT_RUN))
	@$(MAKE) --no-print-directory $(VENV)/.stamp-run

deps-test:
	$(call apt_install,$(APT_TEST))
	@$(MAKE) --no-print-directory $(VENV)/.stamp-test $(PRISM)

# Exit status 2 = a problem already explained in one line (e.g. no microphone): no make noise after it.
# Without Spotify and local music, `catalog demo` imports the demo library first.
run: deps-run
	@$(VENV)/bin/heymusic catalog demo
	@$(VENV)/bin/heymusic run $(ARGS) || [ $$? -eq 2 ]

lint: deps-test
	$(VENV)/bin/ruff check daemon tests bench export_onnx.py
	$(VENV)/bin/ruff format --check daemon tests bench export_onnx.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Two workers, a test file each at a time (its module fixtures, ports and caches stay in one
# process): 11 min here against 17.5 min in one. A worker that crashes ends the run at once
# (replaced, it had left the run waiting for ever).
test: lint
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --max-worker-restart 0 --durations=10 tests

check-contract: deps-test
	python3 ../shared/checks/contract.py

clean:
	rm -rf $(VENV) .tools
