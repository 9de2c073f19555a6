if HAVE_CMOCKA
UNIT_TESTS = \
	tests/unit/test_util \
	tests/unit/test_log
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
