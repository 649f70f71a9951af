/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <libsecret/secret.h>
#include <string.h>

#include "lb-account.h"
#include "lb-secret.h"
#include "lb-test-util.h"

/*
 * Account passwords in a real gnome-keyring on a private bus: stored, found, replaced,
 * kept apart per protocol and per account, removed; the same through LbAccount; and a
 * readable error when the desktop has no keyring at all.
 */

typedef struct
{
  gboolean done;
  gboolean ok;
  char *password;
  GError *error;
} Call;

static void
call_reset (Call *call)
{
  g_clear_pointer (&call->password, g_free);
  g_clear_error (&call->error);
  call->done = FALSE;
  call->ok = FALSE;
}

static gboolean
call_done (gpointer user_data)
{
  return ((Call *) user_data)->done;
}

static void
store_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Call *call = user_data;

  call->ok = lb_secret_store_finish (result, &call->error);
  call->done = TRUE;
}

static void
lookup_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Call *call = user_data;

  call->password = lb_secret_lookup_finish (result, &call->error);
  call->ok = call->error == NULL;
  call->done = TRUE;
}

static void
clear_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Call *call = user_data;

  call->ok = lb_secret_clear_finish (result, &call->error);
  call->done = TRUE;
}

static void
store (const char *account,
       const char *protocol,
       const char *password)
{
  Call call = { 0 };

  lb_secret_store_async (account, protocol, "Letterbox test account", password, NULL, store_cb,
                         &call);
  g_assert_true (lb_test_wait_until (call_done, &call, 20000));
  g_assert_no_error (call.error);
  g_assert_true (call.ok);
}

static char *
lookup (const char *account,
        const char *protocol)
{
  Call call = { 0 };

  lb_secret_lookup_async (account, protocol, NULL, lookup_cb, &call);
  g_assert_true (lb_test_wait_until (call_done, &call, 20000));
  g_assert_no_error (call.error);
  return call.password;
}

static void
clear (const char *account,
       const char *protocol)
{
  Call call = { 0 };

  lb_secret_clear_async (account, protocol, NULL, clear_cb, &call);
  g_assert_true (lb_test_wait_until (call_done, &call, 20000));
  g_assert_no_error (call.error);
  g_assert_true (call.ok);
}

static void
test_store_lookup_clear (void)
{
  g_autofree char *first = NULL;
  g_autofree char *replaced = NULL;
  g_autofree char *smtp = NULL;
  g_autofree char *other = NULL;
  g_autofree char *imap_after_clear = NULL;
  g_autofree char *smtp_after_clear = NULL;
  g_autofree char *missing = NULL;

  store ("work", "imap", "correct horse battery staple");
  first = lookup ("work", "imap");
  g_assert_cmpstr (first, ==, "correct horse battery staple");

  /* Storing again replaces, it does not add a second item. */
  store ("work", "imap", "pässwörd with ünïcode");
  replaced = lookup ("work", "imap");
  g_assert_cmpstr (replaced, ==, "pässwörd with ünïcode");

  store ("work", "smtp", "smtp secret");
  store ("home", "imap", "home secret");
  smtp = lookup ("work", "smtp");
  other = lookup ("home", "imap");
  g_assert_cmpstr (smtp, ==, "smtp secret");
  g_assert_cmpstr (other, ==, "home secret");

  clear ("work", "imap");
  imap_after_clear = lookup ("work", "imap");
  smtp_after_clear = lookup ("work", "smtp");
  g_assert_null (imap_after_clear);
  g_assert_cmpstr (smtp_after_clear, ==, "smtp secret");

  /* Clearing what is not there is no error. */
  clear ("work", "imap");
  missing = lookup ("nobody", "pop3");
  g_assert_null (missing);
}

/* Run in a child process with its own bus, which has no Secret Service to activate. */
static void
test_no_service (void)
{
  if (g_test_subprocess ())
    {
      LbTestBus *bus = lb_test_bus_start (NULL);
      Call call = { 0 };

      lb_secret_lookup_async ("work", "imap", NULL, lookup_cb, &call);
      g_assert_true (lb_test_wait_until (call_done, &call, 20000));
      g_assert_error (call.error, LB_SECRET_ERROR, LB_SECRET_ERROR_NO_SERVICE);
      g_print ("%s\n", call.error->message);
      call_reset (&call);

      lb_secret_store_async ("work", "imap", "label", "pw", NULL, store_cb, &call);
      g_assert_true (lb_test_wait_until (call_done, &call, 20000));
      g_assert_false (call.ok);
      g_assert_error (call.error, LB_SECRET_ERROR, LB_SECRET_ERROR_NO_SERVICE);
      call_reset (&call);

      secret_service_disconnect ();
      bus->keyring_used = TRUE;
      lb_test_bus_stop (bus);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*No password keyring is available*");
}

/* LbAccount's keyring path: stored per protocol, found again, and a clear NOT_FOUND
 * for a protocol with nothing stored. */
static void
test_account_password (void)
{
  g_autoptr(LbAccount) account = lb_account_new ("acct-kr");
  g_autoptr(GError) error = NULL;
  g_autofree char *password = NULL;
  char *missing;
  LbTestWait wait = { 0 };

  lb_account_set_password_async (account, LB_ACCOUNT_PROTOCOL_SMTP, "smtp pässword", NULL,
                                 lb_test_wait_cb, &wait);
  g_assert_true (lb_account_set_password_finish (lb_test_wait_result (&wait), &error));
  g_assert_no_error (error);
  g_clear_object (&wait.result);

  lb_account_get_password_async (account, LB_ACCOUNT_PROTOCOL_SMTP, NULL, lb_test_wait_cb,
                                 &wait);
  password = lb_account_get_password_finish (lb_test_wait_result (&wait), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, "smtp pässword");
  g_clear_object (&wait.result);

  lb_account_get_password_async (account, LB_ACCOUNT_PROTOCOL_IMAP, NULL, lb_test_wait_cb,
                                 &wait);
  missing = lb_account_get_password_finish (lb_test_wait_result (&wait), &error);
  g_assert_null (missing);
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "imap"));
  g_clear_object (&wait.result);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = NULL;
  g_autoptr(GError) error = NULL;
  LbTestBus *bus = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/secret/no-service", test_no_service);
  g_test_add_func ("/secret/store-lookup-clear", test_store_lookup_clear);
  g_test_add_func ("/secret/account-password", test_account_password);

  if (g_test_subprocess ())
    return g_test_run ();

  home = lb_test_make_home ();
  bus = lb_test_bus_start (NULL);
  lb_test_bus_start_keyring (bus, &error);
  g_assert_no_error (error);

  status = g_test_run ();

  /* libsecret keeps its connection to the bus in a singleton; the private bus can only
   * go down once that is released. */
  secret_service_disconnect ();
  lb_test_bus_stop (bus);
  lb_test_remove_tree (home);
  return status;
}
