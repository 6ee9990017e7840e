#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs formatting, lints and every
# test (unit, property, CLI, real broker, real Chromium). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  # CI runs in a fresh clone on a machine that keeps ~/.cache: reuse compiled dependencies.
  export CARGO_TARGET_DIR="$HOME/.cache/kibitz-agent/target"
fi

echo "==> installing test dependencies"
bash scripts/install-test-deps.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "==> cargo test"
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"
