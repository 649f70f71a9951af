/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-sasl.h"

/* SASL: which mechanism is chosen, and what each one sends (RFC 4616 PLAIN, the LOGIN
 * draft, RFC 5802/7677 SCRAM's first message, RFC 7628 OAUTHBEARER, XOAUTH2). The full
 * SCRAM exchange is proven against Dovecot in test-imap. */

static char *
decode (const char *b64,
        gsize      *len)
{
  return (char *) g_base64_decode (b64, len);
}

static void
test_choose (void)
{
  const char *all[] = { "PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER", NULL };
  const char *plain_only[] = { "PLAIN", "LOGIN", NULL };
  const char *scram1[] = { "login", "scram-sha-1", NULL };

  g_assert_cmpstr (lb_sasl_choose_mechanism (all, FALSE, TRUE), ==, "SCRAM-SHA-256");
  g_assert_cmpstr (lb_sasl_choose_mechanism (all, FALSE, FALSE), ==, "SCRAM-SHA-256");
  g_assert_cmpstr (lb_sasl_choose_mechanism (scram1, FALSE, FALSE), ==, "SCRAM-SHA-1");
  /* The password itself goes only over TLS or to loopback. */
  g_assert_cmpstr (lb_sasl_choose_mechanism (plain_only, FALSE, TRUE), ==, "PLAIN");
  g_assert_null (lb_sasl_choose_mechanism (plain_only, FALSE, FALSE));
  g_assert_cmpstr (lb_sasl_choose_mechanism (all, TRUE, TRUE), ==, "OAUTHBEARER");
  g_assert_null (lb_sasl_choose_mechanism (plain_only, TRUE, TRUE));
  g_assert_null (lb_sasl_choose_mechanism (NULL, FALSE, TRUE));
}

static void
test_plain (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSasl) sasl = lb_sasl_new ("plain", "alice", "s3cr3t", &error);
  g_autofree char *out = NULL;
  g_autofree char *raw = NULL;
  gsize len;

  g_assert_no_error (error);
  g_assert_cmpstr (lb_sasl_get_mechanism (sasl), ==, "PLAIN");
  g_assert_true (lb_sasl_has_initial_response (sasl));
  g_assert_true (lb_sasl_step (sasl, NULL, &out, &error));
  g_assert_no_error (error);
  raw = decode (out, &len);
  g_assert_cmpmem (raw, len, "\0alice\0s3cr3t", 13);
  g_assert_true (lb_sasl_is_done (sasl));
}

static void
test_login (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSasl) sasl = lb_sasl_new ("LOGIN", "alice", "s3cr3t", &error);
  g_autofree char *user = NULL;
  g_autofree char *pass = NULL;
  g_autofree char *raw_user = NULL;
  g_autofree char *raw_pass = NULL;
  gsize len;

  g_assert_no_error (error);
  g_assert_false (lb_sasl_has_initial_response (sasl));
  /* "Username:" and "Password:" prompts. */
  g_assert_true (lb_sasl_step (sasl, "VXNlcm5hbWU6", &user, &error));
  raw_user = decode (user, &len);
  g_assert_cmpmem (raw_user, len, "alice", 5);
  g_assert_true (lb_sasl_step (sasl, "UGFzc3dvcmQ6", &pass, &error));
  raw_pass = decode (pass, &len);
  g_assert_cmpmem (raw_pass, len, "s3cr3t", 6);
}

static void
test_scram_first_message (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSasl) sasl = lb_sasl_new ("SCRAM-SHA-256", "alice", "s3cr3t", &error);
  g_autofree char *out = NULL;
  g_autofree char *raw = NULL;
  gsize len;

  g_assert_no_error (error);
  g_assert_true (lb_sasl_step (sasl, NULL, &out, &error));
  raw = decode (out, &len);
  /* client-first-message: no channel binding, the user, a nonce; never the password. */
  g_assert_true (g_str_has_prefix (raw, "n,,n=alice,r="));
  g_assert_null (strstr (raw, "s3cr3t"));
  g_assert_false (lb_sasl_is_done (sasl));

  /* A server-first-message that is not SCRAM ends the exchange with an error. */
  {
    g_autofree char *answer = NULL;

    g_assert_false (lb_sasl_step (sasl, "bm9uc2Vuc2U=", &answer, &error));
    g_assert_error (error, LB_SASL_ERROR, LB_SASL_ERROR_FAILED);
  }
}

static void
test_tokens (void)
{
  const struct
  {
    const char *mechanism;
    const char *expected;
    const char *after_error;
  } cases[] = {
    { "XOAUTH2", "user=bob@example.test\001auth=Bearer ya29.token\001\001", "" },
    { "OAUTHBEARER", "n,a=bob@example.test,\001auth=Bearer ya29.token\001\001", "AQ==" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LbSasl) sasl = lb_sasl_new (cases[i].mechanism, "bob@example.test", "ya29.token",
                                            &error);
      g_autofree char *out = NULL;
      g_autofree char *raw = NULL;
      g_autofree char *second = NULL;
      gsize len;

      g_assert_no_error (error);
      g_assert_true (lb_sasl_step (sasl, NULL, &out, &error));
      raw = decode (out, &len);
      g_assert_cmpmem (raw, len, cases[i].expected, strlen (cases[i].expected));
      /* The server's JSON error challenge is answered so that it sends the final NO. */
      g_assert_true (lb_sasl_step (sasl, "eyJzdGF0dXMiOiI0MDEifQ==", &second, &error));
      g_assert_cmpstr (second, ==, cases[i].after_error);
    }
}

static void
test_unknown (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSasl) sasl = lb_sasl_new ("X-NO-SUCH-MECH", "a", "b", &error);

  g_assert_null (sasl);
  g_assert_error (error, LB_SASL_ERROR, LB_SASL_ERROR_NO_MECHANISM);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sasl/choose", test_choose);
  g_test_add_func ("/sasl/plain", test_plain);
  g_test_add_func ("/sasl/login", test_login);
  g_test_add_func ("/sasl/scram-first-message", test_scram_first_message);
  g_test_add_func ("/sasl/tokens", test_tokens);
  g_test_add_func ("/sasl/unknown", test_unknown);

  return g_test_run ();
}
