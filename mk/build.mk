# Build rules; run through the top-level Makefile so that scripts/setup has run first.
# Reports what it found (OpenBLAS, OpenMP, PCRE2, cJSON, MPI, nvcc) and what it builds without.
CC ?= cc
BUILD_DIR ?= build
SANITIZE ?=
Q := @

# -fno-math-errno: sqrtf and friends need not set errno (nothing reads it after math calls), so
# loops over them vectorize (AdamW); it changes no result.
CFLAGS_BASE := -std=c11 -Wall -Wextra -g -D_GNU_SOURCE -fno-math-errno
# -march=native where the compiler takes it. On an AVX-512 CPU, also 512-bit vectors for the
# loops GCC vectorizes: its tuning for these AMD cores prefers 256 bits, and the elementwise
# kernels (softmax, GELU, norms, attention's softmax) measured 10-30% faster with 512
# (bench_kernels). Lane counts of the reductions are fixed in the source, so no result changes.
NATIVE_FLAGS := $(shell $(CC) -march=native -E -x c /dev/null >/dev/null 2>&1 && echo -march=native)
ifneq ($(NATIVE_FLAGS),)
  NATIVE_FLAGS += $(shell $(CC) -march=native -dM -E -x c /dev/null 2>/dev/null | grep -q '__AVX512F__' && echo -mprefer-vector-width=512)
endif
ifeq ($(SANITIZE),1)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
else
  OPT := -O3 $(if $(filter 0,$(NATIVE)),,$(NATIVE_FLAGS))
  LDSAN :=
endif
# FUZZ=1 (make fuzz, with CC=clang): the library instrumented for libFuzzer, ASan and UBSan, and
# the fuzz targets fuzz/fuzz_*.c linked with libFuzzer (target `fuzzers`).
ifeq ($(FUZZ),1)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
endif

have_pkg = $(shell pkg-config --exists $(1) 2>/dev/null && echo yes)
DEFS :=
LIBS := -lm -lpthread
FOUND :=
WITHOUT :=

ifeq ($(call have_pkg,libpcre2-8),yes)
  DEFS += $(shell pkg-config --cflags libpcre2-8)
  LIBS += $(shell pkg-config --libs libpcre2-8)
  FOUND += PCRE2
else
  $(error PCRE2 (libpcre2-dev) not found; run scripts/setup)
endif
ifeq ($(call have_pkg,libcjson),yes)
  DEFS += $(shell pkg-config --cflags libcjson)
  LIBS += $(shell pkg-config --libs libcjson)
  FOUND += cJSON
else
  $(error cJSON (libcjson-dev) not found; run scripts/setup)
endif
ifeq ($(call have_pkg,openblas),yes)
  DEFS += -DLNL_HAVE_BLAS $(shell pkg-config --cflags openblas)
  LIBS += $(shell pkg-config --libs openblas)
  FOUND += OpenBLAS
else
  WITHOUT += OpenBLAS(using-built-in-matmul)
endif
OPENMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes)
ifeq ($(OPENMP),yes)
  OPT += -fopenmp
  LDSAN += -fopenmp
  FOUND += OpenMP
else
  WITHOUT += OpenMP(single-threaded)
endif
# MPI (MPI=0 builds without it): ./lnlab is compiled with the MPI wrapper's flags, and src/dist
# calls MPI_Init only when an MPI launcher started the process; plain runs never touch MPI.
MPI ?= auto
ifneq ($(MPI),0)
  MPI_PC := $(firstword $(foreach p,ompi-c mpich,$(if $(call have_pkg,$(p)),$(p))))
  ifneq ($(MPI_PC),)
    MPI_CFLAGS := $(shell pkg-config --cflags $(MPI_PC))
    MPI_LIBS := $(shell pkg-config --libs $(MPI_PC))
  else ifneq ($(shell command -v mpicc 2>/dev/null),)
    MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
    MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
  endif
  HAVE_MPI := $(shell printf '\043include <mpi.h>\nint main(void){return MPI_Init(0, 0);}\n' | \
    $(CC) $(MPI_CFLAGS) -x c - -o /dev/null $(MPI_LIBS) 2>/dev/null && echo yes)
endif
ifeq ($(HAVE_MPI),yes)
  DEFS += -DLNL_HAVE_MPI $(MPI_CFLAGS)
  LIBS += $(MPI_LIBS)
  FOUND += MPI
  MPI_NOTE := MPI: found (mpirun -np N ./lnlab train ...)
else
  WITHOUT += MPI
  MPI_NOTE := MPI: $(if $(filter 0,$(MPI)),off (MPI=0),not found), building without MPI (lnlab train runs as one process)
endif
ifneq ($(shell command -v nvcc 2>/dev/null),)
  FOUND += nvcc
else
  WITHOUT += CUDA
endif

CFLAGS := $(CFLAGS_BASE) $(OPT) $(DEFS) $(EXTRA_CFLAGS)
LDFLAGS := $(LDSAN)

