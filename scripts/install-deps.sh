#!/bin/sh
# Installs the Debian packages soldr needs that are not installed yet.
#   scripts/install-deps.sh          what building and running soldr needs
#   scripts/install-deps.sh --test   that, plus what the test suite needs
# Uses sudo when not root. Installs nothing when everything is present.
set -eu

build="build-essential cmake pkg-config libsqlite3-dev libuv1-dev libmbedtls-dev \
libcjson-dev libcurl4-openssl-dev node-llhttp"
test="python3 libcmocka-dev sqlite3 chromium nodejs systemd"
# npm from Debian only when there is none (NodeSource's nodejs bundles its own).
command -v npm >/dev/null 2>&1 || test="$test npm"

want="$build"
case "${1:-}" in
--test) want="$build $test" ;;
"") ;;
*) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
