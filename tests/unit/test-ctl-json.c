/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lbctl-json.h"

/* letterbox-ctl's JSON writer: RFC 8259 escaping (every control character, quotes,
 * backslashes), UTF-8 kept as is, invalid UTF-8 replaced, nesting and separators; and
 * random strings decoded back to what went in. */

static char *
escaped (const char *value)
{
  g_autoptr(GString) out = g_string_new (NULL);

  lbctl_json_escape (out, value);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
test_escape (void)
{
  static const struct
  {
    const char *in;
    const char *out;
  } cases[] = {
    { "", "\"\"" },
    { "plain text", "\"plain text\"" },
    { "say \"hi\"", "\"say \\\"hi\\\"\"" },
    { "C:\\dir\\", "\"C:\\\\dir\\\\\"" },
    { "a/b", "\"a/b\"" },
    { "line\nbreak\r\n", "\"line\\nbreak\\r\\n\"" },
    { "\t\b\f", "\"\\t\\b\\f\"" },
    { "\x01\x1f", "\"\\u0001\\u001f\"" },
    { "\x7f", "\"\x7f\"" },
    { "Grüße aus Köln ✉ 😀", "\"Grüße aus Köln ✉ 😀\"" },
    { "a\xe2\x80\xa8" "b\xe2\x80\xa9", "\"a\\u2028b\\u2029\"" },
    { "bad \xff byte", "\"bad \xef\xbf\xbd byte\"" },
    { "cut \xc3", "\"cut \xef\xbf\xbd\"" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = escaped (cases[i].in);

      g_assert_cmpstr (out, ==, cases[i].out);
      g_assert_true (g_utf8_validate (out, -1, NULL));
    }
}

static void
test_all_control_characters (void)
{
  for (int c = 1; c < 0x20; c++)
    {
      char in[2] = { (char) c, '\0' };
      g_autofree char *out = escaped (in);

      /* Never raw (RFC 8259 §7), always a two-character or \u00XX escape. */
      g_assert_cmpint (out[0], ==, '"');
      g_assert_cmpint (out[1], ==, '\\');
      for (const char *p = out; *p != '\0'; p++)
        g_assert_cmpint ((guchar) *p, >=, 0x20);
    }
}

static void
test_document (void)
{
  g_autoptr(LbctlJson) json = lbctl_json_new ();
  g_autofree char *text = NULL;

  lbctl_json_begin_array (json);
  lbctl_json_begin_object (json);
  lbctl_json_member_int (json, "id", 42);
  lbctl_json_member_int (json, "min", G_MININT64);
  lbctl_json_member_string (json, "name", "x\"y");
  lbctl_json_member_string (json, "none", NULL);
  lbctl_json_member_boolean (json, "yes", TRUE);
  lbctl_json_member_boolean (json, "no", FALSE);
  lbctl_json_name (json, "flags");
  lbctl_json_begin_array (json);
  lbctl_json_string (json, "seen");
  lbctl_json_string (json, "flagged");
  lbctl_json_end_array (json);
  lbctl_json_name (json, "empty");
  lbctl_json_begin_object (json);
  lbctl_json_end_object (json);
  lbctl_json_name (json, "nothing");
  lbctl_json_null (json);
  lbctl_json_end_object (json);
  lbctl_json_int (json, -1);
  lbctl_json_begin_array (json);
  lbctl_json_end_array (json);
  lbctl_json_end_array (json);
  text = lbctl_json_free_to_string (g_steal_pointer (&json));

  g_assert_cmpstr (text, ==,
                   "[{\"id\": 42, \"min\": -9223372036854775808, \"name\": \"x\\\"y\", "
                   "\"none\": null, \"yes\": true, \"no\": false, "
                   "\"flags\": [\"seen\", \"flagged\"], \"empty\": {}, \"nothing\": null}, "
                   "-1, []]");
}

static void
test_scalar_document (void)
{
  g_autoptr(LbctlJson) json = lbctl_json_new ();
  g_autofree char *text = NULL;

  lbctl_json_string (json, "only");
  text = lbctl_json_free_to_string (g_steal_pointer (&json));
  g_assert_cmpstr (text, ==, "\"only\"");
}

/* The inverse of the escaping, for the escapes the writer produces (and the rest of
 * RFC 8259's, surrogate pairs included). Returns NULL for anything that is not a JSON
 * string. */
static char *
unescape (const char *json)
{
  g_autoptr(GString) out = g_string_new (NULL);
  const char *p = json;

  if (*p++ != '"')
    return NULL;
  while (*p != '"')
    {
      if (*p == '\0' || (guchar) *p < 0x20)
        return NULL;
      if (*p != '\\')
        {
          g_string_append_c (out, *p++);
          continue;
        }
      p++;
      switch (*p)
        {
        case '"':
        case '\\':
        case '/':
          g_string_append_c (out, *p);
          break;
        case 'b':
          g_string_append_c (out, '\b');
          break;
        case 'f':
          g_string_append_c (out, '\f');
          break;
        case 'n':
          g_string_append_c (out, '\n');
          break;
        case 'r':
          g_string_append_c (out, '\r');
          break;
        case 't':
          g_string_append_c (out, '\t');
          break;
        case 'u':
          {
            char hex[5] = { 0 };
            guint64 cp;

            memcpy (hex, p + 1, 4);
            if (strlen (hex) != 4 || !g_ascii_string_to_unsigned (hex, 16, 0, 0xffff, &cp, NULL))
              return NULL;
            g_string_append_unichar (out, (gunichar) cp);
            p += 4;
          }
          break;
        default:
          return NULL;
        }
      p++;
    }
  if (p[1] != '\0')
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
test_random_round_trip (void)
{
  /* Characters from every UTF-8 length, with the ones that need escaping over-weighted. */
  static const gunichar specials[] = { '"', '\\', '/', '\n', '\r', '\t', 0x01, 0x1f, 0x7f,
                                       0x2028, 0x2029, 0xfeff, 0xfffd };

  for (guint round = 0; round < 2000; round++)
    {
      g_autoptr(GString) in = g_string_new (NULL);
      g_autofree char *out = NULL;
      g_autofree char *back = NULL;
      guint length = g_test_rand_int_range (0, 40);

      for (guint i = 0; i < length; i++)
        {
          gunichar c;

          switch (g_test_rand_int_range (0, 5))
            {
            case 0:
              c = specials[g_test_rand_int_range (0, G_N_ELEMENTS (specials))];
              break;
            case 1:
              c = g_test_rand_int_range (1, 0x80);
              break;
            case 2:
              c = g_test_rand_int_range (0x80, 0x800);
              break;
            case 3:
              c = g_test_rand_int_range (0x800, 0x10000);
              break;
            default:
              c = g_test_rand_int_range (0x10000, 0x110000);
              break;
            }
          if (c >= 0xd800 && c <= 0xdfff)
            c = 'x';
          g_string_append_unichar (in, c);
        }
      out = escaped (in->str);
      g_assert_true (g_utf8_validate (out, -1, NULL));
      back = unescape (out);
      g_assert_nonnull (back);
      g_assert_cmpstr (back, ==, in->str);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/ctl/json/escape", test_escape);
  g_test_add_func ("/ctl/json/control-characters", test_all_control_characters);
  g_test_add_func ("/ctl/json/document", test_document);
  g_test_add_func ("/ctl/json/scalar-document", test_scalar_document);
  g_test_add_func ("/ctl/json/random-round-trip", test_random_round_trip);

  return g_test_run ();
}
