/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

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
  gsize span = 0; /* data[span, i) goes out as it is */

#define FLUSH(upto) G_STMT_START {                                        \
    if ((upto) > span)                                                    \
      g_byte_array_append (out, data + span, (guint) ((upto) - span));   \
  } G_STMT_END

  if (len == 0)
    return;
  if (*state & ENC_CR)
    {
      /* The last call ended on a CR: with this LF it is a line end, alone it is one. */
      g_byte_array_append (out, (const guint8 *) "\r\n", 2);
      *state &= ~(guint) (ENC_CR | ENC_MID_LINE);
      if (data[0] == '\n')
        i = span = 1;
    }

  /* Well-formed CRLF text without leading dots is copied in one piece; only what needs
   * changing breaks the span. */
  while (i < len)
    {
      const guint8 *lf, *cr;
      gsize end;

      if (!(*state & ENC_MID_LINE) && dot_stuff && data[i] == '.')
        {
          FLUSH (i);
          g_byte_array_append (out, (const guint8 *) ".", 1);
          span = i;
        }
      lf = memchr (data + i, '\n', len - i);
      end = lf != NULL ? (gsize) (lf - data) : len;
      cr = memchr (data + i, '\r', end - i);
      if (cr != NULL)
        {
          gsize j = (gsize) (cr - data);

          if (j + 1 < len && data[j + 1] == '\n')
            {
              i = j + 2;
              *state &= ~(guint) ENC_MID_LINE;
              continue;
            }
          FLUSH (j);
          if (j + 1 == len)
            {
              *state |= ENC_CR;
              span = i = len;
              break;
            }
          /* A bare CR ends a line. */
          g_byte_array_append (out, (const guint8 *) "\r\n", 2);
          *state &= ~(guint) ENC_MID_LINE;
          span = i = j + 1;
          continue;
        }
      if (lf != NULL)
        {
          /* A bare LF (a CR before it would have been found). */
          FLUSH (end);
          g_byte_array_append (out, (const guint8 *) "\r\n", 2);
          *state &= ~(guint) ENC_MID_LINE;
          span = i = end + 1;
          continue;
        }
      *state |= ENC_MID_LINE;
      i = len;
    }
  FLUSH (len);
#undef FLUSH
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
