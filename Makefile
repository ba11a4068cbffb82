# cairn: two commands on a fresh Debian 12 machine.
#   make demo   installs what is missing, builds, runs examples/quickstart and examples/train_loop (killed, resumed)
#   make test   installs what is missing, builds, runs every test
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test test-asan test-tsan install clean

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

test: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer, and under ThreadSanitizer.
test-asan:
	@$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DCAIRN_SANITIZE=address,undefined"

test-tsan:
	@$(MAKE) test BUILD_DIR=build-tsan BUILD_TYPE=Debug CMAKE_FLAGS="-DCAIRN_SANITIZE=thread"

install: build
	@cmake --install $(BUILD_DIR)

clean:
	@rm -rf build build-asan build-tsan
