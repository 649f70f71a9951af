/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-account-check.h"
#include "lb-connection.h"
#include "lb-imap-session.h"
#include "lb-pop3-session.h"
#include "lb-smtp-session.h"

/*
 * One server of an account tried the way sync and the outbox will use it: connect with
 * the account's security, CA file or pinned certificate, log in with the password given
 * (not yet stored anywhere), then log out. What `letterbox-ctl account test` does, as
 * one async call for the account assistant, which also needs the certificate a server
 * presented when it was not trusted.
 */

/* The three steps, the same for every protocol; the last one's outcome is not checked. */
typedef enum
{
  STEP_CONNECT,
  STEP_LOGIN,
  STEP_LOGOUT,
} Step;

typedef struct _Check Check;

/* What differs between protocols: the session, and how each step is begun and finished
 * on it. Chosen once, from the server's protocol. */
typedef struct
{
  GObject *(*session_new) (LbConnection *connection);
  void     (*begin)       (Check               *check,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data);
  gboolean (*finish)      (Check               *check,
                           GAsyncResult        *result,
                           GError             **error);
} Protocol;

struct _Check
{
  const Protocol *protocol;
  Step step;
  char *user;
  char *password;
  LbConnection *connection;
  GObject *session; /* LbImapSession, LbPop3Session or LbSmtpSession */
};

static void
check_free (Check *check)
{
  g_free (check->user);
  if (check->password != NULL)
    {
      memset (check->password, 0, strlen (check->password));
      g_free (check->password);
    }
  g_clear_object (&check->session);
  g_clear_object (&check->connection);
  g_free (check);
}

/* ---- IMAP ---- */

static GObject *
imap_new (LbConnection *connection)
{
  return G_OBJECT (lb_imap_session_new (connection));
}

static void
imap_begin (Check               *check,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  LbImapSession *session = LB_IMAP_SESSION (check->session);

  if (check->step == STEP_CONNECT)
    lb_imap_session_connect_async (session, cancellable, callback, user_data);
  else if (check->step == STEP_LOGIN)
    lb_imap_session_login_async (session, check->user, check->password, FALSE, cancellable,
                                 callback, user_data);
  else
    lb_imap_session_logout_async (session, cancellable, callback, user_data);
}

static gboolean
imap_finish (Check         *check,
             GAsyncResult  *result,
             GError       **error)
{
  LbImapSession *session = LB_IMAP_SESSION (check->session);

  if (check->step == STEP_CONNECT)
    return lb_imap_session_connect_finish (session, result, error);
  if (check->step == STEP_LOGIN)
    return lb_imap_session_login_finish (session, result, error);
  return lb_imap_session_logout_finish (session, result, error);
}

static const Protocol imap = { imap_new, imap_begin, imap_finish };

/* ---- POP3 ---- */

static GObject *
pop3_new (LbConnection *connection)
{
  return G_OBJECT (lb_pop3_session_new (connection));
}

static void
pop3_begin (Check               *check,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  LbPop3Session *session = LB_POP3_SESSION (check->session);

  if (check->step == STEP_CONNECT)
    lb_pop3_session_connect_async (session, cancellable, callback, user_data);
  else if (check->step == STEP_LOGIN)
    lb_pop3_session_login_async (session, check->user, check->password, FALSE, cancellable,
                                 callback, user_data);
  else
    lb_pop3_session_quit_async (session, cancellable, callback, user_data);
}

static gboolean
pop3_finish (Check         *check,
             GAsyncResult  *result,
             GError       **error)
{
  LbPop3Session *session = LB_POP3_SESSION (check->session);

  if (check->step == STEP_CONNECT)
    return lb_pop3_session_connect_finish (session, result, error);
  if (check->step == STEP_LOGIN)
    return lb_pop3_session_login_finish (session, result, error);
  return lb_pop3_session_quit_finish (session, result, NULL, error);
}

static const Protocol pop3 = { pop3_new, pop3_begin, pop3_finish };

/* ---- SMTP ---- */

static GObject *
smtp_new (LbConnection *connection)
{
  return G_OBJECT (lb_smtp_session_new (connection));
}

static void
smtp_begin (Check               *check,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  LbSmtpSession *session = LB_SMTP_SESSION (check->session);

  if (check->step == STEP_CONNECT)
    lb_smtp_session_connect_async (session, cancellable, callback, user_data);
  else if (check->step == STEP_LOGIN)
    lb_smtp_session_login_async (session, check->user, check->password, FALSE, cancellable,
                                 callback, user_data);
  else
    lb_smtp_session_quit_async (session, cancellable, callback, user_data);
}

static gboolean
smtp_finish (Check         *check,
             GAsyncResult  *result,
             GError       **error)
{
  LbSmtpSession *session = LB_SMTP_SESSION (check->session);

  if (check->step == STEP_CONNECT)
    return lb_smtp_session_connect_finish (session, result, error);
  if (check->step == STEP_LOGIN)
    return lb_smtp_session_login_finish (session, result, error);
  return lb_smtp_session_quit_finish (session, result, error);
}

static const Protocol smtp = { smtp_new, smtp_begin, smtp_finish };

static const Protocol *
protocol_for (LbAccountProtocol protocol)
{
  switch (protocol)
    {
    case LB_ACCOUNT_PROTOCOL_IMAP:
      return &imap;
    case LB_ACCOUNT_PROTOCOL_POP3:
      return &pop3;
    case LB_ACCOUNT_PROTOCOL_SMTP:
      return &smtp;
    default:
      return NULL;
    }
}

