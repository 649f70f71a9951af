/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-sasl"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <gsasl.h>
#include <string.h>

#include "lb-sasl.h"

/*
 * SASL client exchanges (RFC 4422): PLAIN, LOGIN and SCRAM-SHA-1/256 through GNU SASL;
 * XOAUTH2 and OAUTHBEARER (RFC 7628), which GNU SASL lacks and which are only a fixed
 * message around a token, here. Challenges and responses are base64 as the protocols
 * carry them. Whether credentials may be sent at all (TLS, or loopback) is the caller's
 * decision, made before it creates an exchange.
 */

G_DEFINE_QUARK (lb-sasl-error-quark, lb_sasl_error)

struct _LbSasl
{
  char *mechanism;
  char *user;
  char *secret;
  Gsasl *ctx;
  Gsasl_session *session;
  guint steps;
  gboolean done;
};

/* Strongest first. PLAIN and LOGIN send the password itself, so they come last, and only
 * inside TLS or to loopback (the caller says which through @allow_plaintext). */
static const char *const password_mechanisms[] = {
  "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN",
};
static const char *const token_mechanisms[] = { "OAUTHBEARER", "XOAUTH2" };

/**
 * lb_sasl_choose_mechanism:
 * @offered: the server's mechanisms (from AUTH= capabilities), upper case
 * @have_token: the credentials are an OAuth 2.0 access token, not a password
 * @allow_plaintext: PLAIN and LOGIN may be used (the channel is encrypted or loopback)
 *
 * Returns: (nullable): the best mechanism both sides support
 */
const char *
lb_sasl_choose_mechanism (const char *const *offered,
                          gboolean           have_token,
                          gboolean           allow_plaintext)
{
  const char *const *ours = have_token ? token_mechanisms : password_mechanisms;
  guint n = have_token ? G_N_ELEMENTS (token_mechanisms) : G_N_ELEMENTS (password_mechanisms);

  for (guint i = 0; i < n; i++)
    {
      if (!have_token && !allow_plaintext && !g_str_has_prefix (ours[i], "SCRAM-"))
        continue;
      for (guint j = 0; offered != NULL && offered[j] != NULL; j++)
        if (g_ascii_strcasecmp (offered[j], ours[i]) == 0)
          return ours[i];
    }
  return NULL;
}

static gboolean
is_token_mechanism (const char *mechanism)
{
  return g_str_equal (mechanism, "XOAUTH2") || g_str_equal (mechanism, "OAUTHBEARER");
}

static int
callback (Gsasl          *ctx,
          Gsasl_session  *session,
          Gsasl_property  prop)
{
  LbSasl *sasl = gsasl_session_hook_get (session);

  /* Only what a client has: who it is and its password. */
  if (prop == GSASL_AUTHID)
    return gsasl_property_set (session, GSASL_AUTHID, sasl->user);
  if (prop == GSASL_PASSWORD)
    return gsasl_property_set (session, GSASL_PASSWORD, sasl->secret);
  return GSASL_NO_CALLBACK;
}

LbSasl *
lb_sasl_new (const char  *mechanism,
             const char  *user,
             const char  *secret,
             GError     **error)
{
  g_autoptr(LbSasl) sasl = g_new0 (LbSasl, 1);
  int rc;

  g_return_val_if_fail (mechanism != NULL && user != NULL && secret != NULL, NULL);

  sasl->mechanism = g_ascii_strup (mechanism, -1);
  sasl->user = g_strdup (user);
  sasl->secret = g_strdup (secret);

  if (is_token_mechanism (sasl->mechanism))
    return g_steal_pointer (&sasl);

  rc = gsasl_init (&sasl->ctx);
  if (rc == GSASL_OK)
    {
      gsasl_callback_set (sasl->ctx, callback);
      rc = gsasl_client_start (sasl->ctx, sasl->mechanism, &sasl->session);
    }
  if (rc != GSASL_OK)
    {
      g_set_error (error, LB_SASL_ERROR, LB_SASL_ERROR_NO_MECHANISM,
                   _("Cannot authenticate with %s: %s"), sasl->mechanism, gsasl_strerror (rc));
      return NULL;
    }
  gsasl_session_hook_set (sasl->session, sasl);
  return g_steal_pointer (&sasl);
}

void
lb_sasl_free (LbSasl *sasl)
{
  if (sasl == NULL)
    return;
  if (sasl->session != NULL)
    gsasl_finish (sasl->session);
  if (sasl->ctx != NULL)
    gsasl_done (sasl->ctx);
  g_free (sasl->mechanism);
  g_free (sasl->user);
  if (sasl->secret != NULL)
    {
      memset (sasl->secret, 0, strlen (sasl->secret));
      g_free (sasl->secret);
    }
  g_free (sasl);
}

const char *
lb_sasl_get_mechanism (LbSasl *sasl)
{
  return sasl->mechanism;
}

/**
 * lb_sasl_has_initial_response:
 *
 * Returns: whether the client speaks first (RFC 4422 §5), which SASL-IR (RFC 4959) lets
 *   go on the AUTHENTICATE line itself
 */
gboolean
lb_sasl_has_initial_response (LbSasl *sasl)
{
  return !g_str_equal (sasl->mechanism, "LOGIN");
}

/**
 * lb_sasl_step:
 * @challenge_b64: (nullable): the server's challenge, base64; %NULL for the initial response
 * @response_b64: (out): the answer, base64 (may be empty)
 */
gboolean
lb_sasl_step (LbSasl      *sasl,
              const char  *challenge_b64,
              char       **response_b64,
              GError     **error)
{
  sasl->steps++;

  if (is_token_mechanism (sasl->mechanism))
    {
      g_autofree char *message = NULL;

      if (sasl->steps == 1)
        {
          /* XOAUTH2: Google's format; OAUTHBEARER: RFC 7628 §3.1 with a GS2 header. */
          if (g_str_equal (sasl->mechanism, "XOAUTH2"))
            message = g_strdup_printf ("user=%s\001auth=Bearer %s\001\001", sasl->user,
                                       sasl->secret);
          else
            message = g_strdup_printf ("n,a=%s,\001auth=Bearer %s\001\001", sasl->user,
                                       sasl->secret);
          *response_b64 = g_base64_encode ((const guchar *) message, strlen (message));
          memset (message, 0, strlen (message));
          sasl->done = TRUE;
          return TRUE;
        }
      /* A challenge after the token carries the server's error as JSON; answering it
       * (RFC 7628 §3.2.3: %x01, XOAUTH2: empty) lets the server send the final NO. */
      *response_b64 = g_strdup (g_str_equal (sasl->mechanism, "OAUTHBEARER") ? "AQ==" : "");
      return TRUE;
    }

  {
    char *out = NULL;
    int rc = gsasl_step64 (sasl->session, challenge_b64 != NULL ? challenge_b64 : "", &out);

    if (rc != GSASL_OK && rc != GSASL_NEEDS_MORE)
      {
        gsasl_free (out);
        g_set_error (error, LB_SASL_ERROR, LB_SASL_ERROR_FAILED,
                     _("Authentication with %s failed: %s"), sasl->mechanism,
                     gsasl_strerror (rc));
        return FALSE;
      }
    *response_b64 = g_strdup (out != NULL ? out : "");
    gsasl_free (out);
    sasl->done = rc == GSASL_OK;
    return TRUE;
  }
}

gboolean
lb_sasl_is_done (LbSasl *sasl)
{
  return sasl->done;
}
