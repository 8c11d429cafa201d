# herald: a plain Makefile over pkg-config.
#   make            build ./herald (release, -O2)
#   make run        install missing packages, build, start `herald serve` on SQLite
#   make test       install what tests need (PostgreSQL included), build, run unit + e2e
#                   suites (e2e on SQLite and on PostgreSQL), plain, under ASan+UBSan and
#                   under ThreadSanitizer (test-rel, test-asan, test-tsan)
#   make VARIANT=asan|tsan unit|e2e    one suite against one sanitizer build
#   make soak       30 minutes (SOAK_SECONDS) of steady load at half the measured capacity
#                   on the release build; fails if anything is lost, memory or latency grows
#   make bench      every benchmark (bench/run.sh: ingest, send, flow, PostgreSQL when its
#                   server binaries are present, growth with 1M profiles / 10M messages)
#                   and rewrite the generated part of docs/PERFORMANCE.md; BENCH_QUICK=1
#                   for a short smoke run (see bench/README.md)
#   make clean

PKGS      := libmicrohttpd libcjson libcurl sqlite3 libpq openssl zlib libcmark
CC        ?= cc
# pkg-config is asked when this file is read, so a target that installs packages first
# (run, test) builds through a second make that reads it again (see `run`);
# scripts/check-fresh-make.sh proves that on a machine without the -dev packages
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
PKG_MISSING := $(shell pkg-config --exists $(PKGS) 2>/dev/null || echo yes)
WARN      := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes
CSTD      := -std=c11 -D_GNU_SOURCE
LIBS      := $(PKG_LIBS) -lpthread -lm

# build variants: rel (default), asan (ASan + UBSan, abort on first report) and tsan
# (ThreadSanitizer; the e2e harness and unit runs set TSAN_OPTIONS, see tests/tsan.supp)
VARIANT   ?= rel
ifeq ($(VARIANT),asan)
  OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  LDOPT   := -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
  OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
  LDOPT   := -fsanitize=thread
else
  OPT     := -O2 -g
  LDOPT   :=
endif
# The release binary allocates through jemalloc (Debian's libjemalloc-dev, linked ahead
# of libc so that cJSON, SQLite and libcurl use it too): glibc's malloc and free were a
# quarter of herald's samples under the flow bench; linked, jemalloc took herald's CPU per
# flow event from 1,152-1,293 to 947-1,179 us (docs/PERFORMANCE.md, session 16). The
# sanitizer builds (and fuzzing) keep the allocator their runtime replaces.
ifeq ($(VARIANT),rel)
  MALLOC_PKG     := jemalloc
  MALLOC_LIBS    := $(shell pkg-config --libs jemalloc 2>/dev/null)
  MALLOC_MISSING := $(shell pkg-config --exists jemalloc 2>/dev/null || echo yes)
endif
# a TSan build is 5-15x slower: the e2e harness multiplies its time limits by this
# (tests/e2e/lib/server.mjs); a HERALD_E2E_TIME_SCALE already set wins
# The TSan e2e pass runs the suites that drive every thread (HTTP pool, store writer and
# checkpointer, queue workers and completer, transport loop, PostgreSQL nodes) under load,
# crash and fault; the API-surface suites (resources, providers, lists, docs, UI...) add
# no thread interleavings TSan has not seen, and they run plain and under ASan. A TSan
# e2e pass over every file took ~11 minutes of CI's 45.
TSAN_E2E  := foundation ingest send automations concurrency backpressure faults crash \
             multinode hostile storeguard soak runaway lease
# an ASan build is ~2x slower: its time limits (and PostgreSQL-mode leases) get 2x
# The release pass kills the server 20 times under load (crash.test.mjs); the ASan pass
# 8 times and the TSan pass 4: they look for memory and thread errors in the restart and
# recovery paths, which the first kills already take; 20 kills cost ~4 minutes more of
# CI per sanitizer across both stores, and TSan's 8 took 85 s on SQLite alone
ifeq ($(VARIANT),tsan)
  E2E_ENV := HERALD_E2E_TIME_SCALE=$${HERALD_E2E_TIME_SCALE:-8} \
             HERALD_E2E_ONLY="$${HERALD_E2E_ONLY-$(TSAN_E2E)}" \
             HERALD_CRASH_KILLS=$${HERALD_CRASH_KILLS:-4}
else ifeq ($(VARIANT),asan)
  E2E_ENV := HERALD_E2E_TIME_SCALE=$${HERALD_E2E_TIME_SCALE:-2} \
             HERALD_CRASH_KILLS=$${HERALD_CRASH_KILLS:-8}
else
  E2E_ENV :=
