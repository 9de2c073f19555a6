## libFuzzer harnesses, one per parser. Built with
## ./configure --enable-fuzzing CC=clang; "make fuzz-smoke" runs each one
## for FUZZ_SMOKE_SECONDS on a copy of its seed corpus (tests/fuzz/corpus).
FUZZ_HARNESSES = \
	tests/fuzz/fuzz_pop3 \
	tests/fuzz/fuzz_imap \
	tests/fuzz/fuzz_url \
	tests/fuzz/fuzz_sasl \
	tests/fuzz/fuzz_starttls \
	tests/fuzz/fuzz_config
FUZZ_SMOKE_SECONDS = 10
EXTRA_DIST += tests/fuzz/smoke.sh tests/fuzz/corpus tests/fuzz/imap.dict \
	tests/fuzz/pop3.dict tests/fuzz/url.dict

if ENABLE_FUZZING
FUZZ_LINK = -fsanitize=fuzzer
noinst_PROGRAMS += $(FUZZ_HARNESSES)
else
FUZZ_LINK =
endif

tests_fuzz_fuzz_pop3_SOURCES = tests/fuzz/fuzz_pop3.c
tests_fuzz_fuzz_pop3_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_pop3_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
tests_fuzz_fuzz_imap_SOURCES = tests/fuzz/fuzz_imap.c
tests_fuzz_fuzz_imap_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_imap_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
tests_fuzz_fuzz_url_SOURCES = tests/fuzz/fuzz_url.c
tests_fuzz_fuzz_url_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_url_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
tests_fuzz_fuzz_sasl_SOURCES = tests/fuzz/fuzz_sasl.c
tests_fuzz_fuzz_sasl_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_sasl_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
tests_fuzz_fuzz_starttls_SOURCES = tests/fuzz/fuzz_starttls.c
tests_fuzz_fuzz_starttls_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_starttls_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c
tests_fuzz_fuzz_config_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_config_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)

.PHONY: fuzz-smoke
if ENABLE_FUZZING
fuzz-smoke: $(FUZZ_HARNESSES)
	$(SHELL) $(srcdir)/tests/fuzz/smoke.sh $(FUZZ_SMOKE_SECONDS) \
	    $(FUZZ_HARNESSES)
else
fuzz-smoke:
	@echo "fuzz-smoke: run ./configure --enable-fuzzing CC=clang first" >&2
	@exit 1
endif
# smtp/lmtp delivery: replies, the DATA transform, the header block.
FUZZ_HARNESSES += tests/fuzz/fuzz_smtp
tests_fuzz_fuzz_smtp_SOURCES = tests/fuzz/fuzz_smtp.c
tests_fuzz_fuzz_smtp_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_smtp_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
