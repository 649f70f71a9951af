/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "lb-autoconfig.h"
#include "lb-test-util.h"

/*
 * lb-autoconfig against real servers: documents served by python3's http.server (a 404
 * on the first URL falls through to the well-known one; malformed XML is a clear error),
 * SRV records served by dnsmasq, and probing the Dovecot/Postfix fixture for greetings
 * with its CA; then all three in turn (discover).
 */

static LbTestServers *servers;
static LbTestWeb *web;
static char *base_url;

static void
write_file (const char *relative,
            const char *contents)
{
  lb_test_web_write (web, relative, contents);
}

static void
remove_file (const char *relative)
{
  lb_test_web_remove (web, relative);
}

static char *
fixture_config (void)
{
  return g_strdup_printf (
    "<?xml version=\"1.0\"?>\n<clientConfig version=\"1.1\">\n"
    " <emailProvider id=\"example.test\">\n  <domain>example.test</domain>\n"
    "  <displayName>Fixture</displayName>\n"
    "  <incomingServer type=\"imap\"><hostname>%s</hostname><port>%u</port>"
    "<socketType>SSL</socketType><username>%%EMAILLOCALPART%%</username>"
    "<authentication>password-cleartext</authentication></incomingServer>\n"
    "  <incomingServer type=\"pop3\"><hostname>%s</hostname><port>%u</port>"
    "<socketType>STARTTLS</socketType><username>%%EMAILADDRESS%%</username></incomingServer>\n"
    "  <outgoingServer type=\"smtp\"><hostname>%s</hostname><port>%u</port>"
    "<socketType>STARTTLS</socketType><username>%%EMAILADDRESS%%</username>"
    "<authentication>password-cleartext</authentication></outgoingServer>\n"
    " </emailProvider>\n</clientConfig>\n",
    servers->host, (guint) servers->imaps_port, servers->host, (guint) servers->pop3_port,
    servers->host, (guint) servers->submission_port);
}

static LbAutoconfig *
lookup (const char *address,
        GError    **error)
{
  LbAutoconfigOptions options = { .base_url_override = base_url, .timeout_seconds = 10 };
  LbTestWait w = { 0 };
  LbAutoconfig *c;

  lb_autoconfig_lookup_async (address, &options, NULL, lb_test_wait_cb, &w);
  c = lb_autoconfig_lookup_finish (lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return c;
}

static void
test_lookup_first (void)
{
  g_autofree char *xml = fixture_config ();
  g_autofree char *expected = g_strdup_printf ("%s/mail/config-v1.1.xml"
                                               "?emailaddress=alice%%40example.test", base_url);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;
  LbAccountServer *s;

  write_file ("mail/config-v1.1.xml", xml);
  c = lookup ("alice@example.test", &error);
  remove_file ("mail/config-v1.1.xml");
  g_assert_no_error (error);
  g_assert_cmpstr (c->source, ==, expected);
  g_assert_cmpstr (c->display_name, ==, "Fixture");
  g_assert_cmpuint (c->incoming->len, ==, 2);
  g_assert_cmpuint (c->outgoing->len, ==, 1);
  s = g_ptr_array_index (c->incoming, 0);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_IMAP);
  g_assert_cmpstr (s->host, ==, servers->host);
  g_assert_cmpuint (s->port, ==, servers->imaps_port);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_TLS);
  g_assert_cmpstr (s->user, ==, "alice");
  s = g_ptr_array_index (c->incoming, 1);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_POP3);
  g_assert_cmpuint (s->port, ==, servers->pop3_port);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_STARTTLS);
  g_assert_cmpstr (s->user, ==, "alice@example.test");
  s = g_ptr_array_index (c->outgoing, 0);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_SMTP);
  g_assert_cmpuint (s->port, ==, servers->submission_port);
}

