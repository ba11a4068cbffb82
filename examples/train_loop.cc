// A toy training loop with a CheckpointManager: fits y = 3x + 1 by gradient descent, saves every 10 steps
// asynchronously with the loss as metrics, keeps the 2 latest steps and every 30th, and, when started again
// (after being killed, say), resumes from the latest step.
//
//   train_loop [directory] [steps] [milliseconds per step]     (default /tmp/cairn_train_loop 60 50)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <cairn/cairn.h>

using cairn::Array, cairn::Tree;

namespace {

Tree InitialState() {
  return Tree::Dict({{"params", Tree::Dict({{"w", Array::FromVector<float>({1}, {0.0f})},
                                            {"b", Array::FromVector<float>({1}, {0.0f})}})},
                     {"step", Tree::Scalar(int64_t{0})}});
}

// One step of gradient descent on the mean squared error over x in [-1, 1]; returns the loss before the step.
double TrainStep(Tree& state, int64_t step) {
  float& w = state["params"]["w"].array().mutable_data<float>()[0];
  float& b = state["params"]["b"].array().mutable_data<float>()[0];
  double loss = 0, grad_w = 0, grad_b = 0;
  constexpr int kPoints = 21;
  for (int i = 0; i < kPoints; ++i) {
    const double x = -1.0 + 2.0 * i / (kPoints - 1), y = 3 * x + 1;
    const double err = w * x + b - y;
    loss += err * err / kPoints;
    grad_w += 2 * err * x / kPoints;
    grad_b += 2 * err / kPoints;
  }
  w -= static_cast<float>(0.1 * grad_w);
  b -= static_cast<float>(0.1 * grad_b);
  state["step"] = Tree::Scalar(step);
  return loss;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path directory = argc > 1 ? argv[1] : "/tmp/cairn_train_loop";
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 60;
  const int step_ms = argc > 3 ? std::atoi(argv[3]) : 50;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // every line out at once, even if we are killed

  cairn::CheckpointManagerOptions options;
  options.save_interval_steps = 10;
  options.cleanup_tmp_directories = true;  // a kill during a save leaves `<step>.orbax-checkpoint-tmp`
  namespace pp = cairn::preservation_policy;
  // The 2 latest steps, plus every 30th for the long run.
  options.preservation_policy = std::make_shared<pp::AnyPreservationPolicy>(pp::LatestN(2), pp::EveryNSteps(30));
  cairn::CheckpointManager mngr(directory, options, {}, {{"example", "train_loop"}});

  Tree state = InitialState();
  int64_t start = 0;
  if (auto latest = mngr.latest_step()) {
    state = mngr.restore(*latest);
    start = *latest + 1;
    std::printf("resuming from step %lld in %s (loss then %.6f)\n", static_cast<long long>(*latest),
                directory.c_str(), mngr.metrics(*latest).value_or(nlohmann::json{{"loss", -1.0}})["loss"].get<double>());
  } else {
    std::printf("starting fresh in %s\n", directory.c_str());
  }

  for (int64_t step = start; step < steps; ++step) {
    const double loss = TrainStep(state, step);
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    if (mngr.save(step, cairn::args::StandardSave{state}, {.metrics = {{"loss", loss}}})) {
      std::printf("step %3lld  loss %.6f  saved\n", static_cast<long long>(step), loss);
    }
  }
  mngr.wait_until_finished();

  std::string kept;
  for (int64_t s : mngr.all_steps()) kept += " " + std::to_string(s);
  const float w = state["params"]["w"].array().data<float>()[0], b = state["params"]["b"].array().data<float>()[0];
  std::printf("done: w = %.4f, b = %.4f; steps kept:%s\n", w, b, kept.c_str());
  return 0;
}