/**
 * lb_account_check_classify:
 * @error: (nullable): an error from lb_account_check_server_finish() (or sync)
 *
 * Returns: what the user has to do about @error; %LB_ACCOUNT_CHECK_OK for %NULL
 */
LbAccountCheckFailure
lb_account_check_classify (const GError *error)
{
  if (error == NULL)
    return LB_ACCOUNT_CHECK_OK;
  if (g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_AUTH) ||
      g_error_matches (error, LB_POP3_ERROR, LB_POP3_ERROR_AUTH) ||
      g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_AUTH))
    return LB_ACCOUNT_CHECK_PASSWORD;
  if (g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE))
    return LB_ACCOUNT_CHECK_CERTIFICATE;
  if (g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_UNREACHABLE) ||
      g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_TIMEOUT) ||
      g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_CLOSED))
    return LB_ACCOUNT_CHECK_UNREACHABLE;
  if (g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_TLS) ||
      g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_INSECURE) ||
      g_error_matches (error, LB_POP3_ERROR, LB_POP3_ERROR_INSECURE) ||
      g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_INSECURE))
    return LB_ACCOUNT_CHECK_SECURITY;
  return LB_ACCOUNT_CHECK_OTHER;
}

/* Returns the error, keeping the certificate the server presented when that is why. */
static void
return_error (GTask  *task,
              GError *error)
{
  Check *check = g_task_get_task_data (task);

  if (g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE))
    {
      GTlsCertificate *certificate = lb_connection_get_peer_certificate (check->connection);

      if (certificate != NULL)
        g_object_set_data_full (G_OBJECT (task), "peer-certificate", g_object_ref (certificate),
                                g_object_unref);
    }
  g_task_return_error (task, error);
}

static void
step_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Check *check = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  if (check->step == STEP_LOGOUT)
    {
      /* Logged in is what counts; a server hanging up on LOGOUT/QUIT changes nothing. */
      check->protocol->finish (check, result, NULL);
      lb_connection_close (check->connection);
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (!check->protocol->finish (check, result, &error))
    {
      lb_connection_close (check->connection);
      return_error (task, error);
      return;
    }
  check->step++;
  check->protocol->begin (check, cancellable, step_done_cb, g_steal_pointer (&task));
}

/**
 * lb_account_check_server_async:
 * @account: gives the login name (when @server has none), the CA file and the pinned
 *   certificate (#LbAccount.fingerprint)
 * @server: #LbAccount.incoming or .outgoing (or a server about to become one)
 * @password: the password to try
 *
 * Connects to @server, logs in and logs out. @callback runs in the thread-default main
 * context of this call.
 */
void
lb_account_check_server_async (const LbAccount       *account,
                               const LbAccountServer *server,
                               const char            *password,
                               GCancellable          *cancellable,
                               GAsyncReadyCallback    callback,
                               gpointer               user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  Check *check;

  g_return_if_fail (account != NULL);
  g_return_if_fail (server != NULL);
  g_return_if_fail (password != NULL);
  g_return_if_fail (protocol_for (server->protocol) != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_account_check_server_async);
  check = g_new0 (Check, 1);
  check->protocol = protocol_for (server->protocol);
  check->step = STEP_CONNECT;
  check->user = g_strdup (server->user != NULL ? server->user : lb_account_get_address (account));
  check->password = g_strdup (password);
  g_task_set_task_data (task, check, (GDestroyNotify) check_free);

  if (server->host == NULL || server->host[0] == '\0' || server->port == 0 ||
      server->port > G_MAXUINT16)
    {
      g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID,
                               _("The server needs a host name and a port from 1 to 65535"));
      return;
    }
  if (check->user == NULL || check->user[0] == '\0')
    {
      g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID,
                               _("The server needs a user name"));
      return;
    }

  check->connection = lb_connection_new (server->host, (guint16) server->port,
                                         server->security);
  lb_connection_set_timeouts (check->connection, 20, 30);
  if (account->ca_file != NULL &&
      !lb_connection_set_ca_file (check->connection, account->ca_file, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (account->fingerprint != NULL)
    lb_connection_set_trusted_fingerprint (check->connection, account->fingerprint);

  check->session = check->protocol->session_new (check->connection);
  check->protocol->begin (check, cancellable, step_done_cb, g_steal_pointer (&task));
}

/**
 * lb_account_check_server_finish:
 * @peer_certificate: (out) (optional) (nullable) (transfer full): with
 *   %LB_NET_ERROR_CERTIFICATE, the certificate the server presented; else %NULL
 * @error: the connection's, session's or login's error; lb_account_check_classify() says
 *   what it means for the user
 *
 * Returns: %TRUE when the server accepted the login
 */
gboolean
lb_account_check_server_finish (GAsyncResult     *result,
                                GTlsCertificate **peer_certificate,
                                GError          **error)
{
  GTlsCertificate *certificate;

  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lb_account_check_server_async,
                        FALSE);

  certificate = g_object_get_data (G_OBJECT (result), "peer-certificate");
  if (peer_certificate != NULL)
    *peer_certificate = certificate != NULL ? g_object_ref (certificate) : NULL;
  return g_task_propagate_boolean (G_TASK (result), error);
}