static void
test_lookup_well_known (void)
{
  g_autofree char *xml = fixture_config ();
  g_autofree char *expected = g_strdup_printf ("%s/.well-known/autoconfig/mail/config-v1.1.xml",
                                               base_url);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  /* Nothing at the first URL: python answers 404. */
  write_file (".well-known/autoconfig/mail/config-v1.1.xml", xml);
  c = lookup ("alice@example.test", &error);
  remove_file (".well-known/autoconfig/mail/config-v1.1.xml");
  g_assert_no_error (error);
  g_assert_cmpstr (c->source, ==, expected);
  g_assert_cmpuint (c->incoming->len, ==, 2);
}

static void
test_lookup_redirect (void)
{
  g_autofree char *xml = fixture_config ();
  g_autofree char *expected = g_strdup_printf ("%s/mail/config-v1.1.xml/"
                                               "?emailaddress=alice%%40example.test", base_url);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  /* http.server answers a directory without its slash with a 301 to the slashed path,
   * then serves index.html: one redirect, followed, the source being where it led. */
  write_file ("mail/config-v1.1.xml/index.html", xml);
  c = lookup ("alice@example.test", &error);
  remove_file ("mail/config-v1.1.xml/index.html");
  remove_file ("mail/config-v1.1.xml");
  g_assert_no_error (error);
  g_assert_cmpstr (c->source, ==, expected);
  g_assert_cmpuint (c->incoming->len, ==, 2);
}

static void
test_lookup_errors (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  write_file ("mail/config-v1.1.xml", "<clientConfig><emailProvider><incomingServer>");
  c = lookup ("alice@example.test", &error);
  remove_file ("mail/config-v1.1.xml");
  g_assert_null (c);
  g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_PARSE);
  g_assert_nonnull (strstr (error->message, "/mail/config-v1.1.xml"));
  g_test_message ("%s", error->message);
  g_clear_error (&error);

  c = lookup ("alice@example.test", &error);
  g_assert_null (c);
  g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "404"));
  g_clear_error (&error);

  c = lookup ("not an address", &error);
  g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_ADDRESS);
}

static void
test_lookup_cancel (void)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  LbAutoconfigOptions options = { .base_url_override = base_url };
  LbTestWait w = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  g_cancellable_cancel (cancellable);
  lb_autoconfig_lookup_async ("alice@example.test", &options, cancellable, lb_test_wait_cb, &w);
  c = lb_autoconfig_lookup_finish (lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static LbAutoconfig *
probe (gboolean  with_ca,
       GError  **error)
{
  const char *hosts[] = { servers->host, NULL };
  LbAutoconfigOptions options = {
    .ca_file = with_ca ? servers->ca_file : NULL,
    .timeout_seconds = 10,
    .probe_hosts = hosts,
    .probe_ports = {
      .imaps = servers->imaps_port, .imap = servers->imap_port,
      .pop3s = servers->pop3s_port, .pop3 = servers->pop3_port,
      .smtps = servers->submissions_port, .submission = servers->submission_port,
    },
  };
  LbTestWait w = { 0 };
  LbAutoconfig *c;

  lb_autoconfig_probe_async ("alice@example.test", &options, NULL, lb_test_wait_cb, &w);
  c = lb_autoconfig_probe_finish (lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return c;
}

static void
test_probe (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = probe (TRUE, &error);
  LbAccountServer *s;

  g_assert_no_error (error);
  g_assert_cmpstr (c->source, ==, "probe");
  g_assert_cmpuint (c->incoming->len, ==, 2);
  g_assert_cmpuint (c->outgoing->len, ==, 1);
  s = g_ptr_array_index (c->incoming, 0);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_IMAP);
  g_assert_cmpuint (s->port, ==, servers->imaps_port);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_TLS);
  g_assert_cmpstr (s->user, ==, "alice@example.test");
  s = g_ptr_array_index (c->incoming, 1);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_POP3);
  g_assert_cmpuint (s->port, ==, servers->pop3s_port);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_TLS);
  s = g_ptr_array_index (c->outgoing, 0);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_SMTP);
  g_assert_cmpuint (s->port, ==, servers->submissions_port);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_TLS);
}

