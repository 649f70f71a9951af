/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-imap-session.h"

/* Per-server quirks chosen from what a server says of itself: its greeting, its
 * capabilities and its ID response (lb_imap_quirks_for_server(), a pure function). The
 * greetings and ID answers are the servers' own, as their documentation shows them. */

static void
assert_defaults (const LbImapQuirks *q)
{
  LbImapQuirks d;

  lb_imap_quirks_init_defaults (&d);
  g_assert_cmpuint (q->max_command_length, ==, d.max_command_length);
  g_assert_cmpuint (q->idle_seconds, ==, d.idle_seconds);
  g_assert_null (q->disabled_capabilities);
  g_assert_false (q->fixed);
}

static void
test_gmail (void)
{
  const char *caps[] = { "IMAP4REV1", "UNSELECT", "LITERAL+", "IDLE", "NAMESPACE", "QUOTA",
                         "ID", "XLIST", "CHILDREN", "X-GM-EXT-1", NULL };
  const char *id[] = { "name", "GImap", "vendor", "Google, Inc.", "support-url",
                       "http://mail.google.com/support", NULL };
  LbImapQuirks q;

  /* By the greeting alone, by ID alone, by the capability alone. */
  g_assert_cmpstr (lb_imap_quirks_for_server (&q, NULL,
                                              "Gimap ready for requests from 127.0.0.1 k2if6111336rvb.0",
                                              NULL),
                   ==, "gmail");
  g_assert_cmpuint (q.max_connections, ==, 10);
  lb_imap_quirks_clear (&q);
  g_assert_cmpstr (lb_imap_quirks_for_server (&q, NULL, "ready", id), ==, "gmail");
  lb_imap_quirks_clear (&q);
  g_assert_cmpstr (lb_imap_quirks_for_server (&q, caps, NULL, NULL), ==, "gmail");
  /* No documented IDLE or line limit below the defaults: those stay. */
  g_assert_cmpuint (q.max_command_length, ==, 8192);
  g_assert_cmpuint (q.idle_seconds, ==, 29 * 60);
  lb_imap_quirks_clear (&q);
}

static void
test_exchange (void)
{
  LbImapQuirks q;

  g_assert_cmpstr (lb_imap_quirks_for_server (&q, NULL,
                                              "The Microsoft Exchange IMAP4 service is ready. "
                                              "[UABSADAAUAAxADkAMQBDAEEAMAAwADAAMgAuAGUAdQByAHAA]",
                                              NULL),
                   ==, "exchange");
  g_assert_cmpuint (q.max_connections, ==, 16);
  g_assert_cmpuint (q.max_command_length, <=, 10240);
  g_assert_cmpuint (q.idle_seconds, <, 1800);
  lb_imap_quirks_clear (&q);
}

static void
test_unknown (void)
{
  const char *dovecot_caps[] = { "IMAP4REV1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE",
                                 "IDLE", "LITERAL+", "MOVE", "CONDSTORE", "QRESYNC", NULL };
  const char *dovecot_id[] = { "name", "Dovecot", NULL };
  const char *odd_id[] = { "name", NULL };
  LbImapQuirks q;

  g_assert_null (lb_imap_quirks_for_server (&q, dovecot_caps, "Dovecot (Debian) ready.",
                                            dovecot_id));
  assert_defaults (&q);
  g_assert_cmpuint (q.max_connections, ==, 0);
  lb_imap_quirks_clear (&q);

  /* Nothing at all, or an ID with a key and no value: defaults, no crash. */
  g_assert_null (lb_imap_quirks_for_server (&q, NULL, NULL, NULL));
  assert_defaults (&q);
  g_assert_null (lb_imap_quirks_for_server (&q, NULL, "", odd_id));
  assert_defaults (&q);

  /* "Gimap" must start the greeting: a server merely mentioning it is not Gmail. */
  g_assert_null (lb_imap_quirks_for_server (&q, NULL, "Welcome, this is not Gimap ", NULL));
  assert_defaults (&q);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/imap/quirks/gmail", test_gmail);
  g_test_add_func ("/imap/quirks/exchange", test_exchange);
  g_test_add_func ("/imap/quirks/unknown", test_unknown);

  return g_test_run ();
}
