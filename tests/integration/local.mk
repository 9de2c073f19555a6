INTEGRATION_TESTS =
INTEGRATION_TESTS += tests/integration/test_fixtures.py \
	tests/integration/test_tunnel_mail.py \
	tests/integration/test_tunnel_certs.py \
	tests/integration/test_tunnel_ocsp.py \
	tests/integration/test_tunnel_stream.py \
	tests/integration/test_tunnel_failover.py \
	tests/integration/test_daemon_lifecycle.py \
	tests/integration/test_user_configs.py \
	tests/integration/test_tunnel_limits.py
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS)
# The fixture library the tests import, its documentation and the helper
# to run one test by hand.
EXTRA_DIST += \
	tests/integration/README.md \
	tests/integration/run-one \
	tests/integration/mtlib/__init__.py \
	tests/integration/mtlib/daemon.py \
	tests/integration/mtlib/dovecot.py \
	tests/integration/mtlib/env.py \
	tests/integration/mtlib/mail.py \
	tests/integration/mtlib/netns.py \
	tests/integration/mtlib/peers.py \
	tests/integration/mtlib/pki.py \
	tests/integration/mtlib/runner.py \
	tests/integration/mtlib/script.py \
	tests/integration/mtlib/smtp.py \
	tests/integration/mtlib/smtpd_child.py \
	tests/integration/mtlib/sserver.py \
	tests/integration/mtlib/standin_daemon.py \
	tests/integration/mtlib/tlsserver.py
EXTRA_DIST += \
	tests/integration/data/user-stunnel-1.conf \
	tests/integration/data/user-stunnel-2.conf \
	tests/integration/data/stunnel-sample-gmail.conf
INTEGRATION_TESTS += tests/integration/test_privileges.py
# Builds, installs and purges the Debian package (root; about 25 s).
INTEGRATION_TESTS += tests/integration/test_package.py
# STARTTLS: real servers, then one scripted hostile server per rule.
INTEGRATION_TESTS += tests/integration/test_tunnel_starttls.py \
	tests/integration/test_tunnel_starttls_hostile.py
# fetch: real Dovecot (contents, policies), kill -9 proof, hostile servers.
INTEGRATION_TESTS += tests/integration/test_fetch_mail.py
INTEGRATION_TESTS += tests/integration/test_fetch_crash.py
INTEGRATION_TESTS += tests/integration/test_fetch_hostile.py
INTEGRATION_TESTS += tests/integration/test_fetch_policy.py
EXTRA_DIST += tests/integration/fetchlib.py
# Delivery to commands, SMTP and LMTP servers, through a fetcher stand-in.
check_PROGRAMS += tests/integration/deliver_driver
tests_integration_deliver_driver_SOURCES = tests/integration/deliver_driver.c
tests_integration_deliver_driver_LDADD = $(MT_LIBS)
INTEGRATION_TESTS += tests/integration/test_deliver_remote.py
INTEGRATION_TESTS += tests/integration/test_deliver_remote_hostile.py
# fetch into commands, SMTP and LMTP (the asynchronous targets).
INTEGRATION_TESTS += tests/integration/test_fetch_targets.py
INTEGRATION_TESTS += tests/integration/test_fetch_daemon.py
