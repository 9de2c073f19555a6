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
	src/fetch/url.c

bin_PROGRAMS += src/mailtunnel
src_mailtunnel_SOURCES = src/main.c
src_mailtunnel_LDADD = $(MT_LIBS)
