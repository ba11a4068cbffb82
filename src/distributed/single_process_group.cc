#include "cairn/process_group.h"
#include "distributed/checks.h"

namespace cairn {
namespace {

class SingleGroup final : public ProcessGroup {
 public:
  int index() const override { return 0; }
  int count() const override { return 1; }

  std::vector<std::string> AllGather(std::string_view data, const std::string& key,
                                     std::chrono::milliseconds timeout) override {
    distributed::CheckTimeout(timeout, key);
    return {std::string(data)};
  }

  std::shared_ptr<ProcessGroup> Subgroup(const std::vector<int>& members) override {
    distributed::CheckMembers(members, 1, 0);
    return std::make_shared<SingleGroup>();
  }

  std::string Broadcast(std::string_view data, int root, const std::string& key,
                        std::chrono::milliseconds timeout) override {
    distributed::CheckRoot(root, 1, key);
    distributed::CheckTimeout(timeout, key);
    return std::string(data);
  }
};

}  // namespace

std::shared_ptr<ProcessGroup> SingleProcessGroup() { return std::make_shared<SingleGroup>(); }

}  // namespace cairn