endif
CFLAGS    += $(CSTD) $(WARN) $(OPT) $(PKG_CFLAGS) -MMD -MP
LDFLAGS   += $(LDOPT)

B         := build/$(VARIANT)
GEN       := $(B)/gen
SRC       := $(shell find src -name '*.c' | sort)
LIB_SRC   := $(filter-out src/main.c,$(SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(B)/%.o) $(GEN)/embedded.o
# files compiled into the binary (src/util/embedded.h): the OpenAPI document and,
# once it exists, every file under web/ (names without spaces)
EMBED_FILES := docs/openapi.yaml $(shell find web -type f 2>/dev/null | LC_ALL=C sort)
MAIN_OBJ  := $(B)/src/main.o
UNIT_SRC  := $(shell find tests/unit -name 'test_*.c' 2>/dev/null | sort)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)

.PHONY: all run test deps deps-test unit e2e test-rel test-asan test-tsan clean fmt check-layers bench soak FORCE pkg-check check-fresh-make

all: herald

herald: $(B)/herald
	@if [ "$(VARIANT)" = rel ]; then cp $(B)/herald herald.tmp && mv -f herald.tmp herald; fi

$(B)/herald: $(MAIN_OBJ) $(B)/libherald.a
	$(CC) $(LDFLAGS) -o $@ $^ $(MALLOC_LIBS) $(LIBS)

$(B)/libherald.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c | pkg-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# pkg-check: say what is missing instead of failing on `libpq-fe.h: No such file`
pkg-check:
	@if [ -n "$(PKG_MISSING)$(MALLOC_MISSING)" ]; then \
	    echo "make: pkg-config does not find all of: $(PKGS) $(MALLOC_PKG)" >&2; \
	    echo "make: install the Debian packages first: scripts/deps.sh run (or use make run)" >&2; \
	    exit 1; \
	fi

# embedded files: the list is kept in a file that changes only when the list does, so
# adding or removing a file regenerates embedded.c as editing one does
$(GEN)/embedded.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(EMBED_FILES)' | cmp -s - $@ || echo '$(EMBED_FILES)' > $@

FORCE:

$(GEN)/embedded.c: scripts/embed.sh $(EMBED_FILES) $(GEN)/embedded.list
	scripts/embed.sh -o $@ -i embedded.h $(EMBED_FILES)

$(GEN)/embedded.o: $(GEN)/embedded.c src/util/embedded.h
	$(CC) $(CFLAGS) -iquote src/util -c -o $@ $<

# the release unit tests link the allocator the release binary ships with
$(B)/unit/%: tests/unit/%.c $(B)/libherald.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MF $@.d -o $@ $< $(B)/libherald.a $(LDFLAGS) $(MALLOC_LIBS) $(LIBS) -lcmocka

deps:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

# run: the packages first, then the build in a second make, which asks pkg-config only
# now that the -dev packages are in (a prerequisite `herald` would be built with the
# flags this make read before the install, or alongside it under -j)
run: deps
	@$(MAKE) --no-print-directory herald
	./herald serve

# unit: build and run every unit test binary of this variant. The PostgreSQL backend's
# tests need a server (HERALD_TEST_PG_DSN): unless one is given, a throwaway cluster is
# started under build/pg for the run (scripts/pg-test.sh) and stopped after it. Without
# PostgreSQL those tests fail loudly rather than pass.
unit: $(UNIT_BIN)
	@if [ -n "$$HERALD_TEST_PG_DSN" ]; then \
	    exec scripts/run-unit.sh $(UNIT_BIN); \
	fi; \
	trap 'scripts/pg-test.sh stop $$$$' EXIT; trap 'exit 130' INT TERM; \
	dsn=$$(scripts/pg-test.sh start $$$$) || \
	    echo "unit: PostgreSQL could not be started; its tests will fail" >&2; \
	HERALD_TEST_PG_DSN="$$dsn" scripts/run-unit.sh $(UNIT_BIN)

# e2e: the black-box suites against this variant's binary, once on SQLite and once on
# PostgreSQL (HERALD_TEST_PG_DSN; unless given, a throwaway cluster is started as for
# unit). Without PostgreSQL, scripts/run-e2e.sh says so and fails, unless
# HERALD_E2E_SQLITE_ONLY=1 is set.
e2e: $(B)/herald
	@if [ -n "$$HERALD_TEST_PG_DSN" ]; then \
	    $(E2E_ENV) HERALD_BIN=$(CURDIR)/$(B)/herald exec scripts/run-e2e.sh; \
	fi; \
	trap 'scripts/pg-test.sh stop $$$$' EXIT; trap 'exit 130' INT TERM; \
	dsn=$$(scripts/pg-test.sh start $$$$) || \
	    echo "e2e: PostgreSQL could not be started (scripts/pg-test.sh start)" >&2; \
	$(E2E_ENV) HERALD_TEST_PG_DSN="$$dsn" HERALD_BIN=$(CURDIR)/$(B)/herald scripts/run-e2e.sh

