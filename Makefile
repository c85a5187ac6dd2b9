# lnlab: every target first runs scripts/setup (installs what is missing; quiet otherwise),
# then builds with mk/build.mk, which detects the libraries after they are installed.
BUILD := $(MAKE) --no-print-directory -f mk/build.mk

.PHONY: all lnlab test demo bench sanitize clean setup
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
	@LNLAB_BIN=build/san/lnlab LNLAB_TEST_DIR=build/san/tests tests/run
setup:
	@scripts/setup
clean:
	rm -rf build lnlab
