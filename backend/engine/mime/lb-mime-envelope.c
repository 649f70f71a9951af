/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-envelope.h"

/*
 * The envelope a message's own header gives (RFC 5322 §3.6.3; sendmail's -t): read
 * field by field from the raw bytes, so that removing Bcc changes nothing else. Pure:
 * bytes in, strings out.
 */

/* The longest header section looked at; beyond it is body (as for the outbox). */
#define MAX_HEADER (1024 * 1024)

static void
add_mailboxes (InternetAddressList *list,
               GPtrArray           *out,
               GHashTable          *seen)
{
  int n = internet_address_list_length (list);

  for (int i = 0; i < n; i++)
    {
      InternetAddress *address = internet_address_list_get_address (list, i);

      if (INTERNET_ADDRESS_IS_GROUP (address))
        add_mailboxes (internet_address_group_get_members (INTERNET_ADDRESS_GROUP (address)),
                       out, seen);
      else if (INTERNET_ADDRESS_IS_MAILBOX (address))
        {
          const char *addr = internet_address_mailbox_get_addr (INTERNET_ADDRESS_MAILBOX (address));
          g_autofree char *key = NULL;

          if (addr == NULL || addr[0] == '\0' || !g_utf8_validate (addr, -1, NULL))
            continue;
          key = g_utf8_casefold (addr, -1);
          if (g_hash_table_contains (seen, key))
            continue;
          g_ptr_array_add (out, g_strdup (addr));
          g_hash_table_add (seen, g_steal_pointer (&key));
        }
    }
}

/* The first mailbox of @value, or NULL. */
static char *
first_mailbox (const char *value)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(InternetAddressList) list = internet_address_list_parse (lb_mime_parser_options (),
                                                                    value);

  if (list == NULL)
    return NULL;
  add_mailboxes (list, out, seen);
  return out->len > 0 ? g_strdup (g_ptr_array_index (out, 0)) : NULL;
}

static gboolean
name_is (const char *field,
         gsize       name_len,
         const char *name)
{
  return name_len == strlen (name) && g_ascii_strncasecmp (field, name, name_len) == 0;
}

LbMimeEnvelope *
lb_mime_envelope_from_message (GBytes  *message,
                               GError **error)
{
  g_autoptr(GPtrArray) recipients = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GByteArray) kept = g_byte_array_new ();
  g_autofree char *from = NULL;
  g_autofree char *sender = NULL;
  LbMimeEnvelope *envelope;
  gsize len = 0;
  const char *data = g_bytes_get_data (message, &len);
  gsize pos = 0;
  gsize limit = MIN (len, (gsize) MAX_HEADER);

  g_return_val_if_fail (message != NULL, NULL);

  lb_mime_init ();
  if (len == 0)
    {
      g_set_error_literal (error, LB_MIME_ERROR, LB_MIME_ERROR_PARSE, _("The message is empty"));
      return NULL;
    }

  /* Field by field until the empty line that ends the header. */
  while (pos < limit)
    {
      gsize start = pos;
      gsize end;
      gsize name_len;
      const char *colon;

      if (data[pos] == '\n' || (data[pos] == '\r' && pos + 1 < len && data[pos + 1] == '\n'))
        break;
      /* The field runs to the end of its last continuation line. */
      end = pos;
      do
        {
          const char *nl = memchr (data + end, '\n', len - end);

          end = nl != NULL ? (gsize) (nl - data) + 1 : len;
        }
      while (end < len && (data[end] == ' ' || data[end] == '\t'));
      pos = end;

      colon = memchr (data + start, ':', end - start);
      name_len = colon != NULL ? (gsize) (colon - (data + start)) : 0;
      if (colon != NULL && name_len > 0 &&
          (name_is (data + start, name_len, "To") || name_is (data + start, name_len, "Cc") ||
           name_is (data + start, name_len, "Bcc") || name_is (data + start, name_len, "From") ||
           name_is (data + start, name_len, "Sender")))
        {
          g_autofree char *value = g_strndup (colon + 1, end - (gsize) (colon + 1 - data));

          /* NUL bytes would cut the value short; such a field is not an address list. */
          if (memchr (colon + 1, '\0', end - (gsize) (colon + 1 - data)) == NULL)
            {
              if (name_is (data + start, name_len, "From"))
                {
                  if (from == NULL)
                    from = first_mailbox (value);
                }
              else if (name_is (data + start, name_len, "Sender"))
                {
                  if (sender == NULL)
                    sender = first_mailbox (value);
                }
              else
                {
                  g_autoptr(InternetAddressList) list =
                    internet_address_list_parse (lb_mime_parser_options (), value);

                  if (list != NULL)
                    add_mailboxes (list, recipients, seen);
                }
            }
          if (name_is (data + start, name_len, "Bcc"))
            continue;   /* not copied */
        }
      g_byte_array_append (kept, (const guint8 *) data + start, end - start);
    }
  g_byte_array_append (kept, (const guint8 *) data + pos, len - pos);

  if (recipients->len == 0)
    {
      g_set_error_literal (error, LB_MIME_ERROR, LB_MIME_ERROR_INVALID,
                           _("The message names no recipient (no To, Cc or Bcc address)"));
      return NULL;
    }

  envelope = g_new0 (LbMimeEnvelope, 1);
  envelope->sender = from != NULL ? g_steal_pointer (&from) : g_steal_pointer (&sender);
  g_ptr_array_add (recipients, NULL);
  envelope->recipients = (GStrv) g_ptr_array_steal (recipients, NULL);
  envelope->message = g_byte_array_free_to_bytes (g_steal_pointer (&kept));
  return envelope;
}

void
lb_mime_envelope_free (LbMimeEnvelope *envelope)
{
  if (envelope == NULL)
    return;
  g_free (envelope->sender);
  g_strfreev (envelope->recipients);
  g_bytes_unref (envelope->message);
  g_free (envelope);
}