# Everything is rebuilt when the flags change (another EXTRA_CFLAGS, a library found or lost):
# the flags of the last build are kept in FLAGS_STAMP, rewritten only when they differ.
FLAGS_STAMP := $(BUILD_DIR)/flags.txt
FLAGS_NOW := $(strip $(CC) $(CFLAGS) $(LDFLAGS) $(LIBS))
ifneq ($(FLAGS_NOW),$(strip $(shell cat $(FLAGS_STAMP) 2>/dev/null)))
  $(shell mkdir -p $(BUILD_DIR) && printf '%s\n' '$(FLAGS_NOW)' > $(FLAGS_STAMP))
endif

# The build's identity (src/common/version.h): a generated source, rewritten only when the commit
# or the build's options change, so that a new commit relinks instead of rebuilding everything.
VERSION_C := $(BUILD_DIR)/gen/version.c
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
GIT_DIRTY := $(shell git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo -dirty)
VERSION_TEXT := const char *const lnl_build_commit = "$(GIT_COMMIT)$(GIT_DIRTY)"; const char *const lnl_build_options = "$(strip $(FOUND))$(if $(SANITIZE), ASan+UBSan)"; const char *const lnl_build_flags = "$(CC) $(strip $(OPT))";
ifneq ($(VERSION_TEXT),$(shell cat $(VERSION_C) 2>/dev/null))
  $(shell mkdir -p $(BUILD_DIR)/gen && printf '%s\n' '$(VERSION_TEXT)' > $(VERSION_C))
endif

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD_DIR)/obj/%.o) $(BUILD_DIR)/obj/gen/version.o
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD_DIR)/obj/%.o)
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD_DIR)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD_DIR)/tests/tools/%)
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD_DIR)/bench/%)
# Each fuzz target twice: with libFuzzer (FUZZ=1 only) and with a replay main() for the tests.
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD_DIR)/fuzz/%)
REPLAY_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD_DIR)/tests/fuzz/%)
DEPS := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

ifeq ($(BUILD_DIR),build)
  EXE := lnlab
else
  EXE := $(BUILD_DIR)/lnlab
endif

.PHONY: bin tests benches report fuzzers
bin: report $(EXE)
tests: $(TEST_BIN) $(TOOL_BIN) $(REPLAY_BIN)
fuzzers: $(FUZZ_BIN)
benches: $(BENCH_BIN)

report:
	@echo "lnlab build: found:$(FOUND); without:$(if $(strip $(WITHOUT)),$(WITHOUT), nothing)$(if $(SANITIZE), [ASan+UBSan])"
	@echo "$(MPI_NOTE)"

$(EXE): $(LIB_OBJ) $(CLI_OBJ) $(FLAGS_STAMP)
	@echo "  LD   $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(CLI_OBJ) $(LIBS)

$(BUILD_DIR)/obj/gen/version.o: $(VERSION_C) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD_DIR)/lib.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD_DIR)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC   $<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# Test tools may use the CLI layer (flags, command helpers), everything but its main().
CLI_LIB_OBJ := $(filter-out %/main.o,$(CLI_OBJ))
$(BUILD_DIR)/tests/tools/%: tests/tools/%.c $(wildcard tests/common/*.h) $(BUILD_DIR)/lib.a $(CLI_LIB_OBJ) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  TOOL $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Isrc -Itests -o $@ $< $(CLI_LIB_OBJ) $(BUILD_DIR)/lib.a $(LIBS)

$(BUILD_DIR)/tests/%: tests/unit/%.c tests/unit/harness.h $(wildcard tests/common/*.h) $(BUILD_DIR)/lib.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  TEST $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Isrc -Itests -o $@ $< $(BUILD_DIR)/lib.a $(LIBS)

$(BUILD_DIR)/bench/%: bench/%.c $(BUILD_DIR)/lib.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Isrc -Itests -o $@ $< $(BUILD_DIR)/lib.a $(LIBS)

-include $(DEPS)

$(BUILD_DIR)/tests/fuzz/%: fuzz/%.c fuzz/replay_main.c fuzz/fuzz_common.h $(BUILD_DIR)/lib.a $(CLI_LIB_OBJ) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  FUZZ $@ (replay)"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Isrc -Ifuzz -o $@ $< fuzz/replay_main.c $(CLI_LIB_OBJ) $(BUILD_DIR)/lib.a $(LIBS)

$(BUILD_DIR)/fuzz/%: fuzz/%.c fuzz/fuzz_common.h $(BUILD_DIR)/lib.a $(CLI_LIB_OBJ) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  FUZZ $@"
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -Isrc -Ifuzz -o $@ $< $(CLI_LIB_OBJ) $(BUILD_DIR)/lib.a $(LIBS)

# A portable ./lnlab (NATIVE=0: no -march=native) for tests/cli/test_valgrind.sh, since valgrind
# cannot run AVX-512 code; built with `tests` when valgrind is installed (not for sanitizer or
# fuzzing builds, which valgrind cannot run either).
VALGRIND := $(if $(filter 1,$(SANITIZE) $(FUZZ)),,$(shell command -v valgrind 2>/dev/null))
.PHONY: valgrind-bin
valgrind-bin:
	@$(MAKE) --no-print-directory -f mk/build.mk BUILD_DIR=$(BUILD_DIR)/vg NATIVE=0 $(BUILD_DIR)/vg/lnlab
ifneq ($(VALGRIND),)
tests: valgrind-bin
endif
