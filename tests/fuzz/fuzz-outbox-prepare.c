/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-outbox-prepare.h"

/* libFuzzer target for what the outbox checks and adds before queuing: the input is a
 * submitted message. When it is accepted, the header fields to add, put in front of it,
 * make a message that is accepted again with nothing more to add, the same Message-ID and
 * a header longer by exactly what was added. Its first line also goes through the
 * address checks. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(GDateTime) now = g_date_time_new_utc (2026, 5, 4, 12, 0, 0);
  g_autoptr(LbOutboxPrepared) first = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 *nl = memchr (data, '\n', size);
  g_autofree char *line = g_strndup ((const char *) data, nl != NULL ? (gsize) (nl - data) : size);

  lb_outbox_check_address (line, NULL);
  lb_outbox_address_is_local (line, "user", "host.example");
  g_free (lb_outbox_message_id_domain (line, "host.example"));

  first = lb_outbox_prepare_message (data, size, "example.test", now, &error);
  if (first == NULL)
    {
      if (error == NULL || error->domain != LB_OUTBOX_ERROR)
        __builtin_trap ();
      return 0;
    }
  {
    gsize prefix_len = strlen (first->prefix);
    g_autofree guint8 *whole = g_malloc (prefix_len + size + 1);
    g_autoptr(LbOutboxPrepared) second = NULL;

    memcpy (whole, first->prefix, prefix_len);
    memcpy (whole + prefix_len, data, size);
    second = lb_outbox_prepare_message (whole, prefix_len + size, "example.test", now, NULL);
    if (second == NULL || second->prefix[0] != '\0' ||
        g_strcmp0 (first->message_id, second->message_id) != 0 ||
        g_strcmp0 (first->subject, second->subject) != 0 ||
        second->header_size != first->header_size + prefix_len ||
        !g_utf8_validate (first->subject, -1, NULL))
      __builtin_trap ();
    lb_outbox_message_transport (whole, prefix_len + size, second->header_size);
  }
  return 0;
}
