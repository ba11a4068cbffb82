#!/usr/bin/env bash
# The build enforces the layer order (CMakeLists.txt, CAIRN_LAYER_DEPS_<layer>; docs/design.md): a layer sees only
# itself and the layers below it. Preprocessed as the handlers layer is compiled, an include of the zarr layer
# resolves and one of the checkpoint layer (above it) does not.
#   layer_order_test.sh <c++ compiler> <source dir> <binary dir>
set -euo pipefail
cxx=$1
src=$2
bin=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-std=c++20 -E -o /dev/null -I "$src/include" -I "$bin/layers/handlers")

printf '#include "zarr/zarr_array.h"\n#include "item/array_storage.h"\n' > "$work/down.cc"
"$cxx" "${flags[@]}" "$work/down.cc"

printf '#include "checkpoint/layout.h"\n' > "$work/up.cc"
if "$cxx" "${flags[@]}" "$work/up.cc" 2> "$work/error"; then
  echo "FAIL: a file of the handlers layer can include checkpoint/layout.h" >&2
  exit 1
fi
grep -q "checkpoint/layout.h" "$work/error" || { cat "$work/error" >&2; exit 1; }

# Every layer's own headers stay within what it may include.
for root in "$bin"/layers/*/; do
  layer=$(basename "$root")
  for header in "$src"/src/"$layer"/*.h "$src"/src/"$layer"/*/*.h; do
    [ -e "$header" ] || continue
    relative=${header#"$src/src/"}
    printf '#include "%s"\n' "$relative" > "$work/header.cc"
    if ! "$cxx" -std=c++20 -E -o /dev/null -I "$src/include" -I "$root" $(pkg-config --cflags-only-I ompi 2>/dev/null) \
        "$work/header.cc" 2> "$work/error"; then
      echo "FAIL: $relative includes what the $layer layer may not:" >&2
      cat "$work/error" >&2
      exit 1
    fi
  done
done
echo "PASS"
