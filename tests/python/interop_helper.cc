// The C++ side of the Python interop tests (tests/python/test_interop.py):
//   cairn_py_interop save <dir>    saves the known tree with a C++ Checkpointer
//   cairn_py_interop check <dir>   restores <dir> (saved from Python) and compares it with the known tree, and its
//                                  custom_metadata with {"from": "python"}
//   cairn_py_interop check-tree <dir>   the same without the metadata (an item directory inside a manager's step)
// Prints "CAIRN-PY-INTEROP PASS" on success; anything else is a failure.
//
// The known tree: every dtype as a (2, 3) array whose element i is float32(i * 0.5 - 1) cast to the dtype (bool:
// i % 2), nested containers and Python-style scalars. test_interop.py builds the same tree with numpy.
#include <cairn/cairn.h>

#include <iostream>
#include <string>
#include <vector>

namespace {

using cairn::Array, cairn::DType, cairn::Tree;

Array Known(DType dtype) {
  std::vector<float> values(6);
  for (int i = 0; i < 6; ++i) values[i] = static_cast<float>(i) * 0.5f - 1.0f;
  if (dtype == DType::kBool) {
    Array out = Array::Allocate(DType::kBool, {2, 3});
    auto bytes = out.mutable_bytes();
    for (int i = 0; i < 6; ++i) bytes[i] = std::byte(i % 2);
    return out;
  }
  return Array::FromVector<float>({2, 3}, values).Cast(dtype);
}

Tree KnownTree() {
  const DType all[] = {DType::kBool,         DType::kInt8,      DType::kInt16,   DType::kInt32,     DType::kInt64,
                       DType::kUInt8,        DType::kUInt16,    DType::kUInt32,  DType::kUInt64,    DType::kFloat16,
                       DType::kBFloat16,     DType::kFloat32,   DType::kFloat64, DType::kComplex64, DType::kComplex128,
                       DType::kFloat8E4M3FN, DType::kFloat8E5M2};
  std::vector<Tree::Item> arrays;
  for (DType d : all) arrays.emplace_back(std::string(cairn::DTypeName(d)), Known(d));
  return Tree::Dict({
      {"arrays", Tree::Dict(arrays)},
      {"nested",
       Tree::Dict({{"layers", Tree::List({Array::FromVector<int32_t>({4}, {0, 1, 2, 3}),
                                          Tree::Dict({{"w", Array::FromVector<float>({2, 2}, {1, 2, 3, 4})}})})},
                   {"empty", Tree::None()}})},
      {"step", Tree::Scalar(int64_t{42})},
      {"lr", Tree::Scalar(0.125)},
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: cairn_py_interop save|check <dir>\n";
    return 2;
  }
  std::string mode = argv[1];
  std::string dir = argv[2];
  try {
    cairn::Checkpointer ckptr(std::make_unique<cairn::StandardCheckpointHandler>());
    if (mode == "save") {
      ckptr.save(dir, cairn::args::StandardSave{KnownTree()}, {.force = true, .custom_metadata = {{"from", "c++"}}});
    } else if (mode == "check" || mode == "check-tree") {
      Tree back = ckptr.restore(dir);
      Tree expected = KnownTree();
      if (!(back == expected)) {
        std::cout << "CAIRN-PY-INTEROP FAIL: restored\n"
                  << back.ToString() << "\nexpected\n"
                  << expected.ToString() << "\n";
        return 1;
      }
      auto meta = ckptr.metadata(dir);
      if (mode == "check" && meta.custom_metadata.value("from", "") != "python") {
        std::cout << "CAIRN-PY-INTEROP FAIL: custom_metadata " << meta.custom_metadata.dump() << "\n";
        return 1;
      }
    } else {
      std::cerr << "unknown mode " << mode << "\n";
      return 2;
    }
  } catch (const cairn::Error& e) {
    std::cout << "CAIRN-PY-INTEROP FAIL: " << cairn::ErrorCodeName(e.code()) << ": " << e.what() << "\n";
    return 1;
  }
  std::cout << "CAIRN-PY-INTEROP PASS " << mode << "\n";
  return 0;
}
