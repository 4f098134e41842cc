# Two entry points a new user needs: `make demo` and `make test`.
# Both create the virtualenv in .venv on first use; nothing is installed system-wide.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint audit install clean bench browser fonts translations example-env lock

# Every dependency at the version requirements.lock pins (make lock refreshes it), with
# the extras a developer needs: the tests, the linters, the sandbox's SMTP server,
# uvloop, the /docs assets, and what `make bench` draws and compares with.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test,dev,sandbox,speed,docs,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP) fonts
	$(BIN)/dispatcher demo

test: $(STAMP) fonts browser
	$(BIN)/pytest

# Faxes are drawn in WenQuanYi Micro Hei, Debian's fonts-wqy-microhei (Latin, Greek,
# Cyrillic and Chinese in one face); with no such font, and no DISPATCHER_FAX__FONT, the
# dispatcher refuses faxes. Installed with apt-get when run as root.
WQY_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
fonts:
	@test -n "$$DISPATCHER_FAX__FONT" || test -f $(WQY_FONT) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's fonts-wqy-microhei, the font faxes are drawn in"; \
	    apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && \
	        apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1; } || \
	      echo "could not install fonts-wqy-microhei: faxes are refused until it is installed"; \
	  else \
	    echo "no font for faxes: run 'apt-get install fonts-wqy-microhei' as root" \
	      "(or set DISPATCHER_FAX__FONT to a TrueType font with Chinese)"; \
	  fi; \
	}

# The browser tests drive Debian's chromium; Playwright cannot download a browser here.
# A Chinese font too (the fonts target's), so the Chinese pages' screenshots show
# characters, not boxes.
browser: fonts
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wqy || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium and a Chinese font for the browser tests"; \
	    apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && \
	        apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1; } || \
	      echo "could not install chromium: the browser tests will be skipped"; \
	  else \
	    echo "chromium is not installed (apt-get install chromium): browser tests will be skipped"; \
	  fi; \
	}

# The interface's messages: extract them from the code and templates (babel.cfg), and add
# the new ones to each language's catalogue (dispatcher/locales/<lang>/LC_MESSAGES/
# messages.po) to be translated; a test fails while any is untranslated.
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k plural_forms:1,2 --no-location \
	  --sort-output --omit-header -o var/messages.pot .
	$(BIN)/pybabel update -i var/messages.pot -d dispatcher/locales -D messages \
	  --no-fuzzy-matching --ignore-obsolete --width 100

# config/example.env: every setting with its default, written from the settings classes
# (a test fails when they disagree).
example-env: $(STAMP)
	$(BIN)/python -m dispatcher.settings_env > config/example.env

# ruff (with its S rules, the security checks bandit made), mypy (strict, over the
# package, the tests and the benchmarks) and the import contracts of pyproject.toml: the
# layers, the store behind the service layer.
lint: $(STAMP)
	$(BIN)/ruff check dispatcher tests bench
	$(BIN)/ruff format --check dispatcher tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# requirements.lock: every dependency and extra of pyproject.toml pinned, for Python 3.11
# and later on any platform. Run after changing pyproject.toml's dependencies; pins that
# still fit are kept. `make lock LOCK_FLAGS=--upgrade` takes the newest releases instead.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
	  --custom-compile-command 'make lock' --quiet $(LOCK_FLAGS) -o requirements.lock

# Known vulnerabilities in the installed dependencies. It needs the vulnerability data on
# the internet (PyPI's JSON API or OSV); --strict fails when a package could not be
# checked, so an offline machine fails here instead of passing having checked nothing.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --progress-spinner off --skip-editable

# Every scenario side by side with the limit measured in the same run: the table on
# standard output and in var/bench/results.md, JSON and a plot per scenario beside it.
# `make bench ARGS=--quick` runs small sizes in under a minute.
bench: $(STAMP) fonts
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) var