static void
test_probe_untrusted (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = probe (FALSE, &error);

  /* Without the fixture's CA the TLS ports fail verification; only the STARTTLS ports,
   * whose greeting comes before TLS, answer. */
  g_assert_no_error (error);
  g_assert_cmpuint (c->incoming->len, ==, 2);
  g_assert_cmpuint (c->outgoing->len, ==, 1);
  g_assert_cmpuint (((LbAccountServer *) g_ptr_array_index (c->incoming, 0))->port, ==,
                    servers->imap_port);
  g_assert_cmpuint (((LbAccountServer *) g_ptr_array_index (c->outgoing, 0))->port, ==,
                    servers->submission_port);
  g_assert_cmpint (((LbAccountServer *) g_ptr_array_index (c->outgoing, 0))->security, ==,
                   LB_NET_SECURITY_STARTTLS);
  for (guint i = 0; i < c->incoming->len; i++)
    g_assert_cmpint (((LbAccountServer *) g_ptr_array_index (c->incoming, i))->security, ==,
                     LB_NET_SECURITY_STARTTLS);
}

/* ---- SRV records, from dnsmasq ---------------------------------------------------- */

static char *
srv_record (const char *service,
            const char *target,
            guint       port,
            guint       priority,
            guint       weight)
{
  if (target == NULL)
    /* dnsmasq: no target is the root, "." — the service is not offered. */
    return g_strdup_printf ("srv-host=_%s._tcp.example.test", service);
  return g_strdup_printf ("srv-host=_%s._tcp.example.test,%s,%u,%u,%u", service, target, port,
                          priority, weight);
}

/* dnsmasq with the records given (char *, NULL-terminated; taken). */
static LbTestDns *
dns_start (char *first,
           ...)
{
  g_autoptr(GPtrArray) options = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  LbTestDns *dns;
  va_list ap;

  va_start (ap, first);
  for (char *option = first; option != NULL; option = va_arg (ap, char *))
    g_ptr_array_add (options, option);
  va_end (ap);
  g_ptr_array_add (options, NULL);
  dns = lb_test_dns_start ((const char * const *) options->pdata, &error);
  g_assert_no_error (error);
  return dns;
}

static LbAutoconfig *
srv_lookup_pinned (const char *nameserver,
                   gboolean    with_ca,
                   const char *fingerprint,
                   guint       timeout,
                   GError    **error)
{
  LbAutoconfigOptions options = {
    .ca_file = with_ca ? servers->ca_file : NULL,
    .timeout_seconds = timeout,
    .nameserver = nameserver,
    .trusted_fingerprint = fingerprint,
  };
  LbTestWait w = { 0 };
  LbAutoconfig *c;

  lb_autoconfig_srv_async ("alice@example.test", &options, NULL, lb_test_wait_cb, &w);
  c = lb_autoconfig_srv_finish (lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return c;
}

static LbAutoconfig *
srv_lookup (const char *nameserver,
            gboolean    with_ca,
            guint       timeout,
            GError    **error)
{
  return srv_lookup_pinned (nameserver, with_ca, NULL, timeout, error);
}

static void
assert_server (GPtrArray         *servers_found,
               guint              index,
               LbAccountProtocol  protocol,
               LbNetSecurity      security,
               guint16            port)
{
  LbAccountServer *s;

  g_assert_cmpuint (index, <, servers_found->len);
  s = g_ptr_array_index (servers_found, index);
  g_assert_cmpint (s->protocol, ==, protocol);
  g_assert_cmpint (s->security, ==, security);
  g_assert_cmpstr (s->host, ==, servers->host);
  g_assert_cmpuint (s->port, ==, port);
  g_assert_cmpstr (s->user, ==, "alice@example.test");
}

static void
test_srv_fixture (void)
{
  LbTestDns *dns = dns_start (
    srv_record ("imaps", servers->host, servers->imaps_port, 0, 1),
    srv_record ("imap", servers->host, servers->imap_port, 0, 1),
    srv_record ("pop3s", servers->host, servers->pop3s_port, 10, 1),
    srv_record ("submissions", servers->host, servers->submissions_port, 0, 1),
    srv_record ("submission", servers->host, servers->submission_port, 0, 1),
    NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, TRUE, 10, &error);
  g_autofree char *log = lb_test_dns_dup_log (dns);
  const char *names[] = { "_imaps", "_imap.", "_pop3s", "_pop3.", "_submissions",
                          "_submission." };

  g_assert_no_error (error);
  g_assert_cmpint (c->method, ==, LB_AUTOCONFIG_METHOD_SRV);
  g_assert_cmpstr (c->source, ==, "dns-srv");
  /* Implicit TLS where both are offered (RFC 8314); IMAP before POP3 by priority. */
  g_assert_cmpuint (c->incoming->len, ==, 2);
  assert_server (c->incoming, 0, LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS,
                 servers->imaps_port);
  assert_server (c->incoming, 1, LB_ACCOUNT_PROTOCOL_POP3, LB_NET_SECURITY_TLS,
                 servers->pop3s_port);
  g_assert_cmpuint (c->outgoing->len, ==, 1);
  assert_server (c->outgoing, 0, LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_TLS,
                 servers->submissions_port);

  /* Every service was asked for, of the server given. */
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *query = g_strdup_printf ("query[SRV] %s", names[i]);

      g_assert_nonnull (strstr (log, query));
    }
  lb_test_dns_stop (dns);
}

