/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-imap"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-imap-parser.h"

/* Printing responses (for tests and debugging) and the modified UTF-7 of mailbox names. */

static void
append_quoted (GString    *out,
               const char *s)
{
  if (s == NULL)
    {
      g_string_append (out, "NIL");
      return;
    }
  g_string_append_c (out, '"');
  for (; *s != '\0'; s++)
    {
      if (*s == '"' || *s == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *s);
    }
  g_string_append_c (out, '"');
}

static void
append_value (GString           *out,
              const LbImapValue *value)
{
  switch (value->kind)
    {
    case LB_IMAP_VALUE_NIL:
      g_string_append (out, "NIL");
      break;
    case LB_IMAP_VALUE_ATOM:
      g_string_append (out, value->str);
      break;
    case LB_IMAP_VALUE_NUMBER:
      g_string_append_printf (out, "%" G_GUINT64_FORMAT, value->number);
      break;
    case LB_IMAP_VALUE_STRING:
      if (memchr (value->str, '\0', value->len) != NULL)
        g_string_append_printf (out, "<%zu bytes with NUL>", value->len);
      else
        append_quoted (out, value->str);
      break;
    case LB_IMAP_VALUE_STREAMED:
      g_string_append_printf (out, "<streamed %" G_GUINT64_FORMAT ">", value->number);
      break;
    case LB_IMAP_VALUE_LIST:
      g_string_append_c (out, '(');
      for (guint i = 0; i < value->list->len; i++)
        {
          if (i > 0)
            g_string_append_c (out, ' ');
          append_value (out, g_ptr_array_index (value->list, i));
        }
      g_string_append_c (out, ')');
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
append_strings (GString   *out,
                GPtrArray *strings)
{
  g_string_append_c (out, '(');
  for (guint i = 0; strings != NULL && i < strings->len; i++)
    {
      if (i > 0)
        g_string_append_c (out, ' ');
      g_string_append (out, g_ptr_array_index (strings, i));
    }
  g_string_append_c (out, ')');
}

static void
append_set (GString         *out,
            const LbImapSet *set)
{
  g_autofree char *s = lb_imap_set_to_string (set);

  g_string_append (out, s);
}

static void
append_addresses (GString   *out,
                  GPtrArray *list)
{
  if (list == NULL)
    {
      g_string_append (out, "NIL");
      return;
    }
  g_string_append_c (out, '(');
  for (guint i = 0; i < list->len; i++)
    {
      LbImapAddress *a = g_ptr_array_index (list, i);

      g_string_append_c (out, '(');
      append_quoted (out, a->name);
      g_string_append_c (out, ' ');
      append_quoted (out, a->adl);
      g_string_append_c (out, ' ');
      append_quoted (out, a->mailbox);
      g_string_append_c (out, ' ');
      append_quoted (out, a->host);
      g_string_append_c (out, ')');
    }
  g_string_append_c (out, ')');
}

static void
append_envelope (GString              *out,
                 const LbImapEnvelope *e)
{
  g_string_append (out, "(date=");
  append_quoted (out, e->date);
  g_string_append (out, " subject=");
  append_quoted (out, e->subject);
  g_string_append (out, " from=");
  append_addresses (out, e->from);
  g_string_append (out, " sender=");
  append_addresses (out, e->sender);
  g_string_append (out, " reply-to=");
  append_addresses (out, e->reply_to);
  g_string_append (out, " to=");
  append_addresses (out, e->to);
  g_string_append (out, " cc=");
  append_addresses (out, e->cc);
  g_string_append (out, " bcc=");
  append_addresses (out, e->bcc);
  g_string_append (out, " in-reply-to=");
  append_quoted (out, e->in_reply_to);
  g_string_append (out, " message-id=");
  append_quoted (out, e->message_id);
  g_string_append_c (out, ')');
}

static void
append_params (GString   *out,
               GPtrArray *params)
{
  if (params == NULL)
    {
      g_string_append (out, "NIL");
      return;
    }
  g_string_append_c (out, '(');
  for (guint i = 0; i < params->len; i++)
    {
      if (i > 0)
        g_string_append_c (out, ' ');
      append_quoted (out, g_ptr_array_index (params, i));
    }
  g_string_append_c (out, ')');
}

static void
append_body (GString          *out,
             const LbImapBody *b)
{
  g_string_append_printf (out, "(%s/%s", b->type, b->subtype);
  if (b->children != NULL)
    for (guint i = 0; i < b->children->len; i++)
      {
        g_string_append_c (out, ' ');
        append_body (out, g_ptr_array_index (b->children, i));
      }
  g_string_append (out, " params=");
  append_params (out, b->params);
  if (b->children == NULL)
    {
      g_string_append (out, " id=");
      append_quoted (out, b->id);
      g_string_append (out, " desc=");
      append_quoted (out, b->description);
      g_string_append (out, " enc=");
      append_quoted (out, b->encoding);
      g_string_append_printf (out, " size=%" G_GUINT64_FORMAT " lines=%" G_GUINT64_FORMAT,
                              b->size, b->lines);
      g_string_append (out, " md5=");
      append_quoted (out, b->md5);
    }
  if (b->envelope != NULL)
    {
      g_string_append (out, " envelope=");
      append_envelope (out, b->envelope);
    }
  if (b->message != NULL)
    {
      g_string_append (out, " message=");
      append_body (out, b->message);
    }
  g_string_append (out, " disposition=");
  append_quoted (out, b->disposition);
  g_string_append (out, " ");
  append_params (out, b->disposition_params);
  g_string_append (out, " lang=");
  append_quoted (out, b->language);
  g_string_append (out, " loc=");
  append_quoted (out, b->location);
  g_string_append_c (out, ')');
}

static const char *
status_name (LbImapStatus status)
{
  switch (status)
    {
    case LB_IMAP_STATUS_OK:
      return "OK";
    case LB_IMAP_STATUS_NO:
      return "NO";
    case LB_IMAP_STATUS_BAD:
      return "BAD";
    case LB_IMAP_STATUS_PREAUTH:
      return "PREAUTH";
    case LB_IMAP_STATUS_BYE:
      return "BYE";
    case LB_IMAP_STATUS_NONE:
    default:
      return "NONE";
    }
}

/**
 * lb_imap_response_to_string:
 *
 * Returns: (transfer full): every field of the response in one canonical line, for tests
 *   and debug logs (never contains literal contents beyond what the fields hold)
 */
char *
lb_imap_response_to_string (const LbImapResponse *r)
{
  GString *out = g_string_new (NULL);

  switch (r->kind)
    {
    case LB_IMAP_RESPONSE_CONTINUATION:
      g_string_append (out, "+ ");
      append_quoted (out, r->text);
      return g_string_free (out, FALSE);
    case LB_IMAP_RESPONSE_TAGGED:
      g_string_append_printf (out, "tag=%s ", r->tag);
      break;
    case LB_IMAP_RESPONSE_UNTAGGED:
    default:
      g_string_append (out, "* ");
      break;
    }

  switch (r->data)
    {
    case LB_IMAP_DATA_STATUS:
      g_string_append (out, status_name (r->status));
      if (r->code.kind != LB_IMAP_CODE_NONE)
        {
          g_string_append_printf (out, " [%s", r->code.name);
          if (r->code.number != 0)
            g_string_append_printf (out, " n=%" G_GUINT64_FORMAT, r->code.number);
          if (r->code.atoms != NULL)
            {
              g_string_append_c (out, ' ');
              append_strings (out, r->code.atoms);
            }
          if (r->code.set != NULL)
            {
              g_string_append (out, " set=");
              append_set (out, r->code.set);
            }
          if (r->code.set2 != NULL)
            {
              g_string_append (out, " set2=");
              append_set (out, r->code.set2);
            }
          if (r->code.kind == LB_IMAP_CODE_OTHER && r->code.raw != NULL)
            {
              g_string_append (out, " raw=");
              append_quoted (out, r->code.raw);
            }
          g_string_append_c (out, ']');
        }
      g_string_append (out, " text=");
      append_quoted (out, r->text);
      break;
    case LB_IMAP_DATA_CAPABILITY:
      g_string_append (out, "CAPABILITY ");
      append_strings (out, r->atoms);
      break;
    case LB_IMAP_DATA_ENABLED:
      g_string_append (out, "ENABLED ");
      append_strings (out, r->atoms);
      break;
    case LB_IMAP_DATA_FLAGS:
      g_string_append (out, "FLAGS ");
      append_strings (out, r->atoms);
      break;
    case LB_IMAP_DATA_LIST:
    case LB_IMAP_DATA_LSUB:
      g_string_append (out, r->data == LB_IMAP_DATA_LIST ? "LIST " : "LSUB ");
      append_strings (out, r->list->flags);
      if (r->list->delimiter != '\0')
        g_string_append_printf (out, " delim=%c ", r->list->delimiter);
      else
        g_string_append (out, " delim=NIL ");
      append_quoted (out, r->list->mailbox);
      if (r->list->old_name != NULL)
        {
          g_string_append (out, " oldname=");
          append_quoted (out, r->list->old_name);
        }
      if (r->list->has_childinfo_subscribed)
        g_string_append (out, " childinfo=SUBSCRIBED");
      break;
    case LB_IMAP_DATA_MAILBOX_STATUS:
      g_string_append (out, "STATUS ");
      append_quoted (out, r->mailbox_status->mailbox);
      g_string_append_printf (out,
                              " present=%u messages=%" G_GUINT64_FORMAT " recent=%" G_GUINT64_FORMAT
                              " uidnext=%" G_GUINT64_FORMAT " uidvalidity=%" G_GUINT64_FORMAT
                              " unseen=%" G_GUINT64_FORMAT " deleted=%" G_GUINT64_FORMAT
                              " size=%" G_GUINT64_FORMAT " highestmodseq=%" G_GUINT64_FORMAT,
                              r->mailbox_status->present, r->mailbox_status->messages,
                              r->mailbox_status->recent, r->mailbox_status->uidnext,
                              r->mailbox_status->uidvalidity, r->mailbox_status->unseen,
                              r->mailbox_status->deleted, r->mailbox_status->size,
                              r->mailbox_status->highestmodseq);
      break;
    case LB_IMAP_DATA_SEARCH:
      g_string_append (out, "SEARCH");
      for (guint i = 0; i < r->numbers->len; i++)
        g_string_append_printf (out, " %u", g_array_index (r->numbers, guint32, i));
      if (r->search_modseq != 0)
        g_string_append_printf (out, " modseq=%" G_GUINT64_FORMAT, r->search_modseq);
      break;
    case LB_IMAP_DATA_ESEARCH:
      g_string_append (out, "ESEARCH tag=");
      append_quoted (out, r->esearch->tag);
      if (r->esearch->uid)
        g_string_append (out, " UID");
      if (r->esearch->has_min)
        g_string_append_printf (out, " min=%u", r->esearch->min);
      if (r->esearch->has_max)
        g_string_append_printf (out, " max=%u", r->esearch->max);
      if (r->esearch->has_count)
        g_string_append_printf (out, " count=%" G_GUINT64_FORMAT, r->esearch->count);
      if (r->esearch->has_modseq)
        g_string_append_printf (out, " modseq=%" G_GUINT64_FORMAT, r->esearch->modseq);
      if (r->esearch->all != NULL)
        {
          g_string_append (out, " all=");
          append_set (out, r->esearch->all);
        }
      break;
    case LB_IMAP_DATA_EXISTS:
      g_string_append_printf (out, "%u EXISTS", r->number);
      break;
    case LB_IMAP_DATA_RECENT:
      g_string_append_printf (out, "%u RECENT", r->number);
      break;
    case LB_IMAP_DATA_EXPUNGE:
      g_string_append_printf (out, "%u EXPUNGE", r->number);
      break;
    case LB_IMAP_DATA_FETCH:
      {
        LbImapFetch *f = r->fetch;

        g_string_append_printf (out, "%u FETCH", r->number);
        if (f->present & LB_IMAP_FETCH_UID)
          g_string_append_printf (out, " uid=%u", f->uid);
        if (f->present & LB_IMAP_FETCH_FLAGS)
          {
            g_string_append (out, " flags=");
            append_strings (out, f->flags);
          }
        if (f->present & LB_IMAP_FETCH_INTERNALDATE)
          {
            g_string_append (out, " internaldate=");
            append_quoted (out, f->internaldate);
          }
        if (f->present & LB_IMAP_FETCH_SIZE)
          g_string_append_printf (out, " size=%" G_GUINT64_FORMAT, f->size);
        if (f->present & LB_IMAP_FETCH_MODSEQ)
          g_string_append_printf (out, " modseq=%" G_GUINT64_FORMAT, f->modseq);
        if (f->present & LB_IMAP_FETCH_PREVIEW)
          {
            g_string_append (out, " preview=");
            append_quoted (out, f->preview);
          }
        if (f->envelope != NULL)
          {
            g_string_append (out, " envelope=");
            append_envelope (out, f->envelope);
          }
        if (f->body != NULL)
          {
            g_string_append (out, " body=");
            append_body (out, f->body);
          }
        for (guint i = 0; f->sections != NULL && i < f->sections->len; i++)
          {
            LbImapSection *s = g_ptr_array_index (f->sections, i);

            g_string_append_printf (out, " %s", s->name);
            if (s->has_origin)
              g_string_append_printf (out, "<%" G_GUINT64_FORMAT ">", s->origin);
            g_string_append_c (out, '=');
            append_value (out, s->value);
          }
        for (guint i = 0; f->other != NULL && i + 1 < f->other->len; i += 2)
          {
            g_string_append_c (out, ' ');
            append_value (out, g_ptr_array_index (f->other, i));
            g_string_append_c (out, '=');
            append_value (out, g_ptr_array_index (f->other, i + 1));
          }
        break;
      }
    case LB_IMAP_DATA_VANISHED:
      g_string_append (out, r->vanished_earlier ? "VANISHED (EARLIER) " : "VANISHED ");
      append_set (out, r->vanished);
      break;
    case LB_IMAP_DATA_NAMESPACE:
      g_string_append (out, "NAMESPACE");
      for (guint i = 0; i < 3; i++)
        {
          GPtrArray *ns = r->namespaces[i];

          if (ns == NULL)
            {
              g_string_append (out, " NIL");
              continue;
            }
          g_string_append (out, " (");
          for (guint j = 0; j < ns->len; j++)
            {
              LbImapNamespaceEntry *e = g_ptr_array_index (ns, j);

              g_string_append_c (out, '(');
              append_quoted (out, e->prefix);
              if (e->delimiter != '\0')
                g_string_append_printf (out, " %c)", e->delimiter);
              else
                g_string_append (out, " NIL)");
            }
          g_string_append_c (out, ')');
        }
      break;
    case LB_IMAP_DATA_ID:
      g_string_append (out, "ID (");
      for (guint i = 0; i < r->id->len; i++)
        {
          if (i > 0)
            g_string_append_c (out, ' ');
          append_quoted (out, g_ptr_array_index (r->id, i));
        }
      g_string_append_c (out, ')');
      break;
    case LB_IMAP_DATA_OTHER:
    default:
      g_string_append_printf (out, "OTHER %s", r->keyword);
      if (r->number != 0)
        g_string_append_printf (out, " n=%u", r->number);
      g_string_append_c (out, ' ');
      append_value (out, r->other);
      break;
    }
  return g_string_free (out, FALSE);
}

/* Modified UTF-7 (RFC 3501 §5.1.3): printable ASCII stands for itself, "&" is "&-", and
 * anything else is UTF-16 in base64 with "," for "/", between "&" and "-". */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value (char ch)
{
  const char *p = ch != '\0' ? strchr (b64, ch) : NULL;

  return p != NULL ? (int) (p - b64) : -1;
}

/**
 * lb_imap_utf7_decode:
 *
 * Returns: (transfer full): the mailbox name in UTF-8, or %NULL with @error set when the
 *   name is not valid modified UTF-7
 */
char *
lb_imap_utf7_decode (const char  *name,
                     gsize        len,
                     GError     **error)
{
  g_autoptr(GString) out = g_string_new (NULL);
  gsize i = 0;

  while (i < len)
    {
      guchar ch = name[i];

      if (ch < 0x20 || ch > 0x7e)
        goto invalid;
      if (ch != '&')
        {
          g_string_append_c (out, (char) ch);
          i++;
          continue;
        }

      i++;
      if (i < len && name[i] == '-')
        {
          g_string_append_c (out, '&');
          i++;
          continue;
        }

      {
        guint32 bits = 0;
        guint nbits = 0;
        gunichar2 high = 0;
        gboolean any = FALSE;

        while (i < len && name[i] != '-')
          {
            int v = b64_value (name[i]);

            if (v < 0)
              goto invalid;
            bits = (bits << 6) | (guint32) v;
            nbits += 6;
            i++;
            if (nbits >= 16)
              {
                gunichar2 unit = (gunichar2) ((bits >> (nbits - 16)) & 0xffff);

                nbits -= 16;
                bits &= (1u << nbits) - 1;
                any = TRUE;
                if (unit >= 0xd800 && unit <= 0xdbff)
                  {
                    if (high != 0)
                      goto invalid;
                    high = unit;
                  }
                else if (unit >= 0xdc00 && unit <= 0xdfff)
                  {
                    if (high == 0)
                      goto invalid;
                    g_string_append_unichar (out, 0x10000 + ((high - 0xd800) << 10) +
                                                    (unit - 0xdc00));
                    high = 0;
                  }
                else
                  {
                    /* Printable ASCII must not be encoded (RFC 3501 §5.1.3). */
                    if (high != 0 || (unit >= 0x20 && unit <= 0x7e))
                      goto invalid;
                    g_string_append_unichar (out, unit);
                  }
              }
          }
        if (i >= len || !any || high != 0 || nbits >= 6 || bits != 0)
          goto invalid;
        i++; /* "-" */
      }
    }
  return g_string_free (g_steal_pointer (&out), FALSE);

invalid:
  {
    g_autofree char *cut = g_strndup (name, MIN (len, 200));
    g_autofree char *shown = g_utf8_make_valid (cut, -1);

    g_set_error (error, G_CONVERT_ERROR, G_CONVERT_ERROR_ILLEGAL_SEQUENCE,
                 _("The mailbox name “%s” is not valid modified UTF-7"), shown);
    return NULL;
  }
}

/**
 * lb_imap_utf7_encode:
 * @utf8: a valid UTF-8 mailbox name
 *
 * Returns: (transfer full): the name in modified UTF-7
 */
char *
lb_imap_utf7_encode (const char *utf8)
{
  GString *out = g_string_new (NULL);
  const char *p = utf8;

  g_return_val_if_fail (g_utf8_validate (utf8, -1, NULL), NULL);

  while (*p != '\0')
    {
      gunichar ch = g_utf8_get_char (p);

      if (ch >= 0x20 && ch <= 0x7e)
        {
          g_string_append (out, ch == '&' ? "&-" : (char[]) { (char) ch, '\0' });
          p = g_utf8_next_char (p);
          continue;
        }

      {
        guint32 bits = 0;
        guint nbits = 0;

        g_string_append_c (out, '&');
        while (*p != '\0' && ((ch = g_utf8_get_char (p)) < 0x20 || ch > 0x7e))
          {
            gunichar2 units[2];
            guint n = 0;

            if (ch >= 0x10000)
              {
                units[n++] = (gunichar2) (0xd800 + ((ch - 0x10000) >> 10));
                units[n++] = (gunichar2) (0xdc00 + ((ch - 0x10000) & 0x3ff));
              }
            else
              units[n++] = (gunichar2) ch;

            for (guint k = 0; k < n; k++)
              {
                bits = (bits << 16) | units[k];
                nbits += 16;
                while (nbits >= 6)
                  {
                    nbits -= 6;
                    g_string_append_c (out, b64[(bits >> nbits) & 0x3f]);
                  }
                bits &= (1u << nbits) - 1;
              }
            p = g_utf8_next_char (p);
          }
        if (nbits > 0)
          g_string_append_c (out, b64[(bits << (6 - nbits)) & 0x3f]);
        g_string_append_c (out, '-');
      }
    }
  return g_string_free (out, FALSE);
}
