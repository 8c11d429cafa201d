# herald: a plain Makefile over pkg-config.
#   make            build ./herald (release, -O2)
#   make run        install missing packages, build, start `herald serve` on SQLite
#   make test       install what tests need, build, run unit + e2e suites, plain and
#                   under ASan+UBSan
#   make clean

PKGS      := libmicrohttpd libcjson libcurl sqlite3 libpq openssl zlib libcmark
CC        ?= cc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN      := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes
CSTD      := -std=c11 -D_GNU_SOURCE
LIBS      := $(PKG_LIBS) -lpthread -lm

# build variants: rel (default) and asan (ASan + UBSan, abort on first report)
VARIANT   ?= rel
ifeq ($(VARIANT),asan)
  OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  LDOPT   := -fsanitize=address,undefined
else
  OPT     := -O2 -g
  LDOPT   :=
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

.PHONY: all run test deps deps-test unit e2e test-rel test-asan clean fmt check-layers bench FORCE

all: herald

herald: $(B)/herald
	@if [ "$(VARIANT)" = rel ]; then cp $(B)/herald herald.tmp && mv -f herald.tmp herald; fi

$(B)/herald: $(MAIN_OBJ) $(B)/libherald.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/libherald.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

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

$(B)/unit/%: tests/unit/%.c $(B)/libherald.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MF $@.d -o $@ $< $(B)/libherald.a $(LDFLAGS) $(LIBS) -lcmocka

deps:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

run: deps herald
	./herald serve

# unit: build and run every unit test binary of this variant
unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

# e2e: the black-box suites against this variant's binary
e2e: $(B)/herald
	@HERALD_BIN=$(CURDIR)/$(B)/herald scripts/run-e2e.sh

test-rel:
	$(MAKE) VARIANT=rel herald unit e2e

test-asan:
	$(MAKE) VARIANT=asan unit e2e

test: deps-test
	@scripts/check-layers.sh
	$(MAKE) test-rel
	$(MAKE) test-asan
	@echo "make test: all suites passed"

check-layers:
	@scripts/check-layers.sh

clean:
	rm -rf build herald

-include $(shell find build -name '*.d' 2>/dev/null)
