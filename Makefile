# rmilter -- top-level Makefile.
#
#   make                      build the daemon at src/rmilter
#   make SANITIZER=address,undefined   the same, instrumented (objects in build/san-*)
#   make check                every test: unit (plain + ASan/UBSan + valgrind), e2e (real Postfix), short fuzz
#   make unit                 unit tests only
#   make e2e                  end-to-end tests only (needs the test dependencies, see test/ci.sh)
#   make fuzz                 run every libFuzzer target (FUZZ_SECONDS each, default 60)
#   make bench                the load benchmark against rmilter and a libmilter floor
#   make install              PREFIX=/usr/local DESTDIR=
#   make clean

VERSION    := 0.1.0
CC         ?= cc
PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr/local
DESTDIR    ?=
SANITIZER  ?=
WERROR     ?= -Werror
comma      := ,

PKGS       := libevent libpcre2-8 jansson hiredis libcrypto opendkim libcares
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null || echo -levent -lpcre2-8 -ljansson -lhiredis -lcrypto -lopendkim -lcares)

WARN    := -Wall -Wextra $(WERROR) -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -Ilib -Isrc $(PKG_CFLAGS) \
             -DRMILTER_VERSION='"$(VERSION)"' -D_GNU_SOURCE
LDLIBS  := $(PKG_LIBS) -lspf2 -lm   # libspf2 ships no .pc file

ifneq ($(SANITIZER),)
VARIANT    := san-$(subst $(comma),_,$(SANITIZER))
ALL_CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SANITIZER)
else
VARIANT    := default
endif
B        := build/$(VARIANT)
LIB_SRCS := $(wildcard lib/*.c)
SRC_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
CORE_OBJS := $(patsubst %.c,$(B)/%.o,$(LIB_SRCS) $(SRC_SRCS))
UNIT_SRCS := $(wildcard test/unit/test_*.c)
UNIT_BINS := $(patsubst test/unit/%.c,$(B)/test/%,$(UNIT_SRCS))

.PHONY: all check unit e2e fuzz fuzz-build bench install clean FORCE

all: src/rmilter

# The daemon always appears at src/rmilter; it is re-copied whenever the
# variant's binary differs (so SANITIZER builds replace it, and back).
src/rmilter: $(B)/rmilter FORCE
	@cmp -s $(B)/rmilter $@ || { cp $(B)/rmilter $@.tmp && mv -f $@.tmp $@; }

$(B)/rmilter: $(B)/src/main.o $(B)/librmilter.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/librmilter.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c $(wildcard lib/*.h src/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/test/%: test/unit/%.c test/unit/tt.h $(B)/librmilter.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itest/unit $(LDFLAGS) -o $@ $< $(B)/librmilter.a $(LDLIBS)

unit-build: $(UNIT_BINS)

# ---- tests ---------------------------------------------------------------
check: all
	bash test/run-all.sh

unit: all $(UNIT_BINS)
	bash test/run-unit.sh $(B)

e2e: all
	bash test/e2e/run.sh

# ---- fuzzing (clang + libFuzzer) ----------------------------------------
FUZZ_SRCS := $(wildcard test/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst test/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_CORE := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRCS) $(SRC_SRCS))
FUZZ_CFLAGS = -std=gnu11 -g -O1 -Ilib -Isrc $(PKG_CFLAGS) -DRMILTER_VERSION='"$(VERSION)"' \
              -D_GNU_SOURCE -DFUZZING -fsanitize=fuzzer-no-link,address,undefined
FUZZ_SECONDS ?= 60

build/fuzz/obj/%.o: %.c $(wildcard lib/*.h src/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c -o $@ $<

build/fuzz/%: test/fuzz/%.c $(FUZZ_CORE)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_CORE) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# keep the instrumented objects between fuzz builds
.SECONDARY: $(FUZZ_CORE)

fuzz: fuzz-build
	bash test/fuzz/run.sh $(FUZZ_SECONDS)

# ---- benchmark ------------------------------------------------------------
bench: all
	bash test/bench/run.sh

# ---- install ---------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)/etc
	install -m 0755 src/rmilter $(DESTDIR)$(PREFIX)/sbin/rmilter
	install -m 0644 man/rmilter.8 $(DESTDIR)$(PREFIX)/share/man/man8/rmilter.8
	install -m 0644 man/rmilter.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/rmilter.conf.5
	test -e $(DESTDIR)/etc/rmilter.conf || install -m 0644 conf/rmilter.conf $(DESTDIR)/etc/rmilter.conf

clean:
	rm -rf build src/rmilter

FORCE:
