/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd-relay"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lb-secret.h"
#include "lbd-relay-secret.h"

/*
 * The password the TCP relay asks for (AUTH PLAIN/LOGIN, user name = login name): 32
 * bytes from getrandom(2) as 64 hex digits, kept in a 0600 file that scripts read
 * (`passwordeval cat ~/.config/letterbox/relay-secret` in msmtp) and copied into the
 * keyring. The file is the reference: a keyring that is locked or missing does not stop
 * the relay.
 */

#define SECRET_BYTES 32
#define SECRET_MIN_LEN 16
#define SECRET_MAX_LEN 1024

/**
 * lbd_relay_secret_default_path:
 *
 * Returns: (transfer full): `$LETTERBOX_CONFIG_DIR/relay-secret`, else
 *   `$XDG_CONFIG_HOME/letterbox/relay-secret` (beside the accounts directory)
 */
char *
lbd_relay_secret_default_path (void)
{
  const char *override = g_getenv ("LETTERBOX_CONFIG_DIR");

  if (override != NULL && override[0] != '\0')
    return g_build_filename (override, "relay-secret", NULL);
  return g_build_filename (g_get_user_config_dir (), "letterbox", "relay-secret", NULL);
}

static gboolean
secret_is_valid (const char *secret)
{
  gsize len = strlen (secret);

  if (len < SECRET_MIN_LEN || len > SECRET_MAX_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if ((guint8) secret[i] <= 0x20 || (guint8) secret[i] >= 0x7f)
      return FALSE;
  return TRUE;
}

static char *
secret_generate (GError **error)
{
  guint8 raw[SECRET_BYTES];
  gsize got = 0;
  GString *hex;

  while (got < sizeof raw)
    {
      ssize_t n = getrandom (raw + got, sizeof raw - got, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       _("Cannot get random bytes for the relay password: %s"),
                       g_strerror (saved));
          return NULL;
        }
      got += (gsize) n;
    }

  hex = g_string_sized_new (2 * SECRET_BYTES + 1);
  for (gsize i = 0; i < sizeof raw; i++)
    g_string_append_printf (hex, "%02x", raw[i]);
  memset (raw, 0, sizeof raw);
  return g_string_free (hex, FALSE);
}

/* NULL without an error: the file is missing, or others could read it (then a new
 * secret replaces it: the old one may be known). */
static char *
secret_read (const char  *path,
             GError     **error)
{
  struct stat st;
  char buf[SECRET_MAX_LEN + 2];
  gsize len = 0;
  int fd;

  fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;

      if (saved == ENOENT)
        return NULL;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot read the relay password file %s: %s"), path, g_strerror (saved));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_uid != getuid ())
    {
      close (fd);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("The relay password file %s is not a regular file of yours"), path);
      return NULL;
    }
  if ((st.st_mode & 077) != 0)
    {
      close (fd);
      g_warning ("%s could be read by other users; making a new relay password", path);
      return NULL;
    }
  while (len < sizeof buf - 1)
    {
      ssize_t n = read (fd, buf + len, sizeof buf - 1 - len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          close (fd);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       _("Cannot read the relay password file %s: %s"), path,
                       g_strerror (saved));
          return NULL;
        }
      if (n == 0)
        break;
      len += (gsize) n;
    }
  close (fd);
  buf[len] = '\0';
  g_strchomp (buf);
  if (!secret_is_valid (buf))
    {
      memset (buf, 0, sizeof buf);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   _("The relay password file %s does not hold a password of %d to %d "
                     "printable characters; remove it to make a new one"),
                   path, SECRET_MIN_LEN, SECRET_MAX_LEN);
      return NULL;
    }
  {
    char *secret = g_strdup (buf);

    memset (buf, 0, sizeof buf);
    return secret;
  }
}

/**
 * lbd_relay_secret_load_or_create:
 * @path: (nullable): the file, %NULL for lbd_relay_secret_default_path()
 * @created: (out) (optional): set when a new secret was made
 *
 * Reads the relay's password, or makes one: its directory is created 0700, the file is
 * written atomically with mode 0600. A file others could read is replaced; one owned by
 * someone else, or not holding a password, is an error.
 *
 * Returns: (transfer full): the secret (wipe and free it), or %NULL with a %G_IO_ERROR
 */
char *
lbd_relay_secret_load_or_create (const char  *path,
                                 gboolean    *created,
                                 GError     **error)
{
  g_autofree char *default_path = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *contents = NULL;
  GError *local_error = NULL;
  char *secret;

  if (created != NULL)
    *created = FALSE;
  if (path == NULL)
    path = default_path = lbd_relay_secret_default_path ();

  secret = secret_read (path, &local_error);
  if (secret != NULL)
    return secret;
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return NULL;
    }

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot create %s: %s"), dir, g_strerror (saved));
      return NULL;
    }
  secret = secret_generate (error);
  if (secret == NULL)
    return NULL;
  contents = g_strconcat (secret, "\n", NULL);
  if (!g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 error))
    {
      memset (secret, 0, strlen (secret));
      g_free (secret);
      memset (contents, 0, strlen (contents));
      return NULL;
    }
  memset (contents, 0, strlen (contents));
  g_message ("Made a new relay password in %s", path);
  if (created != NULL)
    *created = TRUE;
  return secret;
}

static void
publish_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (lb_secret_store_finish (result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * lbd_relay_secret_publish_async:
 *
 * Copies the secret into the keyring (schema org.letterbox.Account, account = the login
 * name, protocol = "relay"), where Passwords and Keys shows it. @callback runs in the
 * caller's thread-default main context; errors are %LB_SECRET_ERROR.
 */
void
lbd_relay_secret_publish_async (const char          *secret,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (secret != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lbd_relay_secret_publish_async);
  lb_secret_store_async (g_get_user_name (), LBD_RELAY_SECRET_PROTOCOL,
                         _("Letterbox local mail relay"), secret, cancellable, publish_cb, task);
}

gboolean
lbd_relay_secret_publish_finish (GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lbd_relay_secret_equal:
 *
 * Compares a password with the secret in time that depends only on their lengths, not
 * on where they differ.
 */
gboolean
lbd_relay_secret_equal (const char *a,
                        const char *b)
{
  gsize la, lb, n;
  guint8 diff;

  if (a == NULL || b == NULL)
    return FALSE;
  la = strlen (a);
  lb = strlen (b);
  n = MAX (la, lb);
  diff = la != lb;
  for (gsize i = 0; i < n; i++)
    {
      guint8 x = i < la ? (guint8) a[i] : 0;
      guint8 y = i < lb ? (guint8) b[i] : 0;

      diff |= x ^ y;
    }
  return diff == 0;
}
