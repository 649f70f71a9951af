/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-autoconfig.h"

/* The pure autoconfig parser (accounts/lb-autoconfig-parser.c): documents shaped like
 * the ones providers publish, placeholders, servers Letterbox cannot use left out,
 * hostile input, and the fuzz corpus replayed. */

static const char sample[] =
  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
  "<!-- written for this test -->\n"
  "<clientConfig version=\"1.1\">\n"
  "  <emailProvider id=\"example.org\">\n"
  "    <domain>example.org</domain>\n"
  "    <domain>example.net</domain>\n"
  "    <displayName>Example Mail</displayName>\n"
  "    <displayShortName>Example</displayShortName>\n"
  "    <incomingServer type=\"imap\">\n"
  "      <hostname>imap.%EMAILDOMAIN%</hostname>\n"
  "      <port>993</port>\n"
  "      <socketType>SSL</socketType>\n"
  "      <authentication>OAuth2</authentication>\n"
  "      <authentication>password-cleartext</authentication>\n"
  "      <username>%EMAILADDRESS%</username>\n"
  "    </incomingServer>\n"
  "    <incomingServer type=\"imap\">\n"
  "      <hostname>imap.example.org</hostname>\n"
  "      <port>143</port>\n"
  "      <socketType>STARTTLS</socketType>\n"
  "      <username>%EMAILLOCALPART%</username>\n"
  "      <authentication>password-encrypted</authentication>\n"
  "    </incomingServer>\n"
  "    <incomingServer type=\"exchange\">\n"
  "      <hostname>outlook.example.org</hostname>\n"
  "      <port>443</port>\n"
  "    </incomingServer>\n"
  "    <incomingServer type=\"pop3\">\n"
  "      <hostname>pop.example.org</hostname>\n"
  "      <port>995</port>\n"
  "      <socketType>SSL</socketType>\n"
  "      <username>%EMAILLOCALPART%@%EMAILDOMAIN%</username>\n"
  "      <authentication>password-cleartext</authentication>\n"
  "      <pop3><leaveMessagesOnServer>true</leaveMessagesOnServer></pop3>\n"
  "    </incomingServer>\n"
  "    <outgoingServer type=\"smtp\">\n"
  "      <hostname>smtp.example.org</hostname>\n"
  "      <port>465</port>\n"
  "      <socketType>SSL</socketType>\n"
  "      <username>%EMAILADDRESS%</username>\n"
  "      <authentication>password-cleartext</authentication>\n"
  "    </outgoingServer>\n"
  "    <outgoingServer type=\"smtp\">\n"
  "      <hostname>smtp.example.org</hostname>\n"
  "      <socketType>STARTTLS</socketType>\n"
  "    </outgoingServer>\n"
  "    <documentation url=\"https://example.org/help\">\n"
  "      <descr lang=\"en\">Help</descr>\n"
  "    </documentation>\n"
  "  </emailProvider>\n"
  "  <webMail><loginPage url=\"https://example.org/\"/></webMail>\n"
  "</clientConfig>\n";

static LbAccountServer *
server (GPtrArray *a,
        guint      i)
{
  g_assert_cmpuint (i, <, a->len);
  return g_ptr_array_index (a, i);
}

