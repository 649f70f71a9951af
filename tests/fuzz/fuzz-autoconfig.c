/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-autoconfig.h"

/* libFuzzer target for the autoconfig document parser: the input is parsed whole for a
 * fixed address; a result must have servers with a host and a port, an error a message
 * in UTF-8 and never both. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  GError *error = NULL;
  LbAutoconfig *c = lb_autoconfig_parse ((const char *) data, size, "fuzz.user@example.test",
                                         &error);

  if (c != NULL)
    {
      g_assert_null (error);
      g_assert_true (c->incoming->len + c->outgoing->len > 0);
      for (guint i = 0; i < c->incoming->len; i++)
        {
          LbAccountServer *s = g_ptr_array_index (c->incoming, i);

          g_assert_true (s->host != NULL && *s->host != '\0');
          g_assert_true (s->port >= 1 && s->port <= 65535);
          g_assert_true (s->protocol != LB_ACCOUNT_PROTOCOL_SMTP);
        }
      for (guint i = 0; i < c->outgoing->len; i++)
        {
          LbAccountServer *s = g_ptr_array_index (c->outgoing, i);

          g_assert_true (s->host != NULL && *s->host != '\0');
          g_assert_true (s->protocol == LB_ACCOUNT_PROTOCOL_SMTP);
        }
      lb_autoconfig_free (c);
    }
  else
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == LB_AUTOCONFIG_ERROR);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      g_error_free (error);
    }
  return 0;
}
