// The program from the core issue, verbatim: it must build against the installed package and run.
#include <cairn/cairn.h>
#include <cassert>
int main() {
  using cairn::Array, cairn::ArraySpec, cairn::DType, cairn::Tree;
  Tree state = Tree::Dict({
      {"params", Tree::Dict({{"w", Array::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6})},
                             {"b", Array::Zeros(DType::kBFloat16, {3})}})},
      {"step", Tree::Scalar(int64_t{42})},
      {"layers", Tree::List({Array::FromVector<int32_t>({4}, {0, 1, 2, 3}), Tree::None()})}});
  cairn::Checkpointer ckptr(std::make_unique<cairn::StandardCheckpointHandler>());
  ckptr.save("/tmp/quickstart/1", cairn::args::StandardSave{state}, {.custom_metadata = {{"note", "first"}}});
  Tree back = ckptr.restore("/tmp/quickstart/1");
  assert(back == state);
  Tree target = Tree::Dict({
      {"params", Tree::Dict({{"w", ArraySpec{DType::kFloat64, {2, 4}}}, {"b", ArraySpec{DType::kFloat32, {3}}}})},
      {"step", ArraySpec{DType::kInt64, {}}},
      {"layers", Tree::List({ArraySpec{DType::kInt32, {4}}, Tree::None()})}});
  Tree padded = ckptr.restore("/tmp/quickstart/1", cairn::args::StandardRestore{target, /*strict=*/false});
  assert(padded["params"]["w"].array().data<double>()[3] == 0.0);
  assert(ckptr.metadata("/tmp/quickstart/1").custom_metadata["note"] == "first");
  ckptr.save("/tmp/quickstart/1", cairn::args::StandardSave{state}, {.force = true});
}
