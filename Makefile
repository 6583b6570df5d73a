# The two commands a new user needs: `make run` and `make test`.
MAKEFLAGS += --no-print-directory
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run run-single test test-asan test-tsan fuzz faults format format-check bench clean

all: build

deps:
	@./scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@./scripts/local-cluster run $(BUILD)/varastod

run-single: build
	@./scripts/run-node $(BUILD)/varastod

test: build
	@./scripts/format-check
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600
	@$(MAKE) --no-print-directory test-asan
	@./scripts/fuzz $(FUZZ_SMOKE_SECONDS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DVARASTO_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) --timeout 900

# The suite under ThreadSanitizer: the loop thread against libuv's thread
# pool (snapshots, checkpoints). Not part of make test.
test-tsan: deps
	@cmake -S . -B $(BUILD)-tsan -DCMAKE_BUILD_TYPE=Debug -DVARASTO_TSAN=ON >/dev/null
	@cmake --build $(BUILD)-tsan -j $(JOBS)
	@cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest --output-on-failure -j $(JOBS) --timeout 900

# Each libFuzzer target (tests/fuzz) for FUZZ_SECONDS; make test runs them
# for FUZZ_SMOKE_SECONDS each, so that they keep building and shallow
# crashes show.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 5
fuzz: deps
	@./scripts/fuzz $(FUZZ_SECONDS)

# The fault suite's long run: make faults SECONDS=600 SEED=42 (root; the
# seed is printed, so a failed run can be replayed).
SECONDS ?= 600
SEED ?=
faults: build
	@python3 tests/faults/test_nemesis.py --varastod $(BUILD)/varastod \
		--seconds $(SECONDS) $(if $(SEED),--seed $(SEED))

# Source formatting against .clang-format (clang-format 14).
format-check: deps
	@./scripts/format-check

format: deps
	@./scripts/format-check --fix

bench: build
	@./bench/run-bench $(BUILD)/varastod

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan
