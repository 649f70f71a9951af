/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-store-import.h"
#include "lbctl-commands.h"
#include "lbctl-json.h"

/* `import` and `export`: mail in and out of the store as mbox, Maildir or .eml files
 * (lb-store-import.c), in this process. */

static LbFolder *
local_inbox (GPtrArray *folders)
{
  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      if (lb_folder_get_role (folder) == LB_FOLDER_ROLE_INBOX &&
          strcmp (lb_folder_get_account_id (folder), LB_STORE_LOCAL_ACCOUNT_ID) == 0)
        return folder;
    }
  return NULL;
}

static void
print_counts_json (const char                  *folder_path,
                   gint64                       folder_id,
                   const char                  *path,
                   const char                  *format,
                   const char                  *count_name,
                   const LbStoreTransferResult *counts)
{
  g_autoptr(LbctlJson) json = lbctl_json_new ();
  g_autofree char *text = NULL;

  lbctl_json_begin_object (json);
  lbctl_json_member_string (json, "folder", folder_path);
  lbctl_json_member_int (json, "folder_id", folder_id);
  lbctl_json_member_string (json, "path", path);
  if (format != NULL)
    lbctl_json_member_string (json, "format", format);
  lbctl_json_member_int (json, count_name, counts->messages);
  lbctl_json_member_int (json, "skipped", counts->skipped);
  lbctl_json_member_int (json, "failed", counts->failed);
  lbctl_json_end_object (json);
  text = lbctl_json_free_to_string (g_steal_pointer (&json));
  g_print ("%s\n", text);
}

/* Opens the store and finds the folder (@spec, or Local Folders' Inbox for NULL). */
static LbStore *
open_with_folder (const char  *spec,
                  GPtrArray  **folders,
                  LbFolder   **folder,
                  int         *status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lbctl_open_store (&error);

  if (store == NULL || (*folders = lb_store_list_folders (store, &error)) == NULL)
    {
      *status = lbctl_fail (error);
      return NULL;
    }
  *folder = spec != NULL ? lbctl_find_folder (*folders, spec, &error) : local_inbox (*folders);
  if (*folder == NULL)
    {
      if (error == NULL)
        g_set_error (&error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                     _("Local Folders have no Inbox"));
      *status = lbctl_fail (error);
      return NULL;
    }
  return g_steal_pointer (&store);
}

/* import PATH [--into FOLDER] */

static const LbctlCommandHelp import_help = {
  "import", N_("PATH [--into FOLDER]"),
  N_("Imports an mbox file (mboxrd), a Maildir (flags from the file names), a directory "
     "of .eml files or one .eml file; messages imported before are not added again.\n"
     "  --into FOLDER   the folder to import into; Local Folders' Inbox (local/Inbox) by "
     "default\n"
     "Exit status 1 when some messages could not be read (the others are imported).")
};

int
lbctl_import (int    argc,
              char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(GFile) source = NULL;
  g_autoptr(GFileInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *into = NULL;
  g_autofree char *folder_path = NULL;
  const LbctlOption options[] = {
    { "into", LBCTL_OPTION_STRING, &into },
    { NULL }
  };
  LbStoreTransferResult counts = { 0 };
  LbctlWait wait;
  LbFolder *folder = NULL;
  gboolean ok;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &import_help, options, FALSE, &status)) == NULL)
    return status;
  if (args->len != 1)
    return lbctl_usage_error ("import", _("import takes one PATH"));

  /* Checked first, so that a missing or unreadable path is reported as such. */
  source = g_file_new_for_commandline_arg (g_ptr_array_index (args, 0));
  info = g_file_query_info (source,
                            G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_ACCESS_CAN_READ,
                            G_FILE_QUERY_INFO_NONE, NULL, &error);
  if (info == NULL)
    return lbctl_fail (error);
  if (g_file_info_has_attribute (info, G_FILE_ATTRIBUTE_ACCESS_CAN_READ) &&
      !g_file_info_get_attribute_boolean (info, G_FILE_ATTRIBUTE_ACCESS_CAN_READ))
    {
      lbctl_error (_("Cannot read “%s”: permission denied"), g_file_peek_path (source));
      return LBCTL_EXIT_IO;
    }

  if ((store = open_with_folder (into, &folders, &folder, &status)) == NULL)
    return status;
  folder_path = lbctl_folder_path (folder);
  if ((writer = lbctl_open_writer (store, &error)) == NULL)
    return lbctl_fail (error);

  lbctl_wait_init (&wait);
  lb_store_import_async (writer, lb_folder_get_id (folder), source, LB_STORE_FORMAT_AUTO, NULL,
                         lbctl_wait_cb, &wait);
  ok = lb_store_import_finish (writer, lbctl_wait_run (&wait), &counts, &error);
  lbctl_wait_clear (&wait);
  lb_store_writer_close (writer);
  if (!ok)
    return lbctl_fail (error);

  if (lbctl_json)
    print_counts_json (folder_path, lb_folder_get_id (folder), g_file_peek_path (source), NULL,
                       "imported", &counts);
  else
    g_print (g_dngettext (GETTEXT_PACKAGE,
                          "Imported %u message into %s (%u already there, %u unreadable).\n",
                          "Imported %u messages into %s (%u already there, %u unreadable).\n",
                          counts.messages),
             counts.messages, folder_path, counts.skipped, counts.failed);
  if (counts.failed > 0)
    {
      lbctl_error (g_dngettext (GETTEXT_PACKAGE, "%u message in “%s” could not be read",
                                "%u messages in “%s” could not be read", counts.failed),
                   counts.failed, g_file_peek_path (source));
      return LBCTL_EXIT_FAILURE;
    }
  return LBCTL_EXIT_OK;
}

