// cairn diff: structural and numeric differences between two checkpoints or safetensors files.
#include <cmath>
#include <complex>
#include <cstdio>
#include <iostream>
#include <map>

#include "cairn/cairn.h"
#include "cli.h"

namespace cairn::cli {
namespace {

constexpr const char* kHelp = R"(usage: cairn diff [--atol X] [--rtol Y] [--json] A B

Compares two checkpoints (or safetensors files, or one of each) leaf by leaf: parameters only
in A or only in B, dtype and shape differences, and for arrays of the same shape the largest
absolute error max|b - a| and relative error max(|b - a| / |a|) (inf where a is 0 and b is not),
and how many elements differ. NaNs equal NaNs. Composite steps compare as {item: tree}.

An array differs when some element has |b - a| > atol + rtol * |a| (default: any difference).
Exit status: 0 when nothing differs, 1 when something does.

  --atol X, --rtol Y   tolerances (default 0)
  --json               {"a", "b", "same", "only_in_a", "only_in_b", "arrays": [...], "others": [...]}
)";

double ParseDouble(const std::string& text, const std::string& flag) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used != text.size() || !(v >= 0)) throw std::invalid_argument("");
    return v;
  } catch (const std::exception&) {
    throw UsageError("--" + flag + " needs a non-negative number, not '" + text + "'");
  }
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::map<std::string, Tree> Leaves(const Tree& tree) {
  std::map<std::string, Tree> out;
  for (auto& [path, leaf] : tree.Flatten()) out[ParamName(path)] = leaf;
  return out;
}

}  // namespace

