# lnlab: every target first runs scripts/setup (installs what is missing; quiet otherwise),
# then builds with mk/build.mk, which detects the libraries after they are installed.
BUILD := $(MAKE) --no-print-directory -f mk/build.mk

.PHONY: all lnlab test demo bench sanitize fuzz clean setup
all lnlab: setup
	@$(BUILD) bin
test: setup
	@$(BUILD) bin tests
	@tests/run
demo: setup
	@$(BUILD) bin
	@scripts/demo
bench: setup
	@$(BUILD) bin benches
	@bench/run
sanitize: setup
	@$(BUILD) SANITIZE=1 BUILD_DIR=build/san bin tests
	@LNLAB_SANITIZED=1 LNLAB_BIN=build/san/lnlab LNLAB_TEST_DIR=build/san/tests tests/run
# libFuzzer targets (fuzz/fuzz_*.c), each run for FUZZ_SECONDS; `make fuzz FUZZ_TARGETS="shard llmc"`
# runs some. New corpus entries stay in build/fuzz/corpus, crashes go to build/fuzz/crashes.
FUZZ_SECONDS ?= 60
fuzz: setup
	@$(BUILD) FUZZ=1 CC=clang MPI=0 BUILD_DIR=build/fuzz fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz $(FUZZ_TARGETS)
setup:
	@scripts/setup
clean:
	rm -rf build lnlab

# The main job: the default comparison of placements (docs/STUDY.md) into study/.
.PHONY: study
study: setup
	@$(BUILD) bin
	@./lnlab study
