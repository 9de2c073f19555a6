## Installation beyond the binary and the man pages: the configuration,
## the documentation, the systemd units; and the Debian packaging, which
## is not used by make but travels in the tarball.

# The example configuration becomes the configuration, unless there is one
# already: make install never overwrites an administrator's file, and
# make uninstall removes it only while it is still the example.
mailtunnelconfdir = $(sysconfdir)/mailtunnel
install-data-local: install-mailtunnel-conf
uninstall-local: uninstall-mailtunnel-conf

install-mailtunnel-conf:
	$(MKDIR_P) '$(DESTDIR)$(mailtunnelconfdir)'
	@f='$(DESTDIR)$(mailtunnelconfdir)/mailtunnel.conf'; \
	if test -f "$$f"; then \
	  echo "keeping $$f; the new example is $(DESTDIR)$(mtexamplesdir)/mailtunnel.conf"; \
	else \
	  echo " $(INSTALL_DATA) $(srcdir)/etc/mailtunnel.conf $$f"; \
	  $(INSTALL_DATA) '$(srcdir)/etc/mailtunnel.conf' "$$f"; \
	fi

uninstall-mailtunnel-conf:
	@f='$(DESTDIR)$(mailtunnelconfdir)/mailtunnel.conf'; \
	if cmp -s '$(srcdir)/etc/mailtunnel.conf' "$$f"; then \
	  echo " rm -f $$f"; rm -f "$$f"; \
	elif test -f "$$f"; then \
	  echo "keeping $$f: it differs from the example"; \
	fi; \
	rmdir '$(DESTDIR)$(mailtunnelconfdir)' 2>/dev/null || :

.PHONY: install-mailtunnel-conf uninstall-mailtunnel-conf

dist_doc_DATA = README.md doc/exactly-once.md
mtexamplesdir = $(docdir)/examples
mtexamples_DATA = etc/mailtunnel.conf
EXTRA_DIST += etc/mailtunnel.conf

# systemd units: the sandbox is written once (hardening.in) and pasted
# into both; paths follow configure's bindir and sysconfdir.
MT_UNITS = contrib/systemd/mailtunnel.service contrib/systemd/mailtunnel@.service
if INSTALL_SYSTEMD_UNITS
systemdsystemunit_DATA = $(MT_UNITS)
endif
noinst_DATA = $(MT_UNITS)
CLEANFILES += $(MT_UNITS)
EXTRA_DIST += contrib/systemd/mailtunnel.service.in \
	contrib/systemd/mailtunnel@.service.in contrib/systemd/hardening.in

MT_UNIT_SUBST = sed -e 's|@bindir[@]|$(bindir)|g' \
	-e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@MT_UNIT_TYPE[@]|$(MT_UNIT_TYPE)|g' \
	-e '/@MT_UNIT_HARDENING[@]/{r $(srcdir)/contrib/systemd/hardening.in' \
	-e 'd;}'

contrib/systemd/mailtunnel.service: $(srcdir)/contrib/systemd/mailtunnel.service.in \
		$(srcdir)/contrib/systemd/hardening.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	$(MT_UNIT_SUBST) $(srcdir)/contrib/systemd/mailtunnel.service.in >$@.tmp && \
	mv $@.tmp $@

contrib/systemd/mailtunnel@.service: $(srcdir)/contrib/systemd/mailtunnel@.service.in \
		$(srcdir)/contrib/systemd/hardening.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	$(MT_UNIT_SUBST) $(srcdir)/contrib/systemd/mailtunnel@.service.in >$@.tmp && \
	mv $@.tmp $@

AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-systemdsystemunitdir='$${dc_install_base}/lib/systemd/system'

# Debian packaging: contrib/debian/build copies it to debian/ in a copy of
# the tree and runs dpkg-buildpackage (see README.md).
EXTRA_DIST += \
	contrib/debian/build \
	contrib/debian/changelog \
	contrib/debian/control \
	contrib/debian/copyright \
	contrib/debian/mailtunnel.lintian-overrides \
	contrib/debian/mailtunnel.postinst \
	contrib/debian/mailtunnel.postrm \
	contrib/debian/rules \
	contrib/debian/source/format
