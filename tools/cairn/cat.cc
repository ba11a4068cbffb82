// cairn cat: print an array, or a slice of it, reading only the chunks the slice overlaps.
#include <cmath>
#include <complex>
#include <cstdio>
#include <iostream>

#include "cairn/cairn.h"
#include "cli.h"

namespace cairn::cli {
namespace {

constexpr const char* kHelp = R"(usage: cairn cat [--slice SLICE] [--json] [--all] DIR|FILE PARAM

Prints one array of a checkpoint (or tensor of a safetensors file), or a slice of it. PARAM is
the parameter name as `cairn info` lists it (`params.w`; in a composite step, prefixed with
the item: `state.params.w`). Only the chunks the slice overlaps are read.

  --slice SLICE   NumPy-style, one entry per dimension separated by commas: `i`, `start:stop`,
                  `start:stop:step` (step > 0), `:`; negative indices count from the end;
                  missing trailing dimensions are whole. E.g. --slice 0:4,:  --slice -1  --slice ::2
  --json          {"name", "dtype", "shape", "slice", "values"} (non-finite floats as strings)
  --all           print every element (by default arrays over 1000 elements are summarised)
)";

struct DimSlice {
  int64_t start = 0, stop = 0, step = 1;
  bool index = false;  // a single index: the dimension is dropped
};

int64_t ParseInt(const std::string& text, const std::string& slice) {
  try {
    size_t used = 0;
    int64_t v = std::stoll(text, &used);
    if (used != text.size()) throw std::invalid_argument("");
    return v;
  } catch (const std::exception&) {
    throw UsageError("bad --slice '" + slice + "': '" + text + "' is not an integer");
  }
}

std::vector<DimSlice> ParseSlice(const std::string& text, const Shape& shape) {
  std::vector<std::string> parts;
  if (!text.empty()) {
    size_t start = 0;
    while (true) {
      size_t comma = text.find(',', start);
      parts.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (parts.size() > shape.size()) {
    throw UsageError("--slice '" + text + "' has " + std::to_string(parts.size()) + " entries for a rank-" +
                     std::to_string(shape.size()) + " array");
  }
  std::vector<DimSlice> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    const int64_t n = shape[d];
    DimSlice s{0, n, 1, false};
    std::string p = d < parts.size() ? parts[d] : ":";
    p.erase(0, p.find_first_not_of(' '));
    if (!p.empty()) p.erase(p.find_last_not_of(' ') + 1);
    if (p.find(':') == std::string::npos) {
      if (p.empty()) throw UsageError("bad --slice '" + text + "': an empty entry");
      int64_t i = ParseInt(p, text);
      if (i < 0) i += n;
      if (i < 0 || i >= n) {
        throw UsageError("--slice '" + text + "': index " + p + " is out of range for dimension " +
                         std::to_string(d) + " of size " + std::to_string(n));
      }
      out.push_back({i, i + 1, 1, true});
      continue;
    }
    std::vector<std::string> f;
    size_t start = 0;
    while (true) {
      size_t colon = p.find(':', start);
      f.push_back(p.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (f.size() > 3) throw UsageError("bad --slice '" + text + "': '" + p + "' has too many ':'");
    if (f.size() == 3 && !f[2].empty()) {
      s.step = ParseInt(f[2], text);
      if (s.step <= 0) throw UsageError("--slice '" + text + "': the step must be positive");
    }
    auto clamp = [&](const std::string& t, int64_t dflt) {
      if (t.empty()) return dflt;
      int64_t v = ParseInt(t, text);
      if (v < 0) v += n;
      return std::clamp<int64_t>(v, 0, n);
    };
    s.start = clamp(f[0], 0);
    s.stop = std::max(s.start, clamp(f[1], n));
    out.push_back(s);
  }
  return out;
}

struct Printer {
  const Array& values;  // float64, int64, uint64, bool or complex128
  bool summarise;
  std::string Element(int64_t i) const {
    char buf[64];
    switch (values.dtype()) {
      case DType::kBool: return values.data<bool>()[i] ? "True" : "False";
      case DType::kInt64: return std::to_string(values.data<int64_t>()[i]);
      case DType::kUInt64: return std::to_string(values.data<uint64_t>()[i]);
      case DType::kComplex128: {
        const double* c = reinterpret_cast<const double*>(values.bytes().data()) + 2 * i;
        std::snprintf(buf, sizeof buf, "%.8g%+.8gj", c[0], c[1]);
        return buf;
      }
      default:
        std::snprintf(buf, sizeof buf, "%.8g", values.data<double>()[i]);
        return buf;
    }
  }
  void Print(std::ostream& os, size_t dim, int64_t offset, int64_t stride_elems, const std::string& indent) const {
    const Shape& shape = values.shape();
    if (dim == shape.size()) {
      os << Element(offset);
      return;
    }
    const int64_t n = shape[dim];
    const int64_t inner = stride_elems / std::max<int64_t>(n, 1);
    os << "[";
    for (int64_t i = 0; i < n; ++i) {
      if (summarise && n > 6 && i == 3) {
        os << (dim + 1 == shape.size() ? "..., " : "...,\n" + indent + " ");
        i = n - 3;
      }
      Print(os, dim + 1, offset + i * inner, inner, indent + " ");
      if (i + 1 < n) os << (dim + 1 == shape.size() ? ", " : ",\n" + indent + " ");
    }
    os << "]";
  }
};

nlohmann::json JsonValues(const Array& values, size_t dim, int64_t offset, int64_t stride) {
  const Shape& shape = values.shape();
  if (dim == shape.size()) {
    switch (values.dtype()) {
      case DType::kBool: return values.data<bool>()[offset];
      case DType::kInt64: return values.data<int64_t>()[offset];
      case DType::kUInt64: return values.data<uint64_t>()[offset];
      case DType::kComplex128: {
        const double* c = reinterpret_cast<const double*>(values.bytes().data()) + 2 * offset;
        return nlohmann::json::array({c[0], c[1]});
      }
      default: {
        const double v = values.data<double>()[offset];
        if (std::isnan(v)) return "nan";
        if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
        return v;
      }
    }
  }
  nlohmann::json out = nlohmann::json::array();
  const int64_t inner = stride / std::max<int64_t>(shape[dim], 1);
  for (int64_t i = 0; i < shape[dim]; ++i) out.push_back(JsonValues(values, dim + 1, offset + i * inner, inner));
  return out;
}

}  // namespace

int Cat(const std::vector<std::string>& argv) {
  Args args = ParseArgs(argv, {"slice"}, {"json", "all", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kOk;
  }
  if (args.positional.size() != 2) throw UsageError("cat takes DIR|FILE and PARAM");
  Source source = OpenSource(args.positional[0]);
  const std::string& param = args.positional[1];
  std::optional<Tree> leaf;
  for (auto& [name, value] : LoadSpecs(source)) {
    if (name == param) leaf = value;
  }
  if (!leaf) throw Failure(kNotFound, "no parameter " + param + " in " + source.path.string() + " (cairn info lists them)");
  if (leaf->is_string() || leaf->is_scalar()) {
    if (args.value("slice")) throw UsageError(param + " is not an array; it has no slices");
    std::cout << (leaf->is_string() ? leaf->string() : leaf->ToString()) << "\n";
    return kOk;
  }
  if (!leaf->is_spec()) throw Failure(kError, param + " is not an array (" + leaf->ToString() + ")");
  const ArraySpec spec = leaf->spec();
  const std::string slice_text = args.value("slice").value_or("");
  const auto slices = ParseSlice(slice_text, spec.shape);
  Box box{Shape(spec.shape.size()), Shape(spec.shape.size())};
  for (size_t d = 0; d < slices.size(); ++d) {
    box.origin[d] = slices[d].start;
    box.shape[d] = slices[d].stop - slices[d].start;
  }
  Array data = LoadArray(source, param, slice_text.empty() ? std::nullopt : std::optional<Box>(box));
  // Steps and dropped (indexed) dimensions, applied to the box read.
  Shape out_shape, full_shape;
  for (const auto& s : slices) {
    const int64_t n = (s.stop - s.start + s.step - 1) / s.step;
    full_shape.push_back(n);
    if (!s.index) out_shape.push_back(n);
  }
  const DType print_type = data.dtype() == DType::kBool                         ? DType::kBool
                           : IsComplex(data.dtype())                            ? DType::kComplex128
                           : data.dtype() == DType::kUInt64                     ? DType::kUInt64
                           : IsInteger(data.dtype())                            ? DType::kInt64
                                                                                : DType::kFloat64;
  Array cast = data.Cast(print_type);
  Array values = Array::Allocate(print_type, out_shape);
  {
    const size_t item = ItemSize(print_type);
    const int64_t count = NumElements(full_shape);
    std::vector<int64_t> index(full_shape.size(), 0);
    for (int64_t k = 0; k < count; ++k) {
      int64_t offset = 0;
      for (size_t d = 0; d < full_shape.size(); ++d) offset = offset * box.shape[d] + index[d] * slices[d].step;
      std::memcpy(values.mutable_bytes().data() + static_cast<size_t>(k) * item,
                  cast.bytes().data() + static_cast<size_t>(offset) * item, item);
      for (size_t d = full_shape.size(); d-- > 0;) {
        if (++index[d] < full_shape[d]) break;
        index[d] = 0;
      }
    }
  }
  if (args.has("json")) {
    nlohmann::ordered_json out;
    out["name"] = param;
    out["dtype"] = DTypeName(data.dtype());
    out["shape"] = spec.shape;
    out["slice"] = slice_text;
    out["values"] = JsonValues(values, 0, 0, values.num_elements());
    std::cout << out.dump() << "\n";
    return kOk;
  }
  std::cout << param << ": " << DTypeName(data.dtype()) << ShapeToString(spec.shape);
  if (!slice_text.empty()) std::cout << " [" << slice_text << "] -> " << ShapeToString(out_shape);
  std::cout << "\n";
  Printer printer{values, !args.has("all") && values.num_elements() > 1000};
  printer.Print(std::cout, 0, 0, values.num_elements(), "");
  std::cout << "\n";
  return kOk;
}

}  // namespace cairn::cli
