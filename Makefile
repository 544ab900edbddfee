# memlink top-level Makefile.
#
#   make              library (static + shared), tools           -> build/
#   make check        install what is missing, build, run every test suite
#   make demo         install what is missing, build, run the ring demo
#   make V=1          show full commands
#   make O=dir        build somewhere else; SAN=asan|tsan adds sanitizers
#
# Every target lands under $(O); nothing is written into the source tree.

O ?= build
SAN ?=
V ?= 0

MAJOR := 0
MINOR := 1
PATCH := 0
SONAME := libmemlink.so.$(MAJOR)

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla
CFLAGS ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread -fPIC -fvisibility=hidden \
	-Iinclude -Ilib $(WARN)
SAN_FLAGS_asan := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
SAN_FLAGS_tsan := -fsanitize=thread -fno-omit-frame-pointer
SAN_FLAGS := $(SAN_FLAGS_$(SAN))
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS) $(SAN_FLAGS) -MMD -MP
ALL_LDFLAGS = -pthread $(SAN_FLAGS) $(LDFLAGS)

# Portable code in lib/, each platform's backends in their own directory.
LIB_SRCS := $(wildcard lib/*.c lib/posix/*.c lib/linux/*.c lib/kmod/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/obj/%.o)
LIB_A := $(O)/lib/libmemlink.a
LIB_SO := $(O)/lib/libmemlink.so.$(MAJOR).$(MINOR).$(PATCH)

BENCH_SRCS := $(wildcard tools/bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(O)/obj/%.o)
BENCH := $(O)/bin/memlink-bench

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/unit/%)
STRESS_SRCS := $(wildcard tests/stress/stress-*.c)
STRESS_BINS := $(STRESS_SRCS:tests/stress/%.c=$(O)/tests/stress/%)
TEST_HELPER_OBJS := $(O)/obj/tests/common/testutil.o

.PHONY: all lib tools tests check demo deps clean test-unit test-stress \
	test-stress-threads check-asan check-tsan check-clang check-abi vm-check

all: lib tools

# Keep objects that only feed test and tool binaries.
.SECONDARY:

lib: $(LIB_A) $(O)/lib/libmemlink.so
tools: $(BENCH)
tests: $(UNIT_BINS) $(STRESS_BINS)

$(O)/obj/tests/%.o: EXTRA_CFLAGS := -Itests/common

$(O)/obj/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJS)
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(LIB_SO): $(LIB_OBJS) lib/libmemlink.map
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libmemlink.map \
		-Wl,-z,defs -o $@ $(LIB_OBJS) $(ALL_LDFLAGS)

$(O)/lib/libmemlink.so: $(LIB_SO)
	$(Q)ln -sf $(notdir $(LIB_SO)) $(O)/lib/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(BENCH): $(BENCH_OBJS) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $(BENCH_OBJS) $(LIB_A) $(ALL_LDFLAGS)

$(O)/tests/unit/%: $(O)/obj/tests/unit/%.o $(TEST_HELPER_OBJS) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ -lcmocka $(ALL_LDFLAGS)

$(O)/tests/stress/%: $(O)/obj/tests/stress/%.o $(TEST_HELPER_OBJS) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

# ---- tests ---------------------------------------------------------------
# Each suite ends with "<suite>: N passed, N failed"; tests/run-suite.sh
# exits non-zero when anything failed.
SUITE_TAG := $(if $(SAN),-$(SAN))

test-unit: $(UNIT_BINS)
	$(Q)tests/run-suite.sh unit$(SUITE_TAG) $(UNIT_BINS)

test-stress: $(STRESS_BINS)
	$(Q)tests/run-suite.sh stress$(SUITE_TAG) $(foreach b,$(STRESS_BINS),"$(b) threads" "$(b) procs")

# The concurrent tests only: what TSan can see (threads in one process).
test-stress-threads: $(STRESS_BINS)
	$(Q)tests/run-suite.sh stress$(SUITE_TAG) $(foreach b,$(STRESS_BINS),"$(b) threads")

check-asan:
	$(Q)$(MAKE) --no-print-directory O=$(O)/asan SAN=asan test-unit test-stress

check-tsan:
	$(Q)$(MAKE) --no-print-directory O=$(O)/tsan SAN=tsan test-stress-threads

# The library and tools must also build warning-free with clang.
check-clang:
	$(Q)$(MAKE) --no-print-directory O=$(O)/clang CC=clang all tests
	@echo "clang: build clean"

# Only ml_ symbols may leave the shared library.
check-abi: $(O)/lib/libmemlink.so
	$(Q)tests/run-suite.sh abi "tests/check-abi.sh $(LIB_SO) lib/libmemlink.map"

check: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)tests/run-all.sh "$(MAKE) --no-print-directory" \
		test-unit test-stress check-abi check-clang check-asan check-tsan \
		kmod-lint kmod-sparse vm-check

deps:
	$(Q)tools/deps.sh build

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(BENCH) ring --quick

clean:
	rm -rf $(O)

# ---- kernel module and VM tests ----------------------------------------------
# memlink.ko is built against Debian's kernel headers in $(O)/kmod (a symlink
# farm: kbuild writes nothing into the tree), tests/kmod/*_test.c are static
# kselftest programs, and tools/vm/run.sh boots the kernel in QEMU with both.
#   make vm-check        all of that; ends with "vm: N passed, N failed"
#   make kmod            just memlink.ko;  make kmod-tests: the test programs
#   make kmod-lint       checkpatch.pl --strict: fails on an ERROR or WARNING
#   make kmod-sparse     the module build under sparse: fails on any warning
# KVER=<ver> picks /lib/modules/<ver> (default: tools/vm/kernel-version.sh);
# KDIR=<kernel build tree> VM_KERNEL=<bzImage> test another kernel;
# VM_TIMEOUT=<seconds> bounds the VM (600).
LINUX_SRC_TAR ?= /usr/src/linux-source-6.1.tar.xz
LINUX_SRC := $(O)/linux-src
KMOD_OUT := $(O)/kmod
KMOD_BUILD = tools/vm/build-kmod.sh $(if $(KDIR),--kdir $(KDIR))
KTEST_SRCS := $(wildcard tests/kmod/*_test.c)
KTEST_BINS := $(KTEST_SRCS:tests/kmod/%.c=$(O)/tests/kmod/%)
# Static: the initramfs has no libc. tests/kmod/memlink_test.h quiets the
# harness's own unused parameters.
KTEST_CFLAGS := -static -O2 -Wall -Wextra -Werror \
	-Iinclude/uapi -I$(LINUX_SRC)/tools/testing/selftests

.PHONY: kmod kmod-tests kmod-lint kmod-sparse kmod-clean deps-vm

kmod:
	$(Q)$(KMOD_BUILD) $(KMOD_OUT)

kmod-sparse: deps-vm
	$(Q)tests/run-suite.sh sparse "$(KMOD_BUILD) --sparse $(O)/kmod-sparse"

kmod-tests: $(KTEST_BINS)

# The kselftest headers and checkpatch.pl, from the tarball once (~15 s).
$(LINUX_SRC)/.stamp:
	$(Q)tools/vm/extract-linux-src.sh $(LINUX_SRC_TAR) $(LINUX_SRC)

$(O)/tests/kmod/%: tests/kmod/%.c $(LINUX_SRC)/.stamp
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KTEST_CFLAGS) -MMD -MP -MF $@.d -o $@ $<

kmod-lint: $(LINUX_SRC)/.stamp
	$(Q)tests/run-suite.sh checkpatch "tools/vm/lint-kmod.sh $(LINUX_SRC)/scripts/checkpatch.pl \
		$(wildcard kmod/*.c kmod/*.h) include/uapi/linux/memlink.h"

vm-check: deps-vm
	$(Q)$(MAKE) --no-print-directory kmod kmod-tests
	$(Q)tools/vm/run.sh --ko $(KMOD_OUT)/memlink.ko --out $(O)/vm \
		$(if $(VM_KERNEL),--kernel $(VM_KERNEL)) $(KTEST_BINS:%=--tests %)

deps-vm:
	$(Q)tools/deps.sh build vm

# Also what an in-tree build (make -C .../build M=$$PWD) left behind.
clean: kmod-clean
kmod-clean:
	$(Q)$(KMOD_BUILD) --clean $(KMOD_OUT)

-include $(KTEST_BINS:%=%.d)

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
