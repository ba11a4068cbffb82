// `cairn`: look into, check, compare, print and convert checkpoints (docs/cli.md).
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "cairn/error.h"
#include "cli.h"

namespace {

constexpr const char* kUsage = R"(usage: cairn <command> [options] ...

Commands:
  info DIR|FILE            what a checkpoint (or safetensors file) holds, from its metadata alone
  verify DIR               read every byte, check every checksum; exit 0 only when all is well
  diff A B                 structural and numeric differences between two checkpoints or safetensors files
  cat DIR|FILE PARAM       print an array, or a slice of it (--slice 0:4,:)
  convert SRC DST          checkpoint <-> safetensors, or a checkpoint into another layout

`cairn <command> --help` describes a command's options.

Exit codes: 0 ok, 1 verify found problems / diff found differences, 2 usage error, 3 not found,
4 corrupt data, 5 unfinished checkpoint, 6 other errors.
)";

int ExitCodeFor(const cairn::Error& e) {
  switch (e.code()) {
    case cairn::ErrorCode::kNotFound: return cairn::cli::kNotFound;
    case cairn::ErrorCode::kCorruption: return cairn::cli::kCorrupt;
    default: return cairn::cli::kError;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return cairn::cli::kUsage;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage;
      return cairn::cli::kOk;
    }
    if (command == "--version") {
      std::cout << "cairn 0.1.0\n";
      return cairn::cli::kOk;
    }
    if (command == "info") return cairn::cli::Info(args);
    if (command == "verify") return cairn::cli::Verify(args);
    if (command == "diff") return cairn::cli::Diff(args);
    if (command == "cat") return cairn::cli::Cat(args);
    if (command == "convert") return cairn::cli::Convert(args);
    std::cerr << "cairn: unknown command '" << command << "'\n\n" << kUsage;
    return cairn::cli::kUsage;
  } catch (const cairn::cli::Failure& e) {
    std::cerr << "cairn " << command << ": " << e.what() << "\n";
    if (e.code() == cairn::cli::kUsage) std::cerr << "(cairn " << command << " --help for its usage)\n";
    return e.code();
  } catch (const cairn::Error& e) {
    std::cerr << "cairn " << command << ": " << e.what() << "\n";
    return ExitCodeFor(e);
  } catch (const std::bad_alloc&) {
    std::cerr << "cairn " << command << ": out of memory\n";
    return cairn::cli::kError;
  } catch (const std::exception& e) {
    std::cerr << "cairn " << command << ": " << e.what() << "\n";
    return cairn::cli::kError;
  }
}
