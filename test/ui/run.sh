#!/bin/sh
# Runs the UI tests (ctest's entry point; also by hand:
#   SOLDR_BIN=build/soldr sh test/ui/run.sh).
# Installs playwright-core from package-lock.json first when it is missing.
set -eu
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node/npm not found: run scripts/install-deps.sh --test" >&2
    exit 1
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
    # One npm ci at a time when several build trees run their tests at once.
    (
        flock 9
        [ -f node_modules/playwright-core/package.json ] ||
            npm ci --no-audit --no-fund --loglevel=error >&2
    ) 9>"${TMPDIR:-/tmp}/soldr-ui-npm-ci.lock"
fi
exec node --test ./*.test.mjs
