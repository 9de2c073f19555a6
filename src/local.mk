noinst_LIBRARIES += src/libmailtunnel.a
src_libmailtunnel_a_SOURCES = \
	src/log.c \
	src/log_redact.c \
	src/util/str.c \
	src/util/num.c \
	src/util/io.c \
	src/config.c \
	src/config_int.h \
	src/config_read.c \
	src/config_options.c \
	src/config_report.c \
	src/config_types.c \
	src/config_net_types.c \
	src/config_tls_types.c \
	src/config_fetch_types.c \
	src/config_validate.c \
	src/net.c \
	src/stream.c \
	src/service.c \
	src/tunnel.c \
	src/tunnel_connect.c \
	src/tunnel_int.h \
	src/worker.c \
	src/generation.c \
	src/daemon.c \
	src/privileges.c \
	src/check.c \
	src/fetch_service.c \
	src/fetcher.c \
	src/daemon_int.h
src_libmailtunnel_a_SOURCES += src/ocsp.c include/mailtunnel/ocsp.h
src_libmailtunnel_a_SOURCES += src/tls.c src/tls_files.c src/tls_conn.c src/tls_verify.c \
	src/tls_session.c src/tls_reason.c src/tls_phrase.c src/tls_int.h
src_libmailtunnel_a_SOURCES += \
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
# fetch: exactly-once ledger
src_libmailtunnel_a_SOURCES += \
	src/fetch/ledger.c \
	src/fetch/ledger_ops.c \
	src/fetch/ledger_rec.c \
	src/fetch/ledger_set.c \
	src/fetch/ledger_file.c \
	src/fetch/ledger_load.c \
	src/fetch/ledger_snap.c

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
# STARTTLS: protocol options, the negotiation module and the tunnel glue.
src_libmailtunnel_a_SOURCES += src/config_proto_types.c
src_libmailtunnel_a_SOURCES += src/starttls.c include/mailtunnel/starttls.h
src_libmailtunnel_a_SOURCES += src/starttls_proto.c src/starttls_int.h
src_libmailtunnel_a_SOURCES += src/tunnel_starttls.c
# Public headers: listed so that they reach the tarball.
noinst_HEADERS = \
	include/mailtunnel/check.h \
	include/mailtunnel/config.h \
	include/mailtunnel/deliver.h \
	include/mailtunnel/daemon.h \
	include/mailtunnel/fetch_service.h \
	include/mailtunnel/fetcher.h \
	include/mailtunnel/fetch_url.h \
	include/mailtunnel/imap_parse.h \
	include/mailtunnel/ledger.h \
	include/mailtunnel/log.h \
	include/mailtunnel/net.h \
	include/mailtunnel/privileges.h \
	include/mailtunnel/stream.h \
	include/mailtunnel/pop3_parse.h \
	include/mailtunnel/sasl.h \
	include/mailtunnel/service.h \
	include/mailtunnel/tls.h \
	include/mailtunnel/tunnel.h \
	include/mailtunnel/util.h \
	include/mailtunnel/worker.h
# STARTTLS injection checks shared by the tunnel and the fetcher.
src_libmailtunnel_a_SOURCES += src/starttls_watch.c include/mailtunnel/starttls_watch.h
# fetch: the job, its connection, the POP3 and IMAP clients, secrets.
src_libmailtunnel_a_SOURCES += \
	src/fetch/fetch.c \
	src/fetch/fetch_run.c \
	src/fetch/fetch_msg.c \
	src/fetch/fetch_batch.c \
	src/fetch/fetch_policy.c \
	src/fetch/fetch_recover.c \
	src/fetch/fetch_proto.c \
	src/fetch/fetch_int.h \
	src/fetch/fetch_conn.c \
	src/fetch/fetch_conn_io.c \
	src/fetch/fetch_conn.h \
	src/fetch/fetch_conn_int.h \
	src/fetch/secret.c \
	src/fetch/secret.h \
	src/fetch/hdrscan.c \
	src/fetch/hdrscan.h \
	src/fetch/imap_cmd.c \
	src/fetch/imap_cmd.h \
	src/fetch/pop3_client.c \
	src/fetch/pop3_session.c \
	src/fetch/pop3_client.h \
	src/fetch/imap_client.c \
	src/fetch/imap_session.c \
	src/fetch/imap_client.h \
	include/mailtunnel/fetch.h
# fetch: the "mailtunnel fetch" subcommand.
src_mailtunnel_SOURCES += src/fetch_cli.c src/fetch_cli.h \
	src/fetch_config_cli.c
# Private headers of the fetch delivery and ledger modules.
src_libmailtunnel_a_SOURCES += src/fetch/deliver_priv.h \
	src/fetch/deliver_mbox.h src/fetch/ledger_priv.h
# fetch: command, SMTP and LMTP delivery targets
src_libmailtunnel_a_SOURCES += src/fetch/deliver_envelope.c
src_libmailtunnel_a_SOURCES += src/fetch/deliver_mda.c src/fetch/deliver_mda_run.c
src_libmailtunnel_a_SOURCES += src/fetch/deliver_mda.h
src_libmailtunnel_a_SOURCES += src/fetch/deliver_smtp.c src/fetch/deliver_smtp_conn.c
src_libmailtunnel_a_SOURCES += src/fetch/deliver_smtp_proto.c src/fetch/deliver_smtp_parse.c
src_libmailtunnel_a_SOURCES += src/fetch/deliver_smtp.h
EXTRA_DIST += doc/delivery-targets.md
