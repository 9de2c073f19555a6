if HAVE_CMOCKA
UNIT_TESTS = \
	tests/unit/test_util \
	tests/unit/test_log \
	tests/unit/test_config
UNIT_TESTS += tests/unit/test_tls tests/unit/test_manpage
UNIT_TESTS += \
	tests/unit/test_sasl \
	tests/unit/test_pop3_parse \
	tests/unit/test_pop3_multiline \
	tests/unit/test_fetch_url \
	tests/unit/test_imap_parse \
	tests/unit/test_imap_errors
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
tests_unit_test_sasl_SOURCES = tests/unit/test_sasl.c
tests_unit_test_sasl_LDADD = $(UNIT_LDADD)
tests_unit_test_sasl_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_pop3_parse_SOURCES = tests/unit/test_pop3_parse.c
tests_unit_test_pop3_parse_LDADD = $(UNIT_LDADD)
tests_unit_test_pop3_parse_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_pop3_multiline_SOURCES = tests/unit/test_pop3_multiline.c
tests_unit_test_pop3_multiline_LDADD = $(UNIT_LDADD)
tests_unit_test_pop3_multiline_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_fetch_url_SOURCES = tests/unit/test_fetch_url.c
tests_unit_test_fetch_url_LDADD = $(UNIT_LDADD)
tests_unit_test_fetch_url_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_imap_parse_SOURCES = tests/unit/test_imap_parse.c \
	tests/unit/imap_events.c tests/unit/imap_events.h
tests_unit_test_imap_parse_LDADD = $(UNIT_LDADD)
tests_unit_test_imap_parse_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_imap_errors_SOURCES = tests/unit/test_imap_errors.c \
	tests/unit/imap_events.c tests/unit/imap_events.h
tests_unit_test_imap_errors_LDADD = $(UNIT_LDADD)
tests_unit_test_imap_errors_CFLAGS = $(UNIT_CFLAGS)

# fetch: ledger and delivery targets
UNIT_TESTS += tests/unit/test_ledger tests/unit/test_deliver \
	tests/unit/test_deliver_mbox tests/unit/test_deliver_crash
tests_unit_test_ledger_SOURCES = tests/unit/test_ledger.c
tests_unit_test_ledger_LDADD = $(UNIT_LDADD)
tests_unit_test_ledger_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_deliver_SOURCES = tests/unit/test_deliver.c \
	tests/unit/test_deliver_util.h
tests_unit_test_deliver_LDADD = $(UNIT_LDADD)
tests_unit_test_deliver_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_deliver_mbox_SOURCES = tests/unit/test_deliver_mbox.c \
	tests/unit/test_deliver_util.h
tests_unit_test_deliver_mbox_LDADD = $(UNIT_LDADD)
tests_unit_test_deliver_mbox_CFLAGS = $(UNIT_CFLAGS)
# Not cmocka: a driver that kills a workload; --bench measures speed.
tests_unit_test_deliver_crash_SOURCES = tests/unit/test_deliver_crash.c
tests_unit_test_deliver_crash_LDADD = $(MT_LIBS)
endif
# STARTTLS state machines.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_starttls
TESTS += tests/unit/test_starttls
tests_unit_test_starttls_SOURCES = tests/unit/test_starttls.c
tests_unit_test_starttls_LDADD = $(UNIT_LDADD)
tests_unit_test_starttls_CFLAGS = $(UNIT_CFLAGS)
endif
# fetch: the job's pure pieces and its secrets.
if HAVE_CMOCKA
UNIT_TESTS += tests/unit/test_fetch tests/unit/test_fetch_cmd
tests_unit_test_fetch_SOURCES = tests/unit/test_fetch.c
tests_unit_test_fetch_LDADD = $(UNIT_LDADD)
tests_unit_test_fetch_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_fetch_cmd_SOURCES = tests/unit/test_fetch_cmd.c
tests_unit_test_fetch_cmd_LDADD = $(UNIT_LDADD)
tests_unit_test_fetch_cmd_CFLAGS = $(UNIT_CFLAGS)
endif
# fetch: command, SMTP and LMTP delivery targets
if HAVE_CMOCKA
UNIT_TESTS += tests/unit/test_deliver_mda
tests_unit_test_deliver_mda_SOURCES = tests/unit/test_deliver_mda.c \
	tests/unit/test_deliver_util.h
tests_unit_test_deliver_mda_LDADD = $(UNIT_LDADD)
tests_unit_test_deliver_mda_CFLAGS = $(UNIT_CFLAGS)
endif
if HAVE_CMOCKA
UNIT_TESTS += tests/unit/test_deliver_smtp
tests_unit_test_deliver_smtp_SOURCES = tests/unit/test_deliver_smtp.c
tests_unit_test_deliver_smtp_LDADD = $(UNIT_LDADD)
tests_unit_test_deliver_smtp_CFLAGS = $(UNIT_CFLAGS)
endif
# The same tests without pidfds: children's ends found by polling.
if HAVE_CMOCKA
UNIT_TESTS += tests/unit/test_deliver_mda_poll
tests_unit_test_deliver_mda_poll_SOURCES = tests/unit/test_deliver_mda.c \
	tests/unit/test_deliver_util.h
tests_unit_test_deliver_mda_poll_LDADD = $(UNIT_LDADD)
tests_unit_test_deliver_mda_poll_CFLAGS = $(UNIT_CFLAGS) -DMT_TEST_NO_PIDFD
endif