static void
test_srv_preference (void)
{
  /* POP3's best priority (1) beats IMAP's (2): POP3 first (RFC 6186 §3.4); within POP3 the
   * implicit-TLS service although its priority number is higher (RFC 8314). Only
   * STARTTLS for submission: taken as STARTTLS, never without TLS. */
  LbTestDns *dns = dns_start (
    srv_record ("pop3", servers->host, servers->pop3_port, 1, 0),
    srv_record ("pop3s", servers->host, servers->pop3s_port, 3, 0),
    srv_record ("imaps", servers->host, servers->imaps_port, 2, 0),
    srv_record ("submission", servers->host, servers->submission_port, 0, 0),
    NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, TRUE, 10, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (c->incoming->len, ==, 2);
  assert_server (c->incoming, 0, LB_ACCOUNT_PROTOCOL_POP3, LB_NET_SECURITY_TLS,
                 servers->pop3s_port);
  assert_server (c->incoming, 1, LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS,
                 servers->imaps_port);
  g_assert_cmpuint (c->outgoing->len, ==, 1);
  assert_server (c->outgoing, 0, LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_STARTTLS,
                 servers->submission_port);
  lb_test_dns_stop (dns);
}

static void
test_srv_fallback (void)
{
  guint16 closed = lb_test_free_port ();
  /* By priority: a plain port spoken to with TLS fails, nothing listens on the next, the
   * third is the fixture's IMAPS. Weights only order within a priority. */
  LbTestDns *dns = dns_start (
    srv_record ("imaps", servers->host, servers->imap_port, 0, 5),
    srv_record ("imaps", "127.0.0.1", closed, 1, 0),
    srv_record ("imaps", servers->host, servers->imaps_port, 2, 0),
    srv_record ("submissions", "127.0.0.1", closed, 0, 10),
    srv_record ("submissions", servers->host, servers->submissions_port, 7, 10),
    NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, TRUE, 10, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (c->incoming->len, ==, 1);
  assert_server (c->incoming, 0, LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS,
                 servers->imaps_port);
  g_assert_cmpuint (c->outgoing->len, ==, 1);
  assert_server (c->outgoing, 0, LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_TLS,
                 servers->submissions_port);
  lb_test_dns_stop (dns);
}

static void
test_srv_not_offered (void)
{
  g_autoptr(GError) error = NULL;

  /* "." says "not offered": the STARTTLS services are used. */
  {
    LbTestDns *dns = dns_start (
      srv_record ("imaps", NULL, 0, 0, 0),
      srv_record ("imap", servers->host, servers->imap_port, 0, 0),
      srv_record ("pop3s", NULL, 0, 0, 0),
      srv_record ("submissions", NULL, 0, 0, 0),
      srv_record ("submission", servers->host, servers->submission_port, 0, 0),
      NULL);
    g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, TRUE, 10, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (c->incoming->len, ==, 1);
    assert_server (c->incoming, 0, LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_STARTTLS,
                   servers->imap_port);
    assert_server (c->outgoing, 0, LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_STARTTLS,
                   servers->submission_port);
    lb_test_dns_stop (dns);
  }
  /* Nothing offered, or no record at all (NXDOMAIN): not found. */
  {
    LbTestDns *dns = dns_start (srv_record ("imaps", NULL, 0, 0, 0),
                                srv_record ("submissions", NULL, 0, 0, 0), NULL);
    g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, TRUE, 10, &error);

    g_assert_null (c);
    g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND);
    g_assert_nonnull (strstr (error->message, "example.test"));
    g_test_message ("%s", error->message);
    g_clear_error (&error);
    lb_test_dns_stop (dns);
  }
  {
    LbTestDns *dns = dns_start (NULL);
    g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, TRUE, 10, &error);

    g_assert_null (c);
    g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND);
    lb_test_dns_stop (dns);
  }
}

