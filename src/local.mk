noinst_LIBRARIES += src/libmailtunnel.a
src_libmailtunnel_a_SOURCES = \
	src/log.c \
	src/log_redact.c \
	src/util/str.c \
	src/util/num.c \
	src/fetch/sasl.c \
	src/fetch/sasl_oauth.c \
	src/fetch/pop3_parse.c \
	src/fetch/pop3_multiline.c \
	src/fetch/url.c \
	src/fetch/imap_parse.c \
	src/fetch/imap_resp.c \
	src/fetch/imap_items.c \
	src/fetch/imap_search.c \
	src/fetch/imap_internal.h \
	src/fetch/imap_rd.h

bin_PROGRAMS += src/mailtunnel
src_mailtunnel_SOURCES = src/main.c
src_mailtunnel_LDADD = $(MT_LIBS)
