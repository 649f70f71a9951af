/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

/* The messages test-store-crash imports: their bodies and keys follow from their number,
 * so what survives a crash can be checked byte for byte. */

static inline GBytes *
lb_crash_body (guint n)
{
  gsize size = 200 + (n * 7919u) % 20000;
  GString *s = g_string_sized_new (size + 64);

  g_string_append_printf (s, "Subject: Message %u\r\n\r\n", n);
  while (s->len < size)
    g_string_append_printf (s, "line %u of message %u\r\n", (guint) s->len, n);
  return g_string_free_to_bytes (s);
}

static inline char *
lb_crash_key (guint n)
{
  return g_strdup_printf ("crash-%u", n);
}
