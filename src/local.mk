noinst_LIBRARIES += src/libmailtunnel.a
src_libmailtunnel_a_SOURCES = \
	src/log.c \
	src/log_redact.c \
	src/util/str.c \
	src/util/num.c \
	src/config.c \
	src/config_int.h \
	src/config_read.c \
	src/config_options.c \
	src/config_report.c \
	src/config_types.c \
	src/config_net_types.c \
	src/config_tls_types.c \
	src/net.c \
	src/service.c \
	src/tunnel.c \
	src/tunnel_connect.c \
	src/tunnel_int.h \
	src/worker.c \
	src/generation.c \
	src/daemon.c \
	src/daemon_int.h
src_libmailtunnel_a_SOURCES += src/tls.c src/tls_files.c src/tls_conn.c src/tls_verify.c \
	src/tls_session.c src/tls_reason.c src/tls_phrase.c src/tls_int.h

bin_PROGRAMS += src/mailtunnel
src_mailtunnel_SOURCES = src/main.c
src_mailtunnel_LDADD = $(MT_LIBS)
# STARTTLS: protocol options, the negotiation module and the tunnel glue.
src_libmailtunnel_a_SOURCES += src/config_proto_types.c
src_libmailtunnel_a_SOURCES += src/starttls.c include/mailtunnel/starttls.h
src_libmailtunnel_a_SOURCES += src/starttls_proto.c src/starttls_int.h
src_libmailtunnel_a_SOURCES += src/tunnel_starttls.c