/* export FOLDER FILE */

static const LbctlCommandHelp export_help = {
  "export", N_("FOLDER FILE"),
  N_("Writes a folder's messages, oldest first, to FILE as an mbox file (mboxrd), replacing "
     "it; to a Maildir (created if needed, messages into cur/ with their flags) when FILE is "
     "a directory or ends in “/”.")
};

int
lbctl_export (int    argc,
              char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(GFile) destination = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *folder_path = NULL;
  LbStoreTransferResult counts = { 0 };
  LbStoreFormat format;
  LbctlWait wait;
  LbFolder *folder = NULL;
  const char *path;
  gboolean ok;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &export_help, NULL, FALSE, &status)) == NULL)
    return status;
  if (args->len != 2)
    return lbctl_usage_error ("export", _("export takes a FOLDER and a FILE"));
  path = g_ptr_array_index (args, 1);
  if (path[0] == '\0')
    return lbctl_usage_error ("export", _("export needs a FILE name"));

  destination = g_file_new_for_commandline_arg (path);
  format = g_str_has_suffix (path, "/") ||
           g_file_query_file_type (destination, G_FILE_QUERY_INFO_NONE, NULL) ==
             G_FILE_TYPE_DIRECTORY
           ? LB_STORE_FORMAT_MAILDIR : LB_STORE_FORMAT_MBOX;

  if ((store = open_with_folder (g_ptr_array_index (args, 0), &folders, &folder,
                                 &status)) == NULL)
    return status;
  folder_path = lbctl_folder_path (folder);

  lbctl_wait_init (&wait);
  lb_store_export_async (store, lb_folder_get_id (folder), destination, format, NULL,
                         lbctl_wait_cb, &wait);
  ok = lb_store_export_finish (store, lbctl_wait_run (&wait), &counts, &error);
  lbctl_wait_clear (&wait);
  if (!ok)
    return lbctl_fail (error);

  if (lbctl_json)
    print_counts_json (folder_path, lb_folder_get_id (folder), g_file_peek_path (destination),
                       format == LB_STORE_FORMAT_MAILDIR ? "maildir" : "mbox", "exported",
                       &counts);
  else if (format == LB_STORE_FORMAT_MAILDIR)
    g_print (g_dngettext (GETTEXT_PACKAGE,
                          "Exported %u message from %s to the Maildir %s (%u without a body).\n",
                          "Exported %u messages from %s to the Maildir %s (%u without a body).\n",
                          counts.messages),
             counts.messages, folder_path, g_file_peek_path (destination), counts.skipped);
  else
    g_print (g_dngettext (GETTEXT_PACKAGE,
                          "Exported %u message from %s to the mbox file %s (%u without a body).\n",
                          "Exported %u messages from %s to the mbox file %s (%u without a body).\n",
                          counts.messages),
             counts.messages, folder_path, g_file_peek_path (destination), counts.skipped);
  return LBCTL_EXIT_OK;
}
