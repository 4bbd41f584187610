#!/usr/bin/env bash
# Everything Moat needs on a fresh Debian machine, done idempotently:
# Node >= 22.19 (Node 24 LTS into .moat/tools/ when the machine's is older), pnpm (pinned),
# dependencies from the lockfile, redis-server, a build. Nothing is installed system-wide but
# the Debian packages.
#   scripts/bootstrap.sh            for running Moat
#   scripts/bootstrap.sh --test     also the tools the test suites use (Postfix, swaks, ClamAV,
#                                   rspamd, SpamAssassin's spamd, OpenLDAP, HAProxy, promtool,
#                                   yamllint, buildah/podman/mmdebstrap)
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
# True when `name` is on PATH or in an sbin directory (a non-root PATH may lack /usr/sbin).
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have redis-server || apt_packages+=(redis-server)
if $want_test_tools; then
  have smtp-source || apt_packages+=(postfix)
  # redis-cli (--cluster create / reshard) for the testkit's Redis Cluster.
  have redis-cli || apt_packages+=(redis-tools)
  have swaks || apt_packages+=(swaks)
  [ -x /usr/bin/chromium ] || apt_packages+=(chromium)
  # Filtering daemons the testkit starts itself (its own config, loopback, a free port):
  # clamd, sigtool (package clamav: it makes the test signature database), rspamd,
  # SpamAssassin's spamd, and OpenLDAP's slapd with its clients. clamav-daemon brings
  # clamav-freshclam; nothing here runs freshclam (no database can be downloaded).
  have clamd || apt_packages+=(clamav-daemon)
  have sigtool || apt_packages+=(clamav)
  have rspamd || apt_packages+=(rspamd)
  have spamd || apt_packages+=(spamd)
  have slapd || apt_packages+=(slapd)
  have ldapsearch || apt_packages+=(ldap-utils)
  # Deployment files, checked by the tools that read them: HAProxy (haproxy -c and a real one in
  # front of two edges), Prometheus's promtool (alert rules), yamllint; and the container image,
  # built with buildah on a Debian root made by mmdebstrap (no registry is reachable).
  have haproxy || apt_packages+=(haproxy)
  have promtool || apt_packages+=(prometheus)
  have yamllint || apt_packages+=(yamllint)
  have buildah || apt_packages+=(buildah)
  have podman || apt_packages+=(podman uidmap)
  have mmdebstrap || apt_packages+=(mmdebstrap)
  # Kubernetes manifests are rendered with kubectl's kustomize (Debian: kubernetes-client).
  have kubectl || apt_packages+=(kubernetes-client)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${apt_packages[*]}; install them with: sudo apt-get install -y ${apt_packages[*]}"
    exit 1
  fi
  say "installing Debian packages: ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Service packages start their daemon on install; the tests start their own instead. While
  # apt runs, a policy-rc.d that answers 101 ("action forbidden") keeps every service down;
  # it is removed afterwards (also on failure) unless it was already there.
  policy_rc=/usr/sbin/policy-rc.d own_policy_rc=false
  if [ ! -e "$policy_rc" ]; then
    own_policy_rc=true
    printf '#!/bin/sh\n# scripts/bootstrap.sh: no service starts while it installs packages\nexit 101\n' >"$policy_rc"
    chmod 755 "$policy_rc"
    trap 'rm -f "$policy_rc"' EXIT
  fi
  # Postfix asks how it should be set up; Moat's tests run private instances, so: no configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # Likewise slapd: no system directory (the LDAP tests run their own slapd.conf).
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
  if $own_policy_rc; then
    rm -f "$policy_rc"
    trap - EXIT
  fi
fi

say "installing dependencies (pnpm install --frozen-lockfile)"
pnpm install --frozen-lockfile --reporter=silent
say "building"
pnpm exec turbo run build --output-logs=errors-only >/dev/null
