noinst_LIBRARIES += src/libmailtunnel.a
src_libmailtunnel_a_SOURCES = \
	src/log.c \
	src/log_redact.c \
	src/util/str.c \
	src/util/num.c
# fetch: exactly-once ledger
src_libmailtunnel_a_SOURCES += \
	src/fetch/ledger.c \
	src/fetch/ledger_ops.c \
	src/fetch/ledger_rec.c \
	src/fetch/ledger_set.c \
	src/fetch/ledger_file.c \
	src/fetch/ledger_load.c \
	src/fetch/ledger_snap.c
EXTRA_DIST += doc/exactly-once.md
# fetch: delivery targets
src_libmailtunnel_a_SOURCES += \
	src/fetch/deliver.c \
	src/fetch/deliver_xform.c \
	src/fetch/deliver_file.c \
	src/fetch/deliver_maildir.c \
	src/fetch/deliver_dir.c \
	src/fetch/deliver_mbox.c \
	src/fetch/deliver_mbox_scan.c

bin_PROGRAMS += src/mailtunnel
src_mailtunnel_SOURCES = src/main.c
src_mailtunnel_LDADD = $(MT_LIBS)
