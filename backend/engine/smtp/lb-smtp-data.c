/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include "lb-smtp-data.h"

/*
 * The message as it goes out after DATA or BDAT, made purely and incrementally (any
 * split of the input gives the same output): every line end CRLF, and for DATA a dot
 * doubled at the start of a line and the end-of-data line (RFC 5321 §4.5.2).
 */

enum
{
  ENC_MID_LINE = 1 << 0, /* the last byte written was not the end of a line */
  ENC_CR = 1 << 1,       /* a CR was read and not yet written: is an LF next? */
};

/**
 * lb_smtp_data_encode:
 * @dot_stuff: double a dot that starts a line (DATA, RFC 5321 §4.5.2); not for BDAT
 *
 * Appends @data to @out with every line end made CRLF (a bare LF or bare CR becomes
 * CRLF, RFC 5321 §2.3.8).
 */
void
lb_smtp_data_encode (guint        *state,
                     const guint8 *data,
                     gsize         len,
                     gboolean      dot_stuff,
                     GByteArray   *out)
{
  gsize i = 0;

  while (i < len)
    {
      gsize run;

      if (*state & ENC_CR)
        {
          g_byte_array_append (out, (const guint8 *) "\r\n", 2);
          *state &= ~(guint) (ENC_CR | ENC_MID_LINE);
          if (data[i] == '\n')
            {
              i++;
              continue;
            }
        }
      if (data[i] == '\r')
        {
          *state |= ENC_CR;
          i++;
          continue;
        }
      if (data[i] == '\n')
        {
          g_byte_array_append (out, (const guint8 *) "\r\n", 2);
          *state &= ~(guint) ENC_MID_LINE;
          i++;
          continue;
        }
      if (!(*state & ENC_MID_LINE) && dot_stuff && data[i] == '.')
        g_byte_array_append (out, (const guint8 *) ".", 1);
      for (run = i; run < len && data[run] != '\r' && data[run] != '\n'; run++)
        ;
      g_byte_array_append (out, data + i, (guint) (run - i));
      *state |= ENC_MID_LINE;
      i = run;
    }
}

/**
 * lb_smtp_data_encode_finish:
 *
 * Ends the message: a last line without its line end gets one, and with @dot_stuff the
 * end-of-data line "." follows.
 */
void
lb_smtp_data_encode_finish (guint      *state,
                            gboolean    dot_stuff,
                            GByteArray *out)
{
  if (*state & (ENC_CR | ENC_MID_LINE))
    g_byte_array_append (out, (const guint8 *) "\r\n", 2);
  *state = 0;
  if (dot_stuff)
    g_byte_array_append (out, (const guint8 *) ".\r\n", 3);
}
