#!/usr/bin/env bash
# An args type with no handler does not compile (include/cairn/checkpoint_args.h, HasHandler): an ArgsBase type
# without `using Handler = ...;`, and a hand-written CheckpointArgs without one handed to args::Item or
# Composite::add. The same files with a Handler compile, so the failures are the missing handler and nothing else.
#   args_need_a_handler_test.sh <c++ compiler> <source dir>
set -euo pipefail
cxx=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-std=c++20 -fsyntax-only -I "$src/include")

# $1: the name of the case; $2: the Handler declaration ("" for none); $3: what uses the args type.
write() {
  cat > "$work/$1.cc" <<CASE
#include <cairn/cairn.h>
struct MySave : cairn::args::ArgsBase<MySave> {
  $2
  std::string name() const override { return "MySave"; }
};
struct RawSave : cairn::CheckpointArgs {
  $2
  std::unique_ptr<cairn::CheckpointArgs> Clone() const override { return std::make_unique<RawSave>(*this); }
  std::unique_ptr<cairn::CheckpointHandler> DefaultHandler() const override { return nullptr; }
  std::string name() const override { return "RawSave"; }
};
int main() { $3; }
CASE
}

expect_failure() {  # $1: case name, $2: text the error must contain
  if "$cxx" "${flags[@]}" "$work/$1.cc" 2> "$work/$1.err"; then
    echo "FAIL: $1 compiled although its args type names no handler" >&2
    exit 1
  fi
  grep -q "$2" "$work/$1.err" || { echo "FAIL: $1 failed for another reason:" >&2; cat "$work/$1.err" >&2; exit 1; }
}

handler="using Handler = cairn::JsonCheckpointHandler;"
for use in "MySave a; (void)a" \
           "auto item = cairn::args::Item(RawSave{}); (void)item" \
           "cairn::args::Composite c; c.add(\"x\", RawSave{})"; do
  write with_handler "$handler" "$use"
  "$cxx" "${flags[@]}" "$work/with_handler.cc" || { echo "FAIL: '$use' does not compile with a Handler" >&2; exit 1; }
done

write argsbase "" "MySave a; (void)a"
expect_failure argsbase "names the handler"
write item "" "auto item = cairn::args::Item(RawSave{}); (void)item"
expect_failure item "HasHandler"
write composite_add "" "cairn::args::Composite c; c.add(\"x\", RawSave{})"
expect_failure composite_add "HasHandler"
echo "PASS"
