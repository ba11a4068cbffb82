// cairn_crash_helper: a training loop that the crash-loop test (crash_loop_test.cc) kills with SIGKILL.
//
//   cairn_crash_helper <root> <async|sync> [background-delete]
//
// Opens a CheckpointManager on <root> (which removes unfinished saves left by the previous, killed run), prints
// "READY <latest step or -1>", waits for one byte on stdin (EOF: exit 0 without saving), then saves
// CrashState(step) for step = latest + 1, latest + 2, ... forever, keeping the latest 3. After each save() it
// prints "C <step>" for the newest step known to be committed: with synchronous saves the step just saved, with
// asynchronous ones the step before (save() waits for the previous save to commit).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "cairn/cairn.h"
#include "manager/crash_state.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <root> <async|sync> [background-delete]\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  const bool async = std::strcmp(argv[2], "async") == 0;
  const bool background_delete = argc > 3 && std::strcmp(argv[3], "background-delete") == 0;
  try {
    cairn::CheckpointManagerOptions options;
    options.save_interval_steps = 1;
    options.max_to_keep = 3;
    options.cleanup_tmp_directories = true;
    options.enable_async_checkpointing = async;
    options.enable_background_delete = background_delete;
    cairn::CheckpointManager mngr(root, options);
    const int64_t latest = mngr.latest_step().value_or(-1);
    std::printf("READY %lld\n", static_cast<long long>(latest));
    std::fflush(stdout);
    char go;
    if (::read(STDIN_FILENO, &go, 1) != 1) return 0;
    std::optional<int64_t> previous;
    for (int64_t step = latest + 1;; ++step) {
      mngr.save(step, cairn::args::PyTreeSave{cairn::testing::CrashState(step)},
                {.metrics = {{"loss", cairn::testing::CrashLossAt(step)}}});
      const std::optional<int64_t> committed = async ? previous : std::optional<int64_t>(step);
      if (committed) {
        std::printf("C %lld\n", static_cast<long long>(*committed));
        std::fflush(stdout);
      }
      previous = step;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cairn_crash_helper: %s\n", e.what());
    return 1;
  }
}
