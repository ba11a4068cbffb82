# cairn: two commands on a fresh Debian 12 machine.
#   make demo   installs what is missing, builds, runs examples/quickstart and examples/train_loop (killed, resumed)
#   make test   installs what is missing, builds, runs every test
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test test-asan test-tsan test-tsan-async install clean stress test-sanitize

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

# The whole suite (ctest) under AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/ (the Python module is
# left out of sanitizer builds), and under ThreadSanitizer (test-tsan).
test-asan: deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=address,undefined > /dev/null
	@cmake --build build-asan -j $(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j $(JOBS)

test-tsan:
	@$(MAKE) test BUILD_DIR=build-tsan BUILD_TYPE=Debug CMAKE_FLAGS="-DCAIRN_SANITIZE=thread"

install: build
	@cmake --install $(BUILD_DIR)

# tests/fixtures/orbax/{v0,v1}_checkpoints, written again by the real Orbax pinned in scripts/requirements-interop.txt
# (after moving a pin; commit the result).
.PHONY: orbax-fixtures test-orbax
orbax-fixtures: deps
	@"$$(bash scripts/install-deps.sh --print-venv)/bin/python" scripts/make_orbax_fixtures.py tests/fixtures/orbax

# Only the compatibility suite against the real Orbax, TensorStore and JAX (part of `make test`).
test-orbax: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -L orbax -j $(JOBS)

clean:
	@rm -rf build build-asan build-tsan build-fuzz

# The benchmark (not part of `make test`; docs/bench.md): cairn against the disk's floors and its peers (Orbax,
# torch, numpy, zarr, h5py) on one transformer-shaped state; prints a table, writes bench/results/latest.{json,png}.
#   make bench BENCH_ARGS="--quick"   (256 MiB)   make bench BENCH_ARGS="--size-gib 1"   (see bench/run.py --help)
BENCH_BUILD_DIR ?= build-bench
BENCH_ARGS ?=
.PHONY: bench
bench:
	@bash scripts/install-deps.sh --bench
	@cmake -S . -B $(BENCH_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_BENCH=ON \
	  -DCAIRN_BUILD_TESTS=OFF -DCAIRN_BUILD_EXAMPLES=OFF > /dev/null
	@cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target cairn_bench $$(cmake --build $(BENCH_BUILD_DIR) --target help | grep -q '^cairn_python:' && echo cairn_python)
	@/usr/bin/python3 bench/run.py --build-dir $(BENCH_BUILD_DIR) $(BENCH_ARGS)

# The object-store bench (not part of `make test`): cairn against boto3 and TensorStore on the loopback S3 and GCS
# servers (bench/objstore.py; docs/storage.md).   make bench-objstore BENCH_ARGS="--size-mib 64"
.PHONY: bench-objstore
bench-objstore: deps
	@cmake -S . -B $(BENCH_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_BENCH=ON \
	  -DCAIRN_BUILD_TESTS=OFF -DCAIRN_BUILD_EXAMPLES=OFF > /dev/null
	@cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target cairn_objstore_bench
	@"$$(bash scripts/install-deps.sh --print-venv)/bin/python" bench/objstore.py --build-dir $(BENCH_BUILD_DIR) $(BENCH_ARGS)

# Fuzzing (not part of `make test`): one libFuzzer target per parser of on-disk bytes (fuzz/*_fuzzer.cc), built
# with clang under AddressSanitizer + UndefinedBehaviorSanitizer in build-fuzz/ (the whole library again).
#   make fuzz                      each target for FUZZ_SECONDS (60), one after another, from its seed corpus
#   make fuzz FUZZ_TARGETS="ocdbt_database zarr_chunk" FUZZ_SECONDS=600
#   make fuzz-corpus               each target once over its committed corpus, fuzz/corpus/<target>/ (for CI)
# A finding (crash, sanitizer report, exception other than cairn::Error, timeout, allocation over the limit)
# fails the run; its input is in build-fuzz/findings/<target>/. `make fuzz` grows build-fuzz/corpus/<target>,
# never the committed seeds.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
# target:max_len (the largest input libFuzzer generates for it)
FUZZ_SPECS = tree_metadata:8192 checkpoint_metadata:4096 sharding:4096 array_metadatas:4096 \
  legacy_aggregate:4096 zarray:2048 zarr_json:4096 zarr_chunk:1024 ocdbt_manifest:2048 ocdbt_btree_node:4096 \
  ocdbt_database:8192 safetensors_header:4096 delta_record:4096
FUZZ_TARGETS ?= $(foreach spec,$(FUZZ_SPECS),$(firstword $(subst :, ,$(spec))))
FUZZ_FLAGS = -timeout=10 -rss_limit_mb=2048

.PHONY: fuzz fuzz-build fuzz-corpus
fuzz-build:
	@bash scripts/install-deps.sh --fuzz
	@cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DCAIRN_BUILD_FUZZERS=ON -DCAIRN_BUILD_TESTS=OFF -DCAIRN_BUILD_EXAMPLES=OFF -DCAIRN_WITH_MPI=OFF \
	  -DCAIRN_SANITIZE=address,undefined > /dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target $(addprefix cairn_fuzz_,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@failed=""; for spec in $(FUZZ_SPECS); do t=$${spec%%:*}; max_len=$${spec##*:}; \
	  case " $(FUZZ_TARGETS) " in *" $$t "*) ;; *) continue ;; esac; \
	  mkdir -p $(FUZZ_BUILD_DIR)/corpus/$$t $(FUZZ_BUILD_DIR)/findings/$$t; \
	  cp -n fuzz/corpus/$$t/* $(FUZZ_BUILD_DIR)/corpus/$$t/; \
	  dict=""; if [ -f fuzz/dict/$$t.dict ]; then dict=-dict=fuzz/dict/$$t.dict; fi; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s (max_len $$max_len)"; \
	  $(FUZZ_BUILD_DIR)/fuzz/cairn_fuzz_$$t $(FUZZ_BUILD_DIR)/corpus/$$t -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$$max_len $(FUZZ_FLAGS) $$dict -artifact_prefix=$(FUZZ_BUILD_DIR)/findings/$$t/ -print_final_stats=1 \
	    > $(FUZZ_BUILD_DIR)/findings/$$t.log 2>&1 || failed="$$failed $$t"; \
	  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE" $(FUZZ_BUILD_DIR)/findings/$$t.log | tr '\n' ' '; echo; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in:$$failed (logs: $(FUZZ_BUILD_DIR)/findings/<target>.log)"; exit 1; fi; \
	echo "fuzz: no findings"

fuzz-corpus: fuzz-build
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_BUILD_DIR)/fuzz/cairn_fuzz_$$t $(FUZZ_FLAGS) fuzz/corpus/$$t/* > $(FUZZ_BUILD_DIR)/corpus-$$t.log 2>&1 \
	    || { failed="$$failed $$t"; tail -n 40 $(FUZZ_BUILD_DIR)/corpus-$$t.log; }; \
	  echo "fuzz-corpus: $$t: $$(ls fuzz/corpus/$$t | wc -l) inputs"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-corpus: findings in:$$failed"; exit 1; fi; \
	echo "fuzz-corpus: no findings"

# The reliability sweeps at a length `make test` cannot afford (docs/reliability.md): the crash loop killed 1,000
# times (async and sync), the fault sweeps over every layout (OCDBT+zstd, per-parameter directories, zarr3), and the
# corruption sweeps.
STRESS_CRASH_ITERATIONS ?= 1000
.PHONY: stress test-sanitize
stress: build
	@CAIRN_CRASH_ITERATIONS=$(STRESS_CRASH_ITERATIONS) $(BUILD_DIR)/tests/cairn_manager_tests --gtest_filter='CrashLoop.*'
	@CAIRN_FAULT_SWEEP=full $(BUILD_DIR)/tests/cairn_checkpoint_tests \
	  --gtest_filter='*FaultInjection*:Checkpointer.EveryFailedCall*:HostileInput.*:Permissions.*'
	@$(BUILD_DIR)/tests/cairn_handlers_tests --gtest_filter='CorruptionEveryFile.*:Corruption.*:Integrity.*'
	@echo "stress: passed"

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/), with allocations capped so that
# an allocation sized by an unchecked length from disk fails loudly instead of succeeding on a large machine.
test-sanitize:
	@ASAN_OPTIONS=allocator_may_return_null=0:max_allocation_size_mb=4096:detect_leaks=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan_suppressions.txt \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(MAKE) --no-print-directory test-asan
