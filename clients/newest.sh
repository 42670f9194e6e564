#!/usr/bin/env bash
# The client kits against the newest official SDKs: installs the newest JS SDKs (npm) and
# Python SDKs (PyPI) into a scratch folder, runs the kits' tests with them, and says, per
# SDK, the pinned and newest versions and whether the tests still pass.
#   clients/newest.sh [scratch dir]     (after ./dev.sh test has installed the rest once)
# Nothing in the repository changes: the pinned versions stay what the suite runs.
set -uo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${1:-$(mktemp -d -t viseme-newest.XXXXXX)}
VENV=.venv
PYTEST=("$VENV/bin/pytest" -q -p no:cacheprovider)
mkdir -p "$SCRATCH/js" "$SCRATCH/py"
echo "newest.sh: scratch in $SCRATCH" >&2

# JS: the demo-vendor bundle, rebuilt from the newest releases.
cp clients/js/demo-vendor/package.json clients/js/demo-vendor/build.mjs "$SCRATCH/js/"
esbuild=$(node -p 'require("./clients/js/demo-vendor/package.json").devDependencies.esbuild')
js_ok=true
(cd "$SCRATCH/js" && npm install --silent --no-audit --no-fund --ignore-scripts --no-save \
    @elevenlabs/client@latest openai@latest @google/genai@latest "esbuild@$esbuild" \
    && node build.mjs >&2) || js_ok=false

# Python: the newest SDKs (and what they need) in front of the suite's own environment.
py_ok=true
"$VENV/bin/pip" install -q --upgrade --target "$SCRATCH/py" elevenlabs openai google-genai \
    || py_ok=false

pinned_js() { node -p "require('./clients/js/demo-vendor/package-lock.json').packages['node_modules/$1'].version"; }
newest_js() { node -p "require('$SCRATCH/js/node_modules/$1/package.json').version" 2>/dev/null || echo "?"; }
pinned_py() { "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
newest_py() { PYTHONPATH="$SCRATCH/py" "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo "?"; }

# One line per SDK: the tests that run it, and their verdict.
results=()
check() {  # name pinned newest ok-to-run env-prefix pytest-args...
    local name=$1 pinned=$2 newest=$3 runnable=$4 prefix=$5
    shift 5
    local verdict="broke" log
    log="$SCRATCH/$(printf '%s' "$name" | tr -c 'A-Za-z0-9' _).log"
    if [ "$runnable" = true ] && env $prefix "${PYTEST[@]}" "$@" >"$log" 2>&1; then
        verdict="ok"
    elif [ "$runnable" != true ]; then
        verdict="not installed"
    fi
    results+=("$(printf '%-22s %-10s %-10s %s' "$name" "$pinned" "$newest" "$verdict")")
}

js_env="VISEME_GATEWAY_TEST_JS_VENDOR=$SCRATCH/js/dist"
js_tests=(tests/test_demo_talk.py tests/test_client_js_snippets.py)
check "@elevenlabs/client" "$(pinned_js @elevenlabs/client)" "$(newest_js @elevenlabs/client)" \
    "$js_ok" "$js_env" "${js_tests[@]}" -k elevenlabs
check "openai (JS)" "$(pinned_js openai)" "$(newest_js openai)" "$js_ok" "$js_env" \
    "${js_tests[@]}" -k openai
check "@google/genai" "$(pinned_js @google/genai)" "$(newest_js @google/genai)" "$js_ok" \
    "$js_env" "${js_tests[@]}" -k gemini
py_env="PYTHONPATH=$SCRATCH/py"
check "elevenlabs (Python)" "$(pinned_py elevenlabs)" "$(newest_py elevenlabs)" "$py_ok" \
    "$py_env" tests/test_client_python.py -k elevenlabs
check "openai (Python)" "$(pinned_py openai)" "$(newest_py openai)" "$py_ok" "$py_env" \
    tests/test_client_python.py -k openai
check "google-genai (Python)" "$(pinned_py google-genai)" "$(newest_py google-genai)" "$py_ok" \
    "$py_env" tests/test_client_python.py -k genai

printf '%-22s %-10s %-10s %s\n' SDK pinned newest tests
printf '%s\n' "${results[@]}"
echo "logs: $SCRATCH/*.log" >&2
for line in "${results[@]}"; do
    case "$line" in *broke | *"not installed") exit 1 ;; esac
done
