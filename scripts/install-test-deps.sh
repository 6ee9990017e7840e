#!/usr/bin/env bash
# Install everything the end-to-end tests need, idempotently:
#   apt: chromium espeak-ng sox cmake libclang-dev pkg-config (+ nodejs/npm if node is absent)
#   npm: tests/js (npm ci from the lock file; npm install without one)
#   python: python3 with venv (+ python3-venv on Debian) for the offline whisper model build
# Fast when everything is present: no apt-get update, no npm run.
# Environment: SKIP_APT=1 skips the apt step; FORCE_NPM=1 reinstalls the npm modules.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JS_DIR="$ROOT/tests/js"
APT_PACKAGES=(chromium espeak-ng sox cmake libclang-dev pkg-config)
NODE_MIN_MAJOR=20

say() { printf 'install-test-deps: %s\n' "$*"; }
did=()

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    say "need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- apt ---------------------------------------------------------------------------------
if [ "${SKIP_APT:-0}" != 1 ]; then
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian/Ubuntu system (no dpkg-query); install by hand: ${APT_PACKAGES[*]}" >&2
    exit 1
  fi
  missing=()
  for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "apt: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    did+=("apt install ${missing[*]}")
  else
    say "apt: all present (${APT_PACKAGES[*]})"
  fi
fi

# --- python venv (whisper tiny.en offline build) -----------------------------------------
# `kibitz-agent models fetch tiny.en` builds the model in a private virtualenv when the
# upstream download is unreachable; Debian's python3 needs python3-venv for that.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "${SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
    say "apt: installing python3 python3-venv (for the whisper model build)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
    did+=("apt install python3-venv")
  else
    say "python3 with the venv module is required (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
else
  say "python: $(python3 --version 2>&1) with venv"
fi

# --- node --------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  say "node is not installed; playwright-core needs node >= $NODE_MIN_MAJOR" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt "$NODE_MIN_MAJOR" ]; then
  say "node $(node --version) is too old; playwright-core needs node >= $NODE_MIN_MAJOR" >&2
  exit 1
fi

# --- npm ---------------------------------------------------------------------------------
npm_ok() {
  [ -f "$JS_DIR/node_modules/playwright-core/package.json" ] &&
    [ -f "$JS_DIR/node_modules/peerjs/dist/peerjs.min.js" ] &&
    [ -f "$JS_DIR/node_modules/peer/dist/bin/peerjs.js" ] &&
    [ -f "$JS_DIR/node_modules/peerjs-js-binarypack/package.json" ] &&
    # node_modules must not be older than the lock file
    { [ ! -f "$JS_DIR/package-lock.json" ] ||
      [ ! "$JS_DIR/package-lock.json" -nt "$JS_DIR/node_modules/.package-lock.json" ]; }
}
if [ "${FORCE_NPM:-0}" = 1 ] || ! npm_ok; then
  if [ -f "$JS_DIR/package-lock.json" ]; then
    say "npm: npm ci in tests/js"
    (cd "$JS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    did+=("npm ci")
  else
    say "npm: npm install in tests/js (no lock file)"
    (cd "$JS_DIR" && npm install --no-audit --no-fund --loglevel=error)
    did+=("npm install")
  fi
else
  say "npm: tests/js/node_modules up to date"
fi

# --- check -------------------------------------------------------------------------------
chromium_bin="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium_bin" ]; then
  say "chromium not found at $chromium_bin (set CHROMIUM)" >&2
  exit 1
fi
say "node $(node --version), $("$chromium_bin" --version 2>/dev/null | head -n1)"
if [ "${#did[@]}" -gt 0 ]; then
  say "done: ${did[*]}"
else
  say "done: nothing to do"
fi
