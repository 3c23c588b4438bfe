#!/usr/bin/env bash
# Keel set-up wrapper: installs what a fresh Debian machine with only the Rust toolchain lacks,
# then runs the requested job.
#
#   ./keel.sh test      build and run every test of the workspace
#   ./keel.sh devnet    build Keel (release) and run `keel devnet`: the embedded L1, a primary
#                       and a standby sequencer, provers, demo accounts and a load, until a few
#                       batches are proven and committed; extra arguments go to `keel devnet`
#
# System packages: libclang-dev (rocksdb's bindgen), mesa-vulkan-drivers + libvulkan1 (the
# software GPU, Mesa lavapipe). They are installed with apt-get only when missing.
# npm packages (contracts/package.json, pinned by its lock file): solc-js 0.8.19, which compiles
# the contracts, and anvil, the EVM node of the contract tests. `npm ci` runs only when
# contracts/node_modules is missing or older than the lock file.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(libclang-dev mesa-vulkan-drivers libvulkan1 pkg-config)

ensure_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "keel.sh: installing missing system packages: ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_contracts() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "keel.sh: npm is needed for the contracts (solc-js, anvil); install Node.js" >&2
        exit 1
    fi
    if [ ! -d contracts/node_modules ] || [ contracts/package-lock.json -nt contracts/node_modules ]; then
        echo "keel.sh: installing the contracts' npm packages (solc 0.8.19, anvil, an OpenAPI validator)" >&2
        (cd contracts && npm ci --no-audit --no-fund --loglevel=error)
        touch contracts/node_modules
    fi
    # the compiled artifacts that the Rust bindings read must be what the sources compile to
    node contracts/build.mjs --check >/dev/null
}

# A compilation cache, when this machine has one (`.ci/run` installs sccache).
if [ -z "${RUSTC_WRAPPER:-}" ] && command -v sccache >/dev/null 2>&1; then
    export RUSTC_WRAPPER=sccache
fi

cmd="${1:-}"
shift || true
case "$cmd" in
    test)
        ensure_packages
        ensure_contracts
        # keel-benches holds no tests; excluding it keeps its peers (msm-webgpu and a second wgpu
        # tree, k256, criterion) out of the test build. CI's clippy still compiles the benches.
        cargo test --workspace --exclude keel-benches --locked "$@"
        ;;
    devnet)
        ensure_packages
        # the devnet's L1 is anvil, with the contracts compiled by solc-js (both from npm)
        ensure_contracts
        cargo build --release --locked --bin keel
        exec "${CARGO_TARGET_DIR:-target}/release/keel" devnet "$@"
        ;;
    *)
        echo "usage: ./keel.sh test [cargo test args] | ./keel.sh devnet [keel devnet args]" >&2
        exit 2
        ;;
esac