static void
test_sample (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = lb_autoconfig_parse (sample, strlen (sample),
                                                   "Jane.Doe@Example.ORG", &error);
  LbAccountServer *s;

  g_assert_no_error (error);
  g_assert_cmpstr (c->display_name, ==, "Example Mail");
  g_assert_null (c->source);
  g_assert_cmpuint (c->incoming->len, ==, 3);
  g_assert_cmpuint (c->outgoing->len, ==, 2);

  s = server (c->incoming, 0);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_IMAP);
  g_assert_cmpstr (s->host, ==, "imap.example.org");
  g_assert_cmpuint (s->port, ==, 993);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_TLS);
  g_assert_cmpstr (s->user, ==, "Jane.Doe@Example.ORG");
  g_assert_cmpstr (s->auth, ==, "XOAUTH2");
  g_assert_false (s->allow_insecure);

  s = server (c->incoming, 1);
  g_assert_cmpuint (s->port, ==, 143);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_STARTTLS);
  g_assert_cmpstr (s->user, ==, "Jane.Doe");
  g_assert_cmpstr (s->auth, ==, "auto");

  s = server (c->incoming, 2);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_POP3);
  g_assert_cmpstr (s->host, ==, "pop.example.org");
  g_assert_cmpuint (s->port, ==, 995);
  g_assert_cmpstr (s->user, ==, "Jane.Doe@example.org");

  s = server (c->outgoing, 0);
  g_assert_cmpint (s->protocol, ==, LB_ACCOUNT_PROTOCOL_SMTP);
  g_assert_cmpuint (s->port, ==, 465);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_TLS);
  g_assert_cmpstr (s->user, ==, "Jane.Doe@Example.ORG");

  /* No port: the registered one for the security; no username: the address. */
  s = server (c->outgoing, 1);
  g_assert_cmpuint (s->port, ==, 587);
  g_assert_cmpint (s->security, ==, LB_NET_SECURITY_STARTTLS);
  g_assert_null (s->user);
  g_assert_cmpstr (s->auth, ==, "auto");
}

static void
test_skipped (void)
{
  static const char doc[] =
    "<clientConfig version=\"1.1\"><emailProvider id=\"x\">"
    "<incomingServer type=\"imap\"><port>993</port><socketType>SSL</socketType></incomingServer>"
    "<incomingServer type=\"imap\"><hostname>a b</hostname></incomingServer>"
    "<incomingServer type=\"imap\"><hostname>%UNKNOWN%.x</hostname></incomingServer>"
    "<incomingServer type=\"imap\"><hostname>h.x</hostname><port>99999</port></incomingServer>"
    "<incomingServer type=\"imap\"><hostname>h.x</hostname><port>-1</port></incomingServer>"
    "<incomingServer type=\"imap\"><hostname>h.x</hostname><socketType>QUIC</socketType>"
    "</incomingServer>"
    "<incomingServer type=\"imap\"><hostname>h.x</hostname><authentication>NTLM"
    "</authentication></incomingServer>"
    "<incomingServer><hostname>h.x</hostname></incomingServer>"
    "<outgoingServer type=\"imap\"><hostname>h.x</hostname></outgoingServer>"
    "<incomingServer type=\"smtp\"><hostname>h.x</hostname></incomingServer>"
    "<incomingServer type=\"pop3\"><hostname><b>bold</b>pop.x</hostname><port>110</port>"
    "<unknown><deeper/></unknown></incomingServer>"
    "</emailProvider></clientConfig>";
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = lb_autoconfig_parse (doc, strlen (doc), "a@x", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (c->incoming->len, ==, 1);
  g_assert_cmpuint (c->outgoing->len, ==, 0);
  /* Text of a child element is not the host name; a missing socketType reads as plain,
   * as in Thunderbird, and is never allowed off loopback without the user's consent. */
  g_assert_cmpstr (server (c->incoming, 0)->host, ==, "pop.x");
  g_assert_cmpint (server (c->incoming, 0)->security, ==, LB_NET_SECURITY_NONE);
  g_assert_false (server (c->incoming, 0)->allow_insecure);
}

static void
expect_error (const char *doc,
              gssize      len,
              const char *address,
              int         code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) c = lb_autoconfig_parse (doc, len < 0 ? strlen (doc) : (gsize) len,
                                                   address, &error);

  g_assert_null (c);
  g_assert_error (error, LB_AUTOCONFIG_ERROR, code);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_test_message ("%s", error->message);
}

