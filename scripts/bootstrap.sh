#!/usr/bin/env bash
# Everything Moat needs on a fresh Debian machine, done idempotently:
# Node >= 20 (checked), pnpm (pinned), dependencies from the lockfile, redis-server, a build.
#   scripts/bootstrap.sh            for running Moat
#   scripts/bootstrap.sh --test     also the tools the test suites use (Postfix, swaks)
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
want_test_tools=false
[ "${1:-}" = "--test" ] && want_test_tools=true

say() { printf 'bootstrap: %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION"
  if ! npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null 2>&1; then
    npm install --silent --prefix "$PWD/.moat/tools" "pnpm@$PNPM_VERSION" >/dev/null
    export PATH="$PWD/.moat/tools/node_modules/.bin:$PATH"
  fi
fi

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server)
if $want_test_tools; then
  command -v smtp-source >/dev/null || apt_packages+=(postfix)
  command -v swaks >/dev/null || apt_packages+=(swaks)
  [ -x /usr/bin/chromium ] || apt_packages+=(chromium)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${apt_packages[*]}; install them with: sudo apt-get install -y ${apt_packages[*]}"
    exit 1
  fi
  say "installing Debian packages: ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks how it should be set up; Moat's tests run private instances, so: no configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

say "installing dependencies (pnpm install --frozen-lockfile)"
pnpm install --frozen-lockfile --reporter=silent
say "building"
pnpm exec turbo run build --output-logs=errors-only >/dev/null