static void
test_srv_unreachable (void)
{
  guint16 closed = lb_test_free_port ();
  g_autofree char *where = g_strdup_printf ("127.0.0.1:%u", (guint) closed);
  g_autoptr(GError) error = NULL;

  {
    LbTestDns *dns = dns_start (srv_record ("imaps", "127.0.0.1", closed, 0, 0), NULL);
    g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, TRUE, 10, &error);

    g_assert_null (c);
    g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_UNREACHABLE);
    g_assert_nonnull (strstr (error->message, where));
    g_test_message ("%s", error->message);
    g_clear_error (&error);
    lb_test_dns_stop (dns);
  }
  /* Without the fixture's CA its certificate is refused: the IMAPS record is useless;
   * pinning the fingerprint the error names makes it usable. */
  {
    LbTestDns *dns = dns_start (srv_record ("imaps", servers->host, servers->imaps_port, 0, 0),
                                NULL);
    g_autoptr(LbAutoconfig) c = srv_lookup (dns->nameserver, FALSE, 10, &error);
    g_autoptr(LbAutoconfig) pinned = NULL;
    g_autofree char *fingerprint = NULL;
    const char *at;

    g_assert_null (c);
    g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_UNREACHABLE);
    g_test_message ("%s", error->message);
    at = strstr (error->message, "fingerprint ");
    g_assert_nonnull (at);
    fingerprint = g_strndup (at + strlen ("fingerprint "), 32 * 3 - 1);
    g_clear_error (&error);
    pinned = srv_lookup_pinned (dns->nameserver, FALSE, fingerprint, 10, &error);
    g_assert_no_error (error);
    assert_server (pinned->incoming, 0, LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS,
                   servers->imaps_port);
    lb_test_dns_stop (dns);
  }
}

static gint64 black_hole_started;

