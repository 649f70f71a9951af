/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-smtp-data.h"
#include "lbd-relay-parser.h"

/* libFuzzer target for the relay's pure parser. The input is a client's byte stream:
 * cut into command lines (whole, and split where the first byte says: the same results
 * either way), each line parsed as a command, an AUTH PLAIN response and an address.
 * The same bytes as DATA: the decoder must consume the same, find the same flaws and
 * give the same message for any split, never more than it was given; and what the
 * client's encoder makes of the bytes must decode back to them, flawless, unless they
 * hold NUL bytes or long lines. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static GString *
lines (const guint8 *data,
       gsize         size,
       gsize         cut)
{
  GString *trace = g_string_new (NULL);
  GByteArray *buf = g_byte_array_new ();
  gboolean skipping = FALSE;
  gsize fed = 0;

  while (TRUE)
    {
      gsize line_len, consumed;
      GError *error = NULL;
      LbdRelayLineResult r;

      r = lbd_relay_line_next (&skipping, buf->data, buf->len, &line_len, &consumed, &error);
      if (consumed > buf->len || line_len > consumed)
        __builtin_trap ();
      if (r == LBD_RELAY_LINE_OK)
        {
          LbdRelayCommand *command;
          char *authzid, *authcid, *password;
          char *text = g_strndup ((const char *) buf->data, line_len);

          if (line_len + 2 > LBD_RELAY_MAX_LINE || memchr (buf->data, '\r', line_len) != NULL ||
              memchr (buf->data, '\n', line_len) != NULL)
            __builtin_trap ();
          g_string_append_printf (trace, "L%zu:", line_len);
          g_string_append_len (trace, (const char *) buf->data, line_len);
          command = lbd_relay_command_parse ((const char *) buf->data, line_len, &error);
          if ((command == NULL) == (error == NULL))
            __builtin_trap ();
          if (command != NULL && command->address != NULL &&
              command->verb == LBD_RELAY_VERB_RCPT &&
              g_ascii_strcasecmp (command->address, "postmaster") != 0 &&
              !lbd_relay_address_validate (command->address, strlen (command->address), TRUE, NULL))
            __builtin_trap ();
          if (error != NULL)
            lbd_relay_parse_error_reply (error);
          g_clear_error (&error);
          lbd_relay_command_free (command);
          if (lbd_relay_sasl_plain_decode (text, &authzid, &authcid, &password, NULL))
            {
              if (authcid[0] == '\0' || password[0] == '\0')
                __builtin_trap ();
              g_free (authzid);
              g_free (authcid);
              g_free (password);
            }
          lbd_relay_address_validate (text, line_len, line_len % 2 == 0, NULL);
          g_free (text);
        }
      else if (r == LBD_RELAY_LINE_ERROR)
        {
          if (error == NULL)
            __builtin_trap ();
          g_string_append_printf (trace, "E%d", error->code);
          g_clear_error (&error);
        }
      g_byte_array_remove_range (buf, 0, consumed);
      if (r == LBD_RELAY_LINE_MORE)
        {
          gsize next = fed < cut ? cut : size;

          if (fed == size)
            break;
          g_byte_array_append (buf, data + fed, next - fed);
          fed = next;
        }
    }
  g_byte_array_unref (buf);
  return trace;
}

typedef struct
{
  GByteArray *message;
  gsize consumed;
  gboolean done;
  LbdRelayDataDecoder decoder;
} Decoded;

static Decoded
decode (const guint8 *data,
        gsize         size,
        gsize         cut)
{
  Decoded r = { g_byte_array_new (), 0, FALSE, { 0 } };

  lbd_relay_data_decoder_init (&r.decoder);
  r.consumed = lbd_relay_data_decode (&r.decoder, data, cut, r.message, &r.done);
  if (!r.done)
    r.consumed += lbd_relay_data_decode (&r.decoder, data + cut, size - cut, r.message, &r.done);
  if (r.consumed > size || r.decoder.size > r.consumed)
    __builtin_trap ();
  return r;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  gsize cut = size > 0 ? data[0] % (size + 1) : 0;
  GString *whole = lines (data, size, size);
  GString *split = lines (data, size, cut);
  Decoded a, b;

  if (!g_string_equal (whole, split))
    __builtin_trap ();
  g_string_free (whole, TRUE);
  g_string_free (split, TRUE);

  a = decode (data, size, size);
  b = decode (data, size, cut);
  if (a.consumed != b.consumed || a.done != b.done || a.decoder.flaws != b.decoder.flaws ||
      a.decoder.size != b.decoder.size)
    __builtin_trap ();
  /* After a flaw the message is not kept, so its bytes may differ. */
  if (a.decoder.flaws == 0 &&
      (a.message->len != b.message->len || a.message->len != a.decoder.size ||
       (a.message->len > 0 && memcmp (a.message->data, b.message->data, a.message->len) != 0)))
    __builtin_trap ();
  g_byte_array_unref (a.message);
  g_byte_array_unref (b.message);

  /* Round trip through the client's encoder. */
  {
    GByteArray *wire = g_byte_array_new ();
    GByteArray *plain = g_byte_array_new ();
    guint s1 = 0, s2 = 0;
    Decoded r;

    lb_smtp_data_encode (&s1, data, size, TRUE, wire);
    lb_smtp_data_encode_finish (&s1, TRUE, wire);
    lb_smtp_data_encode (&s2, data, size, FALSE, plain);
    lb_smtp_data_encode_finish (&s2, FALSE, plain);
    r = decode (wire->data, wire->len, cut % (wire->len + 1));
    if (!r.done || r.consumed != wire->len ||
        (r.decoder.flaws & ~(LBD_RELAY_DATA_NUL | LBD_RELAY_DATA_LONG_LINE)) != 0)
      __builtin_trap ();
    if (r.decoder.flaws == 0 &&
        (r.message->len != plain->len ||
         (plain->len > 0 && memcmp (r.message->data, plain->data, plain->len) != 0)))
      __builtin_trap ();
    g_byte_array_unref (r.message);
    g_byte_array_unref (wire);
    g_byte_array_unref (plain);
  }
  return 0;
}
