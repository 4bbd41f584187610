#!/usr/bin/env bash
# Everything Moat needs on a fresh Debian machine, done idempotently:
# Node >= 22.19 (Node 24 LTS into .moat/tools/ when the machine's is older), pnpm (pinned),
# dependencies from the lockfile, redis-server, a build. Nothing is installed system-wide but
# the Debian packages.
#   scripts/bootstrap.sh            for running Moat
#   scripts/bootstrap.sh --test     also the tools the test suites use (Postfix, swaks)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_tools=false
[ "${1:-}" = "--test" ] && want_test_tools=true

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# Node >= 22.19 and pnpm, from .moat/tools/ when the machine's are missing or too old.
. scripts/lib/runtime.sh
moat_runtime
say "node $(node --version) ($(command -v node)), pnpm $(pnpm --version)"

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