int Diff(const std::vector<std::string>& argv) {
  Args args = ParseArgs(argv, {"atol", "rtol"}, {"json", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kOk;
  }
  if (args.positional.size() != 2) throw UsageError("diff takes two paths, A and B");
  const double atol = args.value("atol") ? ParseDouble(*args.value("atol"), "atol") : 0.0;
  const double rtol = args.value("rtol") ? ParseDouble(*args.value("rtol"), "rtol") : 0.0;
  Source sa = OpenSource(args.positional[0]);
  Source sb = OpenSource(args.positional[1]);
  auto a = Leaves(LoadTree(sa));
  auto b = Leaves(LoadTree(sb));

  nlohmann::ordered_json out;
  out["a"] = sa.path.string();
  out["b"] = sb.path.string();
  out["only_in_a"] = nlohmann::json::array();
  out["only_in_b"] = nlohmann::json::array();
  out["arrays"] = nlohmann::json::array();
  out["others"] = nlohmann::json::array();
  bool same = true;
  for (const auto& [name, leaf] : a) {
    if (!b.count(name)) {
      out["only_in_a"].push_back(name);
      same = false;
    }
  }
  for (const auto& [name, leaf] : b) {
    if (!a.count(name)) {
      out["only_in_b"].push_back(name);
      same = false;
    }
  }
  for (const auto& [name, la] : a) {
    auto it = b.find(name);
    if (it == b.end()) continue;
    const Tree& lb = it->second;
    const bool array_a = la.is_array() || la.is_scalar(), array_b = lb.is_array() || lb.is_scalar();
    if (!array_a || !array_b) {
      if (!(la == lb)) {
        out["others"].push_back({{"name", name}, {"a", la.ToString()}, {"b", lb.ToString()}});
        same = false;
      }
      continue;
    }
    auto as_array = [](const Tree& t) {
      return t.is_array() ? t.array() : std::visit([](auto v) { return Array::FromScalar(v); }, t.scalar_value());
    };
    const Array xa = as_array(la), xb = as_array(lb);
    nlohmann::ordered_json entry;
    entry["name"] = name;
    entry["dtype_a"] = DTypeName(xa.dtype());
    entry["dtype_b"] = DTypeName(xb.dtype());
    entry["shape_a"] = xa.shape();
    entry["shape_b"] = xb.shape();
    bool differs = xa.dtype() != xb.dtype() || xa.shape() != xb.shape();
    if (xa.shape() == xb.shape()) {
      const Array ca = xa.Cast(DType::kComplex128), cb = xb.Cast(DType::kComplex128);
      const auto* pa = reinterpret_cast<const std::complex<double>*>(ca.bytes().data());
      const auto* pb = reinterpret_cast<const std::complex<double>*>(cb.bytes().data());
      double max_abs = 0, max_rel = 0;
      int64_t differing = 0;
      const int64_t n = xa.num_elements();
      for (int64_t i = 0; i < n; ++i) {
        const auto va = pa[i], vb = pb[i];
        const bool nan_a = std::isnan(va.real()) || std::isnan(va.imag());
        const bool nan_b = std::isnan(vb.real()) || std::isnan(vb.imag());
        double abs_err, rel_err;
        if (nan_a || nan_b) {
          abs_err = rel_err = (nan_a && nan_b) ? 0.0 : INFINITY;
        } else if (va == vb) {
          abs_err = rel_err = 0.0;  // also equal infinities
        } else {
          abs_err = std::abs(vb - va);
          rel_err = std::abs(va) > 0 ? abs_err / std::abs(va) : INFINITY;
        }
        if (std::isnan(abs_err)) abs_err = rel_err = INFINITY;  // inf - inf
        max_abs = std::max(max_abs, abs_err);
        max_rel = std::max(max_rel, rel_err);
        if (abs_err > atol + rtol * std::abs(va)) ++differing;
      }
      entry["max_abs_error"] = std::isinf(max_abs) ? nlohmann::ordered_json("inf") : nlohmann::ordered_json(max_abs);
      entry["max_rel_error"] = std::isinf(max_rel) ? nlohmann::ordered_json("inf") : nlohmann::ordered_json(max_rel);
      entry["elements_differing"] = differing;
      entry["elements"] = n;
      differs = differs || differing > 0;
    }
    entry["differs"] = differs;
    same = same && !differs;
    out["arrays"].push_back(std::move(entry));
  }
  out["same"] = same;

  if (args.has("json")) {
    std::cout << out.dump(2) << "\n";
    return same ? kOk : kFound;
  }
  for (const auto& n : out["only_in_a"]) std::cout << "only in A: " << n.get<std::string>() << "\n";
  for (const auto& n : out["only_in_b"]) std::cout << "only in B: " << n.get<std::string>() << "\n";
  size_t compared = 0;
  for (const auto& e : out["arrays"]) {
    ++compared;
    if (!e["differs"].get<bool>()) continue;
    std::string line = e["name"].get<std::string>() + ": ";
    if (e["dtype_a"] != e["dtype_b"]) line += "dtype " + e["dtype_a"].get<std::string>() + " vs " + e["dtype_b"].get<std::string>() + "; ";
    if (e["shape_a"] != e["shape_b"]) {
      line += "shape " + ShapeText(e["shape_a"]) + " vs " + ShapeText(e["shape_b"]) + "; ";
    } else {
      auto show = [](const nlohmann::ordered_json& v) { return v.is_string() ? v.get<std::string>() : Num(v.get<double>()); };
      line += "max abs error " + show(e["max_abs_error"]) + ", max rel error " + show(e["max_rel_error"]) + ", " +
              std::to_string(e["elements_differing"].get<int64_t>()) + " of " + std::to_string(e["elements"].get<int64_t>()) +
              " elements differ";
    }
    std::cout << line << "\n";
  }
  for (const auto& e : out["others"]) {
    std::cout << e["name"].get<std::string>() << ": " << e["a"].get<std::string>() << " vs " << e["b"].get<std::string>() << "\n";
  }
  std::cout << (same ? "same: " : "different: ") << compared << " arrays compared, " << out["only_in_a"].size()
            << " only in A, " << out["only_in_b"].size() << " only in B\n";
  return same ? kOk : kFound;
}

}  // namespace cairn::cli
