/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The pure part of sending, for tests and fuzzing: turns message bytes into what goes
 * after DATA or BDAT (CRLF line ends; for DATA, leading dots doubled). Carry @state
 * (start at 0) across calls; lb_smtp_data_encode_finish() adds the final CRLF if needed
 * and, for DATA, the end-of-data line. */
void lb_smtp_data_encode        (guint        *state,
                                 const guint8 *data,
                                 gsize         len,
                                 gboolean      dot_stuff,
                                 GByteArray   *out);
void lb_smtp_data_encode_finish (guint        *state,
                                 gboolean      dot_stuff,
                                 GByteArray   *out);

G_END_DECLS
