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
 * and probing the Dovecot/Postfix fixture for greetings with its CA.
 */

static LbTestServers *servers;
static char *web_dir;
static GSubprocess *web;
static guint16 web_port;
static char *base_url;

static gboolean
web_is_up (gpointer user_data)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn =
    g_socket_client_connect_to_host (client, "127.0.0.1", web_port, NULL, NULL);

  return conn != NULL;
}

static guint16
free_port (void)
{
  g_autoptr(GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                          G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (sock, any, TRUE, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
write_file (const char *relative,
            const char *contents)
{
  g_autofree char *path = g_build_filename (web_dir, relative, NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
remove_file (const char *relative)
{
  g_autofree char *path = g_build_filename (web_dir, relative, NULL);

  g_remove (path);
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

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *port = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  web_dir = g_dir_make_tmp ("letterbox-autoconfig-XXXXXX", &error);
  g_assert_no_error (error);
  web_port = free_port ();
  port = g_strdup_printf ("%u", (guint) web_port);
  web = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                          &error, "/usr/bin/python3", "-m", "http.server", "--bind",
                          "127.0.0.1", port, "--directory", web_dir, NULL);
  g_assert_no_error (error);
  g_assert_true (lb_test_wait_until (web_is_up, NULL, 20000));
  base_url = g_strdup_printf ("http://127.0.0.1:%u", (guint) web_port);

  g_test_add_func ("/autoconfig/lookup/first", test_lookup_first);
  g_test_add_func ("/autoconfig/lookup/well-known", test_lookup_well_known);
  g_test_add_func ("/autoconfig/lookup/redirect", test_lookup_redirect);
  g_test_add_func ("/autoconfig/lookup/errors", test_lookup_errors);
  g_test_add_func ("/autoconfig/lookup/cancel", test_lookup_cancel);
  g_test_add_func ("/autoconfig/probe/fixture", test_probe);
  g_test_add_func ("/autoconfig/probe/untrusted", test_probe_untrusted);
  status = g_test_run ();

  g_subprocess_force_exit (web);
  g_subprocess_wait (web, NULL, NULL);
  g_clear_object (&web);
  lb_test_remove_tree (web_dir);
  g_free (web_dir);
  g_free (base_url);
  lb_test_servers_stop (servers);
  return status;
}
