#!/usr/bin/env bash
# Installs every Debian package cairn's build, tests and examples need. Idempotent: when all packages are
# already present it does nothing (no apt-get update, no network), so `make test` can call it every time.
#   --bench   also the benchmark's peers and chart: python3-h5py, python3-matplotlib
#   --fuzz    also clang and its runtimes for `make fuzz` / `make fuzz-corpus` (libFuzzer, ASan, UBSan):
#             clang, libclang-rt-14-dev
#   --print-venv   print the interop environment's directory (see below) and do nothing else
#
# Then the interop environment: a virtual environment of Debian's /usr/bin/python3 with the real Orbax, TensorStore
# and JAX from PyPI, pinned in scripts/requirements-interop.txt. It lives outside the clone, in
# ${CAIRN_CACHE_DIR:-~/.cache/cairn}/venv-<hash of the requirements file>, so clean clones reuse it; it is built once.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REQUIREMENTS="$ROOT/scripts/requirements-interop.txt"
CACHE_DIR="${CAIRN_CACHE_DIR:-$HOME/.cache/cairn}"
VENV="$CACHE_DIR/venv-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libzstd-dev libblosc-dev libxxhash-dev nlohmann-json3-dev libmsgpack-dev
  libcurl4-openssl-dev libssl-dev
  libgtest-dev libgmock-dev
  libopenmpi-dev openmpi-bin
  python3 python3-numpy python3-zarr python3-numcodecs
  python3-dev pybind11-dev python3-pytest python3-venv python3-pip python3-torch
)

for arg in "$@"; do
  case "$arg" in
    --print-venv) echo "$VENV"; exit 0 ;;
    --bench) PACKAGES+=(python3-h5py python3-matplotlib) ;;
    --fuzz) PACKAGES+=(clang libclang-rt-14-dev) ;;
    *) echo "install-deps: unknown option $arg (known: --bench, --fuzz, --print-venv)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# One builder at a time (two clones running `make test` at once): the others wait, then find it built.
mkdir -p "$CACHE_DIR"
exec 9> "$CACHE_DIR/install.lock"
flock 9
if [ ! -x "$VENV/bin/python" ]; then
  echo "install-deps: creating the interop environment $VENV (Orbax, TensorStore, JAX from PyPI)"
  mkdir -p "$CACHE_DIR"
  # Built beside its final place and renamed when complete, so an interrupted install is never taken as done. The
  # scripts in bin/ keep the temporary path in their first line: always run `$VENV/bin/python -m <module>`.
  rm -rf "$VENV.partial"
  /usr/bin/python3 -m venv "$VENV.partial"
  "$VENV.partial/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQUIREMENTS"
  mv "$VENV.partial" "$VENV"
fi