static void
test_srv_dns_errors (void)
{
  guint16 closed = lb_test_free_port ();
  g_autofree char *closed_ns = g_strdup_printf ("127.0.0.1:%u", (guint) closed);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;
  const char *bad[] = { "dns.example.test:53", "127.0.0.1:0", "127.0.0.1:65536", "[::1",
                        "[::1]x", "127.0.0.1:", "" };

  /* Nothing listens: ICMP port unreachable, reported at once. */
  c = srv_lookup (closed_ns, TRUE, 10, &error);
  g_assert_null (c);
  g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, closed_ns));
  g_test_message ("%s", error->message);
  g_clear_error (&error);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      c = srv_lookup (bad[i], TRUE, 10, &error);
      g_assert_null (c);
      g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_OPTION);
      g_clear_error (&error);
    }

  /* A socket that reads nothing: the timeout, with the query sent again meanwhile. */
  {
    g_autoptr(GSocket) hole = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                            G_SOCKET_PROTOCOL_UDP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    g_autofree char *hole_ns = NULL;
    gint64 elapsed;

    g_assert_true (g_socket_bind (hole, any, FALSE, NULL));
    bound = g_socket_get_local_address (hole, NULL);
    hole_ns = g_strdup_printf ("127.0.0.1:%u",
                               g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
    black_hole_started = g_get_monotonic_time ();
    c = srv_lookup (hole_ns, TRUE, 2, &error);
    elapsed = g_get_monotonic_time () - black_hole_started;
    g_assert_null (c);
    g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND);
    g_assert_nonnull (strstr (error->message, "did not answer"));
    g_assert_cmpint (elapsed, >=, 2 * G_USEC_PER_SEC - 100000);
    g_assert_cmpint (elapsed, <, 8 * G_USEC_PER_SEC);
    g_clear_error (&error);
  }
}

