if HAVE_CMOCKA
UNIT_TESTS = \
	tests/unit/test_util \
	tests/unit/test_log \
	tests/unit/test_config
UNIT_TESTS += tests/unit/test_tls tests/unit/test_manpage
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
UNIT_LDADD = $(MT_LIBS) $(CMOCKA_LIBS)
UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)

tests_unit_test_util_SOURCES = tests/unit/test_util.c
tests_unit_test_util_LDADD = $(UNIT_LDADD)
tests_unit_test_util_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_log_SOURCES = tests/unit/test_log.c
tests_unit_test_log_LDADD = $(UNIT_LDADD)
tests_unit_test_log_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_LDADD = $(UNIT_LDADD)
tests_unit_test_config_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_tls_SOURCES = tests/unit/test_tls.c \
	tests/unit/test_tls_verify.c tests/unit/test_tls_session.c \
	tests/unit/test_tls_phrase.c tests/unit/tls_tests.h \
	tests/unit/tls_testpki.c tests/unit/tls_testfixture.c \
	tests/unit/tls_testpki.h
tests_unit_test_tls_LDADD = $(UNIT_LDADD)
tests_unit_test_tls_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_manpage_SOURCES = tests/unit/test_manpage.c
tests_unit_test_manpage_LDADD = $(UNIT_LDADD)
tests_unit_test_manpage_CFLAGS = $(UNIT_CFLAGS) -DMT_TEST_SRCDIR='"$(abs_top_srcdir)"'
endif
# STARTTLS state machines.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_starttls
TESTS += tests/unit/test_starttls
tests_unit_test_starttls_SOURCES = tests/unit/test_starttls.c
tests_unit_test_starttls_LDADD = $(UNIT_LDADD)
tests_unit_test_starttls_CFLAGS = $(UNIT_CFLAGS)
endif
