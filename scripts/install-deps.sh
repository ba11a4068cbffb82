#!/usr/bin/env bash
# Installs every Debian package cairn's build, tests and examples need. Idempotent: when all packages are
# already present it does nothing (no apt-get update, no network), so `make test` can call it every time.
#   --bench   also the benchmark's peers and chart: python3-h5py, python3-matplotlib
#   --fuzz    also clang and its runtimes for `make fuzz` / `make fuzz-corpus` (libFuzzer, ASan, UBSan):
#             clang, libclang-rt-14-dev
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libzstd-dev nlohmann-json3-dev libmsgpack-dev
  libgtest-dev libgmock-dev
  libopenmpi-dev openmpi-bin
  python3 python3-numpy python3-zarr python3-numcodecs
  python3-dev pybind11-dev python3-pytest python3-venv python3-pip python3-torch
)

for arg in "$@"; do
  case "$arg" in
    --bench) PACKAGES+=(python3-h5py python3-matplotlib) ;;
    --fuzz) PACKAGES+=(clang libclang-rt-14-dev) ;;
    *) echo "install-deps: unknown option $arg (known: --bench, --fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