static gboolean
cancel_cb (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

static void
test_srv_cancel (void)
{
  g_autoptr(GSocket) hole = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                          G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autofree char *hole_ns = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;
  LbAutoconfigOptions options = { .timeout_seconds = 60 };
  LbTestWait w = { 0 };
  gint64 start = g_get_monotonic_time ();

  g_assert_true (g_socket_bind (hole, any, FALSE, NULL));
  bound = g_socket_get_local_address (hole, NULL);
  hole_ns = g_strdup_printf ("127.0.0.1:%u",
                             g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  options.nameserver = hole_ns;

  /* While the six queries wait for an answer. */
  g_idle_add (cancel_cb, cancellable);
  lb_autoconfig_srv_async ("alice@example.test", &options, cancellable, lb_test_wait_cb, &w);
  c = lb_autoconfig_srv_finish (lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_null (c);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
}

/* ---- discover: file, then SRV, then probe ------------------------------------------ */

static LbAutoconfig *
discover (const char *nameserver,
          guint16     probe_imaps,
          guint16     probe_smtps,
          GError    **error)
{
  const char *hosts[] = { servers->host, NULL };
  guint16 closed = lb_test_free_port ();
  LbAutoconfigOptions options = {
    .base_url_override = base_url,
    .ca_file = servers->ca_file,
    .timeout_seconds = 10,
    .nameserver = nameserver,
    .probe_hosts = hosts,
    .probe_ports = {
      .imaps = probe_imaps, .imap = closed, .pop3s = closed, .pop3 = closed,
      .smtps = probe_smtps, .submission = closed,
    },
  };
  LbTestWait w = { 0 };
  LbAutoconfig *c;

  lb_autoconfig_discover_async ("alice@example.test", &options, NULL, lb_test_wait_cb, &w);
  c = lb_autoconfig_discover_finish (lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return c;
}

static LbTestDns *
dns_fixture_imaps (void)
{
  return dns_start (srv_record ("imaps", servers->host, servers->imaps_port, 0, 0),
                    srv_record ("submissions", servers->host, servers->submissions_port, 0, 0),
                    NULL);
}

static void
test_discover_file (void)
{
  g_autofree char *xml = fixture_config ();
  LbTestDns *dns = dns_fixture_imaps ();
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  write_file ("mail/config-v1.1.xml", xml);
  c = discover (dns->nameserver, servers->imaps_port, servers->submissions_port, &error);
  remove_file ("mail/config-v1.1.xml");
  g_assert_no_error (error);
  g_assert_cmpint (c->method, ==, LB_AUTOCONFIG_METHOD_FILE);
  g_assert_true (g_str_has_prefix (c->source, base_url));
  lb_test_dns_stop (dns);
}

static void
test_discover_srv (void)
{
  LbTestDns *dns = dns_fixture_imaps ();
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  /* No autoconfig file (404s); the probe would find the fixture too, but comes later. */
  c = discover (dns->nameserver, servers->imaps_port, servers->submissions_port, &error);
  g_assert_no_error (error);
  g_assert_cmpint (c->method, ==, LB_AUTOCONFIG_METHOD_SRV);
  assert_server (c->incoming, 0, LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS,
                 servers->imaps_port);
  assert_server (c->outgoing, 0, LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_TLS,
                 servers->submissions_port);
  lb_test_dns_stop (dns);
}

static void
test_discover_probe (void)
{
  LbTestDns *dns = dns_start (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  c = discover (dns->nameserver, servers->imaps_port, servers->submissions_port, &error);
  g_assert_no_error (error);
  g_assert_cmpint (c->method, ==, LB_AUTOCONFIG_METHOD_PROBE);
  g_assert_cmpstr (c->source, ==, "probe");
  assert_server (c->incoming, 0, LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS,
                 servers->imaps_port);
  lb_test_dns_stop (dns);
}

static void
test_discover_nothing (void)
{
  guint16 closed = lb_test_free_port ();
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = NULL;

  {
    LbTestDns *dns = dns_start (NULL);

    c = discover (dns->nameserver, closed, closed, &error);
    g_assert_null (c);
    g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND);
    /* Each step's problem is named. */
    g_assert_nonnull (strstr (error->message, "404"));
    g_assert_nonnull (strstr (error->message, "no SRV records"));
    g_assert_nonnull (strstr (error->message, "No mail server answered"));
    g_test_message ("%s", error->message);
    g_clear_error (&error);
    lb_test_dns_stop (dns);
  }
  /* SRV records name a server that does not answer: that is the error's kind. */
  {
    LbTestDns *dns = dns_start (srv_record ("imaps", "127.0.0.1", closed, 0, 0), NULL);

    c = discover (dns->nameserver, closed, closed, &error);
    g_assert_null (c);
    g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_UNREACHABLE);
    g_clear_error (&error);
    lb_test_dns_stop (dns);
  }
  /* A nameserver that is no address stops the search. */
  c = discover ("nowhere", closed, closed, &error);
  g_assert_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_OPTION);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  web = lb_test_web_start (&error);
  g_assert_no_error (error);
  base_url = web->base_url;

  g_test_add_func ("/autoconfig/lookup/first", test_lookup_first);
  g_test_add_func ("/autoconfig/lookup/well-known", test_lookup_well_known);
  g_test_add_func ("/autoconfig/lookup/redirect", test_lookup_redirect);
  g_test_add_func ("/autoconfig/lookup/errors", test_lookup_errors);
  g_test_add_func ("/autoconfig/lookup/cancel", test_lookup_cancel);
  g_test_add_func ("/autoconfig/probe/fixture", test_probe);
  g_test_add_func ("/autoconfig/probe/untrusted", test_probe_untrusted);
  g_test_add_func ("/autoconfig/srv/fixture", test_srv_fixture);
  g_test_add_func ("/autoconfig/srv/preference", test_srv_preference);
  g_test_add_func ("/autoconfig/srv/fallback", test_srv_fallback);
  g_test_add_func ("/autoconfig/srv/not-offered", test_srv_not_offered);
  g_test_add_func ("/autoconfig/srv/unreachable", test_srv_unreachable);
  g_test_add_func ("/autoconfig/srv/dns-errors", test_srv_dns_errors);
  g_test_add_func ("/autoconfig/srv/cancel", test_srv_cancel);
  g_test_add_func ("/autoconfig/discover/file", test_discover_file);
  g_test_add_func ("/autoconfig/discover/srv", test_discover_srv);
  g_test_add_func ("/autoconfig/discover/probe", test_discover_probe);
  g_test_add_func ("/autoconfig/discover/nothing", test_discover_nothing);
  status = g_test_run ();

  lb_test_web_stop (web);
  lb_test_servers_stop (servers);
  return status;
}
