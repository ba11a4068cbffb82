# cairn: two commands on a fresh Debian 12 machine.
#   make demo   installs what is missing, builds, runs examples/quickstart and examples/train_loop (killed, resumed)
#   make test   installs what is missing, builds, runs every test
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test test-asan test-tsan test-tsan-async install clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@$(BUILD_DIR)/examples/quickstart
	@rm -rf /tmp/cairn_train_loop
	@echo "--- examples/train_loop, killed (SIGKILL) after 1.5 s ---"
	@timeout -s KILL 1.5 $(BUILD_DIR)/examples/train_loop /tmp/cairn_train_loop || true
	@echo "--- examples/train_loop again: it resumes from the latest step ---"
	@$(BUILD_DIR)/examples/train_loop /tmp/cairn_train_loop

# ctest runs last, so that its summary closes the output.
test: build
	@$(MAKE) --no-print-directory test-tsan-async
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The threaded code (async saves, the thread pool, the OCDBT writer's lanes) under ThreadSanitizer: part of
# `make test`, limited to the suites that exercise threads so CI stays short.
TSAN_SUITES = cairn_checkpoint_tests cairn_core_tests cairn_kvstore_tests cairn_distributed_tests cairn_manager_tests
test-tsan-async: deps
	@cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=thread -DCAIRN_BUILD_EXAMPLES=OFF > /dev/null
	@cmake --build build-tsan -j $(JOBS) --target $(TSAN_SUITES)
	@for suite in $(TSAN_SUITES); do TSAN_OPTIONS=halt_on_error=1 ./build-tsan/tests/$$suite --gtest_brief=1 || exit 1; done
	@echo "ThreadSanitizer: clean"

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer, and under ThreadSanitizer.
test-asan:
	@$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DCAIRN_SANITIZE=address,undefined"

test-tsan:
	@$(MAKE) test BUILD_DIR=build-tsan BUILD_TYPE=Debug CMAKE_FLAGS="-DCAIRN_SANITIZE=thread"

install: build
	@cmake --install $(BUILD_DIR)

clean:
	@rm -rf build build-asan build-tsan

# The benchmark (not part of `make test`): cairn against the disk's floors and its peers (torch, numpy, zarr,
# h5py) on one transformer-shaped state; prints a table, writes bench/results/latest.{json,png}.
#   make bench BENCH_ARGS="--quick"   (256 MiB)   make bench BENCH_ARGS="--size-gib 1"   (see bench/run.py --help)
BENCH_BUILD_DIR ?= build-bench
BENCH_ARGS ?=
.PHONY: bench
bench:
	@bash scripts/install-deps.sh --bench
	@cmake -S . -B $(BENCH_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_BENCH=ON \
	  -DCAIRN_BUILD_TESTS=OFF -DCAIRN_BUILD_EXAMPLES=OFF > /dev/null
	@cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target cairn_bench
	@/usr/bin/python3 bench/run.py --build-dir $(BENCH_BUILD_DIR) $(BENCH_ARGS)