test-rel:
	$(MAKE) VARIANT=rel herald unit e2e

test-asan:
	$(MAKE) VARIANT=asan unit e2e

# test-tsan: ThreadSanitizer over the unit tests (most start threads: the store writer,
# queue workers, the HTTP pool) and the e2e suites on both stores. A report fails the
# binary (exit 66) or the e2e test. tests/tsan.supp: suppressions for third-party
# libraries only (none needed so far).
test-tsan:
	$(MAKE) VARIANT=tsan unit e2e

# test: one throwaway PostgreSQL cluster (scripts/pg-test.sh) serves all variants; it is
# stopped at the end, also when a suite fails. Each stage is timed (scripts/stage.sh) and
# the times are printed again at the end, so every suite's cost shows in CI's log.
STAGE_LOG := build/stages.log
test: deps-test
	@mkdir -p build && : > $(STAGE_LOG)
	@trap 'echo "make test: time per stage:"; cat $(STAGE_LOG)' EXIT; \
	export STAGE_LOG=$(STAGE_LOG); \
	scripts/stage.sh check-layers scripts/check-layers.sh && \
	scripts/stage.sh check-fresh-make scripts/check-fresh-make.sh && \
	{ trap 'scripts/pg-test.sh stop $$$$; echo "make test: time per stage:"; cat $(STAGE_LOG)' EXIT; \
	  trap 'exit 130' INT TERM; \
	  dsn=$$(scripts/pg-test.sh start $$$$) || { \
	    echo "make test: PostgreSQL could not be started (scripts/pg-test.sh start)" >&2; \
	    exit 1; }; \
	  echo "make test: PostgreSQL at $$dsn"; \
	  export HERALD_TEST_PG_DSN="$$dsn"; \
	  for v in rel asan tsan; do \
	    scripts/stage.sh build-$$v $(MAKE) VARIANT=$$v herald || exit 1; \
	    scripts/stage.sh unit-$$v $(MAKE) VARIANT=$$v unit || exit 1; \
	    scripts/stage.sh e2e-$$v $(MAKE) VARIANT=$$v e2e || exit 1; \
	  done; \
	  scripts/stage.sh fuzz-replay $(MAKE) fuzz-replay || exit 1; \
	}
	@echo "make test: all suites passed"

check-layers:
	@scripts/check-layers.sh

check-fresh-make:
	@scripts/check-fresh-make.sh

# soak: tests/soak/soak.mjs against the release build on a fresh SQLite store
# (HERALD_TEST_STORE=postgres HERALD_TEST_PG_DSN=... for PostgreSQL): capacity measured
# first (or SOAK_CAPACITY, units/s), then SOAK_SECONDS (1800) at SOAK_FRACTION (0.5) of it,
# one line every SOAK_WINDOW_SECONDS (10); the summary goes to build/soak/report.json.
# `make test` runs a 40-second version (tests/e2e/soak.test.mjs).
SOAK_SECONDS ?= 1800
soak:
	$(MAKE) VARIANT=rel herald
	HERALD_BIN=$(CURDIR)/build/rel/herald SOAK_SECONDS=$(SOAK_SECONDS) node tests/soak/soak.mjs

# bench: the release binary, the bench's own tools (bench/lib.sh's bench_tool uses these
# when they are newer than their source), then every benchmark; rewrites the generated
# section of docs/PERFORMANCE.md. bench/pg.sh starts (and stops) its own throwaway
# PostgreSQL cluster (scripts/pg-test.sh), or says loudly that it skips it.
BENCH_TOOLS := build/bench/sink build/bench/curl_baseline

build/bench/sink: bench/sink.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -o $@ $<

build/bench/curl_baseline: bench/curl_baseline.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -o $@ $< -lcurl

bench:
	scripts/deps.sh bench
	$(MAKE) VARIANT=rel herald
	$(MAKE) $(BENCH_TOOLS)
	@if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	    echo "make bench: PostgreSQL server binaries found: bench/pg.sh runs on a throwaway cluster"; \
	else \
	    echo "make bench: NO PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl): the PostgreSQL part is SKIPPED (scripts/deps.sh test installs them)"; \
	fi
	bench/run.sh --no-build --write-docs