static void
test_errors (void)
{
  static const char ok[] = "<clientConfig><emailProvider><incomingServer type=\"imap\">"
                           "<hostname>h</hostname></incomingServer></emailProvider></clientConfig>";
  g_autoptr(GString) deep = g_string_new ("<clientConfig>");
  g_autofree char *huge = NULL;

  expect_error ("", 0, "a@b", LB_AUTOCONFIG_ERROR_PARSE);
  expect_error ("   ", -1, "a@b", LB_AUTOCONFIG_ERROR_PARSE);
  expect_error ("<clientConfig><emailProvider>", -1, "a@b", LB_AUTOCONFIG_ERROR_PARSE);
  expect_error ("<clientConfig></emailProvider>", -1, "a@b", LB_AUTOCONFIG_ERROR_PARSE);
  expect_error ("<html><body>404</body></html>", -1, "a@b", LB_AUTOCONFIG_ERROR_PARSE);
  expect_error ("<clientConfig>&bogus;</clientConfig>", -1, "a@b", LB_AUTOCONFIG_ERROR_PARSE);
  expect_error ("<clientConfig>\xff\xfe</clientConfig>", -1, "a@b", LB_AUTOCONFIG_ERROR_PARSE);
  expect_error ("<clientConfig/>", -1, "a@b", LB_AUTOCONFIG_ERROR_EMPTY);
  expect_error ("<clientConfig><emailProvider/></clientConfig>", -1, "a@b",
                LB_AUTOCONFIG_ERROR_EMPTY);
  /* A NUL inside the document. */
  expect_error ("<clientConfig>\0</clientConfig>", 30, "a@b", LB_AUTOCONFIG_ERROR_PARSE);

  for (guint i = 0; i < 100; i++)
    g_string_append (deep, "<a>");
  expect_error (deep->str, -1, "a@b", LB_AUTOCONFIG_ERROR_TOO_BIG);

  huge = g_strnfill (LB_AUTOCONFIG_MAX_SIZE + 1, ' ');
  expect_error (huge, -1, "a@b", LB_AUTOCONFIG_ERROR_TOO_BIG);
  g_free (huge);
  huge = g_strdup_printf ("<clientConfig><emailProvider><incomingServer type=\"imap\">"
                          "<hostname>%0*d</hostname></incomingServer></emailProvider>"
                          "</clientConfig>", 5000, 1);
  expect_error (huge, -1, "a@b", LB_AUTOCONFIG_ERROR_TOO_BIG);

  expect_error (ok, -1, "nobody", LB_AUTOCONFIG_ERROR_ADDRESS);
  expect_error (ok, -1, "@b", LB_AUTOCONFIG_ERROR_ADDRESS);
  expect_error (ok, -1, "a@", LB_AUTOCONFIG_ERROR_ADDRESS);
  expect_error (ok, -1, "a@b/c", LB_AUTOCONFIG_ERROR_ADDRESS);
  expect_error (ok, -1, "a@b..c", LB_AUTOCONFIG_ERROR_ADDRESS);
  expect_error (ok, -1, "a b@c", LB_AUTOCONFIG_ERROR_ADDRESS);
  expect_error (ok, -1, "a@b\r\nc", LB_AUTOCONFIG_ERROR_ADDRESS);
}

static void
test_address (void)
{
  g_autofree char *local = NULL;
  g_autofree char *domain = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (lb_autoconfig_split_address ("\"odd@local\"@Mail.Example.COM.", &local,
                                              &domain, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (local, ==, "\"odd@local\"");
  g_assert_cmpstr (domain, ==, "mail.example.com");
}

static void
test_corpus (void)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus",
                                                 "autoconfig", NULL);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *file = g_build_filename (path, name, NULL);
      g_autofree char *data = NULL;
      gsize len;
      g_autoptr(LbAutoconfig) c = NULL;
      g_autoptr(GError) error = NULL;

      g_assert_true (g_file_get_contents (file, &data, &len, NULL));
      c = lb_autoconfig_parse (data, len, "user@example.test", &error);
      g_assert_true ((c == NULL) != (error == NULL));
      n++;
    }
  g_assert_cmpuint (n, >, 3);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/autoconfig/sample", test_sample);
  g_test_add_func ("/autoconfig/skipped", test_skipped);
  g_test_add_func ("/autoconfig/errors", test_errors);
  g_test_add_func ("/autoconfig/address", test_address);
  g_test_add_func ("/autoconfig/corpus", test_corpus);
  return g_test_run ();
}
