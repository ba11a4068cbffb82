#!/usr/bin/env bash
# Installs cairn from the build tree into a scratch prefix, builds an outside project against it with
# find_package(cairn CONFIG REQUIRED), and runs it.
set -euo pipefail
source_dir=$1
build_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" > /dev/null
cmake -S "$source_dir/tests/install/consumer" -B "$scratch/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" > /dev/null
cmake --build "$scratch/build" > /dev/null
# The program saves to a fixed path without force, as the issue wrote it: start from nothing there.
rm -rf /tmp/quickstart/1 /tmp/quickstart/1.orbax-checkpoint-tmp
"$scratch/build/app"
echo "installed package builds and runs the quickstart program"