clean:
	rm -rf build herald

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- fuzzing (libFuzzer; tests/fuzz) ----------------------------------------------------
#   make fuzz-build                   clang builds of every target into build/fuzz/
#   make fuzz [FUZZ_SECONDS=60]       fuzz each target for FUZZ_SECONDS on a copy of its
#                                     corpus; new crash inputs go to build/fuzz/crashes/
#   make fuzz-replay                  run each target once over its committed corpus and
#                                     tests/fuzz/crashes/<target>-* (part of make test)
#   make fuzz-merge                   minimize build/fuzz/corpus/<t> (-merge=1) into the
#                                     committed tests/fuzz/corpus/<t>
# The library is compiled again with clang and sanitizer coverage under build/fuzz/obj.
FUZZ_CC      := clang
FUZZ_B       := build/fuzz
FUZZ_TARGETS := segment courier_track hbs elemental expr refs jsonpatch json router \
                retry_after duration iso_time steps http_headers provider_settings tracking
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := $(CSTD) $(WARN) -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) $(PKG_CFLAGS)
FUZZ_OBJ     := $(LIB_SRC:%.c=$(FUZZ_B)/obj/%.o)
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)

.PHONY: fuzz-build fuzz fuzz-replay fuzz-merge

fuzz-build: $(FUZZ_BIN)

$(FUZZ_B)/obj/%.o: %.c | pkg-check
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_B)/libherald.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_B)/libherald.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $< \
		$(FUZZ_B)/libherald.a $(LIBS)

# fuzz: each target in turn on build/fuzz/corpus/<t> (seeded from tests/fuzz/corpus/<t>);
# prints the executions of each run and fails at the end if any target crashed
fuzz: fuzz-build
	@mkdir -p $(FUZZ_B)/crashes $(FUZZ_B)/logs; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_B)/corpus/$$t; cp -n tests/fuzz/corpus/$$t/* $(FUZZ_B)/corpus/$$t/ 2>/dev/null; \
	    dict=""; [ -f tests/fuzz/$$t.dict ] && dict="-dict=tests/fuzz/$$t.dict"; \
	    $(FUZZ_B)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_B)/crashes/$$t- $$dict \
	        $(FUZZ_B)/corpus/$$t > $(FUZZ_B)/logs/$$t.log 2>&1; rc=$$?; \
	    execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_B)/logs/$$t.log | tail -1); \
	    if [ $$rc -eq 0 ]; then echo "fuzz $$t: $${execs:-?} executions, no crash"; \
	    else failed="$$failed $$t"; echo "fuzz $$t: CRASH after $${execs:-?} executions (log $(FUZZ_B)/logs/$$t.log)"; \
	        grep -m1 -E 'ERROR: |runtime error|invariant failed|deadly signal' $(FUZZ_B)/logs/$$t.log; \
	        grep -E 'Test unit written to' $(FUZZ_B)/logs/$$t.log; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed"; exit 1; fi

# fuzz-merge: minimize what `make fuzz` grew (build/fuzz/corpus/<t>) into the committed
# tests/fuzz/corpus/<t>: -merge=1 adds only the inputs that bring new coverage
fuzz-merge: fuzz-build
	@mkdir -p $(FUZZ_B)/logs; for t in $(FUZZ_TARGETS); do \
	    [ -d $(FUZZ_B)/corpus/$$t ] || continue; \
	    $(FUZZ_B)/fuzz_$$t -merge=1 -timeout=10 -rss_limit_mb=2048 tests/fuzz/corpus/$$t \
	        $(FUZZ_B)/corpus/$$t > $(FUZZ_B)/logs/merge-$$t.log 2>&1 || \
	        { echo "fuzz-merge $$t: FAILED (log $(FUZZ_B)/logs/merge-$$t.log)"; exit 1; }; \
	    echo "fuzz-merge $$t: $$(ls tests/fuzz/corpus/$$t | wc -l) inputs, $$(du -sh tests/fuzz/corpus/$$t | cut -f1)"; \
	done

# fuzz-replay: every committed seed once, plus the saved crash inputs (regression seeds)
fuzz-replay: fuzz-build
	@mkdir -p $(FUZZ_B)/logs; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    crashes=$$(ls tests/fuzz/crashes/$$t-* 2>/dev/null); \
	    if $(FUZZ_B)/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t > $(FUZZ_B)/logs/replay-$$t.log 2>&1 && \
	       { [ -z "$$crashes" ] || $(FUZZ_B)/fuzz_$$t $$crashes >> $(FUZZ_B)/logs/replay-$$t.log 2>&1; }; then \
	        echo "fuzz-replay $$t: $$(ls tests/fuzz/corpus/$$t | wc -l) seeds$${crashes:+, $$(echo $$crashes | wc -w) crash inputs}: ok"; \
	    else failed="$$failed $$t"; echo "fuzz-replay $$t: FAILED"; tail -n 30 $(FUZZ_B)/logs/replay-$$t.log; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-replay: failures in:$$failed"; exit 1; fi
