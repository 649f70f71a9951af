/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <libsecret/secret.h>
#include <string.h>

#include "lb-secret.h"

/*
 * Account passwords in the desktop keyring through libsecret, under the schema
 * org.letterbox.Account with the attributes "account" (the account id) and "protocol"
 * ("imap", "pop3", "smtp"), so one account can hold a different password per server.
 * The daemon's relay keeps its password here too, as account = the login name and
 * protocol = "relay" (backend/daemon/relay/lbd-relay-secret.c).
 * libsecret's own errors are D-Bus errors that read poorly; they are turned into
 * LB_SECRET_ERROR codes with a sentence a user can act on.
 */

G_DEFINE_QUARK (lb-secret-error-quark, lb_secret_error)

static const SecretSchema *
lb_secret_get_schema (void)
{
  static const SecretSchema schema = {
    "org.letterbox.Account",
    SECRET_SCHEMA_NONE,
    {
      { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "protocol", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
    },
    0, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  };

  return &schema;
}

static GError *
translate_error (GError *error)
{
  g_autoptr(GError) owned = error;
  g_autofree char *remote = NULL;
  int code = LB_SECRET_ERROR_FAILED;
  const char *message;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return g_steal_pointer (&owned);

  if (g_dbus_error_is_remote_error (error))
    remote = g_dbus_error_get_remote_error (error);

  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
      g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
      g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND) ||
      strstr (error->message, "autolaunch") != NULL)
    {
      code = LB_SECRET_ERROR_NO_SERVICE;
      message = _("No password keyring is available on this desktop. "
                  "Install and start GNOME Keyring (or another Secret Service), "
                  "or give the account a password command");
    }
  else if (g_error_matches (error, SECRET_ERROR, SECRET_ERROR_NO_SUCH_OBJECT) ||
           g_strcmp0 (remote, "org.freedesktop.DBus.Error.UnknownObject") == 0 ||
           strstr (error->message, "Object does not exist") != NULL)
    {
      code = LB_SECRET_ERROR_NO_KEYRING;
      message = _("The keyring has no login collection to keep passwords in. "
                  "Create or unlock the default keyring in Passwords and Keys");
    }
  else if (g_error_matches (error, SECRET_ERROR, SECRET_ERROR_IS_LOCKED) ||
           g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED))
    {
      code = LB_SECRET_ERROR_LOCKED;
      message = _("The keyring is locked. Unlock it to let Letterbox use the password");
    }
  else
    {
      message = _("The keyring refused the request");
    }

  return g_error_new (LB_SECRET_ERROR, code, "%s (%s)", message, error->message);
}

static void
store_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (secret_password_store_finish (result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, translate_error (error));
}

/**
 * lb_secret_store_async:
 * @account_id: the account's id
 * @protocol: "imap", "pop3" or "smtp"
 * @label: what a keyring browser shows for the item
 * @password: the secret
 *
 * Stores (or replaces) the password in the default collection. @callback runs in the
 * caller's thread-default main context.
 */
void
lb_secret_store_async (const char          *account_id,
                       const char          *protocol,
                       const char          *label,
                       const char          *password,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (account_id != NULL);
  g_return_if_fail (protocol != NULL);
  g_return_if_fail (label != NULL);
  g_return_if_fail (password != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_secret_store_async);
  secret_password_store (lb_secret_get_schema (), SECRET_COLLECTION_DEFAULT, label, password,
                         cancellable, store_cb, task,
                         "account", account_id,
                         "protocol", protocol,
                         NULL);
}

gboolean
lb_secret_store_finish (GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
lookup_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  char *password;

  password = secret_password_lookup_finish (result, &error);
  if (error != NULL)
    g_task_return_error (task, translate_error (error));
  else
    g_task_return_pointer (task, password, (GDestroyNotify) secret_password_free);
}

/**
 * lb_secret_lookup_async:
 *
 * Looks the password up. Finishing gives %NULL without an error when the keyring works
 * but holds no password for the account.
 */
void
lb_secret_lookup_async (const char          *account_id,
                        const char          *protocol,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (account_id != NULL);
  g_return_if_fail (protocol != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_secret_lookup_async);
  secret_password_lookup (lb_secret_get_schema (), cancellable, lookup_cb, task,
                          "account", account_id,
                          "protocol", protocol,
                          NULL);
}

/**
 * lb_secret_lookup_finish:
 *
 * Returns: (transfer full) (nullable): the password (free with g_free(); it is wiped
 *   only if freed with secret_password_free()), or %NULL
 */
char *
lb_secret_lookup_finish (GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
clear_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  /* FALSE without an error means there was nothing to remove, which is fine. */
  secret_password_clear_finish (result, &error);
  if (error != NULL)
    g_task_return_error (task, translate_error (error));
  else
    g_task_return_boolean (task, TRUE);
}

void
lb_secret_clear_async (const char          *account_id,
                       const char          *protocol,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (account_id != NULL);
  g_return_if_fail (protocol != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_secret_clear_async);
  secret_password_clear (lb_secret_get_schema (), cancellable, clear_cb, task,
                         "account", account_id,
                         "protocol", protocol,
                         NULL);
}

gboolean
lb_secret_clear_finish (GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
