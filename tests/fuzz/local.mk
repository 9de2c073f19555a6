if ENABLE_FUZZING
FUZZ_LINK = -fsanitize=fuzzer
endif
# STARTTLS state machines (tests/fuzz/fuzz_starttls.c).
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_starttls
tests_fuzz_fuzz_starttls_SOURCES = tests/fuzz/fuzz_starttls.c
tests_fuzz_fuzz_starttls_LDADD = $(MT_LIBS)
tests_fuzz_fuzz_starttls_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LINK)
endif
