/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include "lbctl-json.h"

#define MAX_DEPTH 32

typedef enum
{
  SCOPE_ARRAY,
  SCOPE_OBJECT,
} Scope;

struct _LbctlJson
{
  GString *out;
  guint depth;
  Scope scopes[MAX_DEPTH];
  gboolean has_members[MAX_DEPTH];
  gboolean named;  /* a name was written, its value comes next */
};

LbctlJson *
lbctl_json_new (void)
{
  LbctlJson *json = g_new0 (LbctlJson, 1);

  json->out = g_string_new (NULL);
  return json;
}

void
lbctl_json_free (LbctlJson *json)
{
  if (json == NULL)
    return;
  g_string_free (json->out, TRUE);
  g_free (json);
}

/**
 * lbctl_json_free_to_string:
 *
 * Returns: (transfer full): the document written, which must be complete
 */
char *
lbctl_json_free_to_string (LbctlJson *json)
{
  char *text;

  g_return_val_if_fail (json != NULL, NULL);
  g_warn_if_fail (json->depth == 0 && !json->named);

  text = g_string_free (json->out, FALSE);
  g_free (json);
  return text;
}

/* RFC 8259 §7: '"', '\\' and U+0000..U+001F must be escaped; the short forms where the
 * RFC has them. */
void
lbctl_json_escape (GString    *out,
                   const char *value)
{
  g_autofree char *valid = NULL;

  if (!g_utf8_validate (value, -1, NULL))
    value = valid = g_utf8_make_valid (value, -1);

  g_string_append_c (out, '"');
  for (const char *p = value; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u%04x", c);
          /* U+2028 and U+2029 (E2 80 A8/A9) are valid JSON but end lines in JavaScript. */
          else if (c == 0xe2 && (guchar) p[1] == 0x80 &&
                   ((guchar) p[2] == 0xa8 || (guchar) p[2] == 0xa9))
            {
              g_string_append_printf (out, "\\u%04x", (guchar) p[2] == 0xa8 ? 0x2028 : 0x2029);
              p += 2;
            }
          else
            g_string_append_c (out, (char) c);
          break;
        }
    }
  g_string_append_c (out, '"');
}

/* Before a value: the separator from the previous one, unless a name was just written. */
static gboolean
before_value (LbctlJson *json)
{
  if (json->named)
    {
      json->named = FALSE;
      return TRUE;
    }
  if (json->depth == 0)
    {
      g_return_val_if_fail (json->out->len == 0, FALSE);
      return TRUE;
    }
  g_return_val_if_fail (json->scopes[json->depth - 1] == SCOPE_ARRAY, FALSE);
  if (json->has_members[json->depth - 1])
    g_string_append (json->out, ", ");
  json->has_members[json->depth - 1] = TRUE;
  return TRUE;
}

static void
begin (LbctlJson *json,
       Scope      scope)
{
  g_return_if_fail (json != NULL);
  g_return_if_fail (json->depth < MAX_DEPTH);

  if (!before_value (json))
    return;
  g_string_append_c (json->out, scope == SCOPE_OBJECT ? '{' : '[');
  json->scopes[json->depth] = scope;
  json->has_members[json->depth] = FALSE;
  json->depth++;
}

static void
end (LbctlJson *json,
     Scope      scope)
{
  g_return_if_fail (json != NULL);
  g_return_if_fail (json->depth > 0 && json->scopes[json->depth - 1] == scope);
  g_return_if_fail (!json->named);

  json->depth--;
  g_string_append_c (json->out, scope == SCOPE_OBJECT ? '}' : ']');
}

void
lbctl_json_begin_object (LbctlJson *json)
{
  begin (json, SCOPE_OBJECT);
}

void
lbctl_json_end_object (LbctlJson *json)
{
  end (json, SCOPE_OBJECT);
}

void
lbctl_json_begin_array (LbctlJson *json)
{
  begin (json, SCOPE_ARRAY);
}

void
lbctl_json_end_array (LbctlJson *json)
{
  end (json, SCOPE_ARRAY);
}

void
lbctl_json_name (LbctlJson  *json,
                 const char *name)
{
  g_return_if_fail (json != NULL && name != NULL);
  g_return_if_fail (json->depth > 0 && json->scopes[json->depth - 1] == SCOPE_OBJECT);
  g_return_if_fail (!json->named);

  if (json->has_members[json->depth - 1])
    g_string_append (json->out, ", ");
  json->has_members[json->depth - 1] = TRUE;
  lbctl_json_escape (json->out, name);
  g_string_append (json->out, ": ");
  json->named = TRUE;
}

void
lbctl_json_string (LbctlJson  *json,
                   const char *value)
{
  g_return_if_fail (json != NULL);

  if (!before_value (json))
    return;
  if (value == NULL)
    g_string_append (json->out, "null");
  else
    lbctl_json_escape (json->out, value);
}

void
lbctl_json_int (LbctlJson *json,
                gint64     value)
{
  g_return_if_fail (json != NULL);

  if (before_value (json))
    g_string_append_printf (json->out, "%" G_GINT64_FORMAT, value);
}

void
lbctl_json_boolean (LbctlJson *json,
                    gboolean   value)
{
  g_return_if_fail (json != NULL);

  if (before_value (json))
    g_string_append (json->out, value ? "true" : "false");
}

void
lbctl_json_null (LbctlJson *json)
{
  g_return_if_fail (json != NULL);

  if (before_value (json))
    g_string_append (json->out, "null");
}

void
lbctl_json_member_string (LbctlJson  *json,
                          const char *name,
                          const char *value)
{
  lbctl_json_name (json, name);
  lbctl_json_string (json, value);
}

void
lbctl_json_member_int (LbctlJson  *json,
                       const char *name,
                       gint64      value)
{
  lbctl_json_name (json, name);
  lbctl_json_int (json, value);
}

void
lbctl_json_member_boolean (LbctlJson  *json,
                           const char *name,
                           gboolean    value)
{
  lbctl_json_name (json, name);
  lbctl_json_boolean (json, value);
}
