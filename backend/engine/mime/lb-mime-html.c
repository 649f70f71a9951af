/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lb-mime-html.h"

/*
 * HTML reduced to text for previews, the search index and quoting: one pass, no tree,
 * no allocation per tag. Malformed markup degrades the way browsers degrade (an
 * unterminated comment or <script> swallows the rest), never into a crash or a hang:
 * every scan moves forward, and a search that fails (no "</script" after here, no
 * closing quote) is remembered, so no byte is looked at more than a bounded number of
 * times.
 */

typedef struct
{
  const char *name;
  gunichar code;
} Entity;

/* Named character references (HTML Living Standard §13.5): Latin-1 and the common
 * typographic ones, sorted by strcmp() for bsearch(). */
static const Entity entities[] = {
  { "AElig", 0x00C6 },
  { "Aacute", 0x00C1 },
  { "Acirc", 0x00C2 },
  { "Agrave", 0x00C0 },
  { "Aring", 0x00C5 },
  { "Atilde", 0x00C3 },
  { "Auml", 0x00C4 },
  { "Ccedil", 0x00C7 },
  { "Dagger", 0x2021 },
  { "ETH", 0x00D0 },
  { "Eacute", 0x00C9 },
  { "Ecirc", 0x00CA },
  { "Egrave", 0x00C8 },
  { "Euml", 0x00CB },
  { "Iacute", 0x00CD },
  { "Icirc", 0x00CE },
  { "Igrave", 0x00CC },
  { "Iuml", 0x00CF },
  { "Ntilde", 0x00D1 },
  { "OElig", 0x0152 },
  { "Oacute", 0x00D3 },
  { "Ocirc", 0x00D4 },
  { "Ograve", 0x00D2 },
  { "Oslash", 0x00D8 },
  { "Otilde", 0x00D5 },
  { "Ouml", 0x00D6 },
  { "Prime", 0x2033 },
  { "Scaron", 0x0160 },
  { "THORN", 0x00DE },
  { "Uacute", 0x00DA },
  { "Ucirc", 0x00DB },
  { "Ugrave", 0x00D9 },
  { "Uuml", 0x00DC },
  { "Yacute", 0x00DD },
  { "Yuml", 0x0178 },
  { "aacute", 0x00E1 },
  { "acirc", 0x00E2 },
  { "acute", 0x00B4 },
  { "aelig", 0x00E6 },
  { "agrave", 0x00E0 },
  { "amp", 0x0026 },
  { "apos", 0x0027 },
  { "aring", 0x00E5 },
  { "atilde", 0x00E3 },
  { "auml", 0x00E4 },
  { "bdquo", 0x201E },
  { "brvbar", 0x00A6 },
  { "bull", 0x2022 },
  { "ccedil", 0x00E7 },
  { "cedil", 0x00B8 },
  { "cent", 0x00A2 },
  { "circ", 0x02C6 },
  { "copy", 0x00A9 },
  { "curren", 0x00A4 },
  { "dagger", 0x2020 },
  { "darr", 0x2193 },
  { "deg", 0x00B0 },
  { "divide", 0x00F7 },
  { "eacute", 0x00E9 },
  { "ecirc", 0x00EA },
  { "egrave", 0x00E8 },
  { "emsp", 0x2003 },
  { "ensp", 0x2002 },
  { "eth", 0x00F0 },
  { "euml", 0x00EB },
  { "euro", 0x20AC },
  { "fnof", 0x0192 },
  { "frac12", 0x00BD },
  { "frac14", 0x00BC },
  { "frac34", 0x00BE },
  { "ge", 0x2265 },
  { "gt", 0x003E },
  { "harr", 0x2194 },
  { "hearts", 0x2665 },
  { "hellip", 0x2026 },
  { "iacute", 0x00ED },
  { "icirc", 0x00EE },
  { "iexcl", 0x00A1 },
  { "igrave", 0x00EC },
  { "infin", 0x221E },
  { "iquest", 0x00BF },
  { "iuml", 0x00EF },
  { "laquo", 0x00AB },
  { "larr", 0x2190 },
  { "ldquo", 0x201C },
  { "le", 0x2264 },
  { "lsaquo", 0x2039 },
  { "lsquo", 0x2018 },
  { "lt", 0x003C },
  { "macr", 0x00AF },
  { "mdash", 0x2014 },
  { "micro", 0x00B5 },
  { "middot", 0x00B7 },
  { "minus", 0x2212 },
  { "nbsp", 0x00A0 },
  { "ndash", 0x2013 },
  { "ne", 0x2260 },
  { "not", 0x00AC },
  { "ntilde", 0x00F1 },
  { "oacute", 0x00F3 },
  { "ocirc", 0x00F4 },
  { "oelig", 0x0153 },
  { "ograve", 0x00F2 },
  { "ordf", 0x00AA },
  { "ordm", 0x00BA },
  { "oslash", 0x00F8 },
  { "otilde", 0x00F5 },
  { "ouml", 0x00F6 },
  { "para", 0x00B6 },
  { "permil", 0x2030 },
  { "plusmn", 0x00B1 },
  { "pound", 0x00A3 },
  { "prime", 0x2032 },
  { "quot", 0x0022 },
  { "raquo", 0x00BB },
  { "rarr", 0x2192 },
  { "rdquo", 0x201D },
  { "reg", 0x00AE },
  { "rsaquo", 0x203A },
  { "rsquo", 0x2019 },
  { "sbquo", 0x201A },
  { "scaron", 0x0161 },
  { "sect", 0x00A7 },
  { "shy", 0x00AD },
  { "sup1", 0x00B9 },
  { "sup2", 0x00B2 },
  { "sup3", 0x00B3 },
  { "szlig", 0x00DF },
  { "thinsp", 0x2009 },
  { "thorn", 0x00FE },
  { "tilde", 0x02DC },
  { "times", 0x00D7 },
  { "trade", 0x2122 },
  { "uacute", 0x00FA },
  { "uarr", 0x2191 },
  { "ucirc", 0x00FB },
  { "ugrave", 0x00F9 },
  { "uml", 0x00A8 },
  { "uuml", 0x00FC },
  { "yacute", 0x00FD },
  { "yen", 0x00A5 },
  { "yuml", 0x00FF },
  { "zwj", 0x200D },
  { "zwnj", 0x200C },
};

/* Numeric references to 0x80–0x9F mean windows-1252 (HTML §13.2.5.80). */
static const guint16 windows_1252[32] = {
  0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
  0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
};

typedef enum
{
  SKIP_SCRIPT,
  SKIP_STYLE,
  SKIP_HEAD,
  SKIP_TITLE,
  SKIP_TEMPLATE,
  N_SKIP
} SkipKind;

static const char *skip_names[N_SKIP] = { "script", "style", "head", "title", "template" };

typedef struct
{
  const char *end;
  GString *out;
  gboolean pending_space;
  guint pending_breaks;
  guint pre_depth;
  gboolean closing_absent[N_SKIP];
  gboolean quote_absent[2];
} Reducer;

static gboolean
is_space (char c)
{
  return (guchar) c <= ' ';
}

static void
flush_pending (Reducer *r)
{
  if (r->out->len > 0)
    {
      if (r->pending_breaks > 0)
        for (guint i = 0; i < r->pending_breaks; i++)
          g_string_append_c (r->out, '\n');
      else if (r->pending_space)
        g_string_append_c (r->out, ' ');
    }
  r->pending_breaks = 0;
  r->pending_space = FALSE;
}

static void
emit_text (Reducer    *r,
           const char *text,
           gsize       len)
{
  flush_pending (r);
  g_string_append_len (r->out, text, len);
}

static void
emit_space (Reducer *r)
{
  if (r->pre_depth > 0)
    emit_text (r, " ", 1);
  else if (r->pending_breaks == 0)
    r->pending_space = TRUE;
}

/* A line break; @at_least 2 leaves an empty line (paragraphs). Breaks never start the
 * text, and never pile up beyond one empty line. */
static void
emit_break (Reducer *r,
            guint    at_least)
{
  r->pending_space = FALSE;
  r->pending_breaks = MAX (r->pending_breaks, at_least);
}

static void
emit_char (Reducer *r,
           gunichar c)
{
  char buf[6];
  int n;

  if (c == 0xA0 || g_unichar_isspace (c))
    {
      emit_space (r);
      return;
    }
  if (c == 0xAD || c == 0x200B || c == 0x200C || c == 0x200D || c == 0xFEFF)
    return; /* soft hyphen and zero-width characters: nothing to read or index */
  n = g_unichar_to_utf8 (c, buf);
  emit_text (r, buf, n);
}

static int
compare_entity (const void *key,
                const void *element)
{
  return strcmp (key, ((const Entity *) element)->name);
}

/* @p is at '&'. Returns where the text goes on. */
static const char *
decode_entity (Reducer    *r,
               const char *p)
{
  const char *q = p + 1;

  if (q < r->end && *q == '#')
    {
      gboolean hex = FALSE;
      guint32 value = 0;
      gboolean overflow = FALSE;
      const char *digits;

      q++;
      if (q < r->end && (*q == 'x' || *q == 'X'))
        {
          hex = TRUE;
          q++;
        }
      digits = q;
      while (q < r->end && (hex ? g_ascii_isxdigit (*q) : g_ascii_isdigit (*q)))
        {
          value = value * (hex ? 16 : 10) + (hex ? g_ascii_xdigit_value (*q) : *q - '0');
          if (value > 0x10FFFF)
            {
              overflow = TRUE;
              value = 0x10FFFF;
            }
          q++;
        }
      if (q == digits)
        {
          emit_text (r, "&", 1);
          return p + 1;
        }
      if (q < r->end && *q == ';')
        q++;
      if (overflow || value == 0 || (value >= 0xD800 && value <= 0xDFFF))
        value = 0xFFFD;
      else if (value >= 0x80 && value <= 0x9F)
        value = windows_1252[value - 0x80];
      emit_char (r, value);
      return q;
    }
  else
    {
      char name[16];
      gsize n = 0;
      const Entity *entity;

      while (q < r->end && g_ascii_isalnum (*q) && n < sizeof name - 1)
        name[n++] = *q++;
      name[n] = '\0';
      entity = n > 0 && (q >= r->end || !g_ascii_isalnum (*q))
                 ? bsearch (name, entities, G_N_ELEMENTS (entities), sizeof entities[0],
                            compare_entity)
                 : NULL;
      if (entity == NULL)
        {
          emit_text (r, "&", 1);
          return p + 1;
        }
      if (q < r->end && *q == ';')
        q++;
      emit_char (r, entity->code);
      return q;
    }
}

static const char *
find_bytes (const char *from,
            const char *end,
            const char *needle)
{
  gsize n = strlen (needle);

  for (const char *p = from; p + n <= end; p++)
    {
      p = memchr (p, needle[0], end - p);
      if (p == NULL || p + n > end)
        return NULL;
      if (memcmp (p, needle, n) == 0)
        return p;
    }
  return NULL;
}

/* Where "</name" starts (any case), or NULL. */
static const char *
find_closing (const char *from,
              const char *end,
              const char *name)
{
  gsize n = strlen (name);

  for (const char *p = from; p < end; p++)
    {
      p = memchr (p, '<', end - p);
      if (p == NULL)
        return NULL;
      if (p + 2 + n <= end && p[1] == '/' && g_ascii_strncasecmp (p + 2, name, n) == 0 &&
          (p + 2 + n == end || !g_ascii_isalnum (p[2 + n])))
        return p;
    }
  return NULL;
}

/* The '>' that ends a tag whose name ends at @p: quotes after '=' hide '>', unless the
 * quote never closes. */
static const char *
find_tag_end (Reducer    *r,
              const char *p)
{
  char last = '\0';

  for (; p < r->end; p++)
    {
      if (*p == '>')
        return p;
      if ((*p == '"' || *p == '\'') && last == '=')
        {
          guint which = *p == '"' ? 0 : 1;
          const char *close = r->quote_absent[which] ? NULL : memchr (p + 1, *p, r->end - p - 1);

          if (close != NULL)
            {
              p = close;
              last = *p;
              continue;
            }
          r->quote_absent[which] = TRUE;
        }
      if (!is_space (*p))
        last = *p;
    }
  return NULL;
}

static gboolean
name_is (const char *name,
         const char *const *set)
{
  for (; *set != NULL; set++)
    if (strcmp (name, *set) == 0)
      return TRUE;
  return FALSE;
}

static void
tag_effect (Reducer    *r,
            const char *name,
            gboolean    closing)
{
  static const char *const paragraphs[] = { "p", "h1", "h2", "h3", "h4", "h5", "h6",
                                            "blockquote", "pre", "hr", "table", NULL };
  static const char *const lines[] = { "div", "tr", "li", "ul", "ol", "dl", "dt", "dd",
                                       "section", "article", "header", "footer", "nav",
                                       "aside", "main", "address", "figure", "figcaption",
                                       "form", "fieldset", "caption", "center", "body",
                                       "html", NULL };
  static const char *const cells[] = { "td", "th", NULL };

  if (strcmp (name, "br") == 0)
    {
      if (r->out->len > 0)
        r->pending_breaks = MIN (r->pending_breaks + 1, 2);
      r->pending_space = FALSE;
    }
  else if (name_is (name, paragraphs))
    emit_break (r, 2);
  else if (name_is (name, lines))
    emit_break (r, 1);
  else if (name_is (name, cells))
    emit_space (r);
  if (strcmp (name, "pre") == 0)
    {
      if (!closing)
        r->pre_depth++;
      else if (r->pre_depth > 0)
        r->pre_depth--;
    }
}

/* @p is at '<'. Returns where the text goes on. */
static const char *
handle_markup (Reducer    *r,
               const char *p)
{
  const char *q = p + 1;
  const char *tag_end;
  gboolean closing = FALSE;
  char name[16];
  gsize n = 0;

  if (q < r->end && *q == '!')
    {
      const char *close;

      if (r->end - q >= 3 && q[1] == '-' && q[2] == '-')
        {
          close = find_bytes (q + 3, r->end, "-->");
          return close != NULL ? close + 3 : r->end;
        }
      close = memchr (q, '>', r->end - q);
      return close != NULL ? close + 1 : r->end;
    }
  if (q < r->end && *q == '?')
    {
      const char *close = memchr (q, '>', r->end - q);
      return close != NULL ? close + 1 : r->end;
    }
  if (q < r->end && *q == '/')
    {
      closing = TRUE;
      q++;
    }
  if (q >= r->end || !g_ascii_isalpha (*q))
    {
      /* "a < b", "</ >": text (a bare "</" is dropped by browsers; keep it simple). */
      emit_text (r, "<", 1);
      return p + 1;
    }
  while (q < r->end && (g_ascii_isalnum (*q) || *q == '-' || *q == ':'))
    {
      if (n < sizeof name - 1)
        name[n++] = g_ascii_tolower (*q);
      else
        n = sizeof name; /* too long for any name we act on */
      q++;
    }
  name[MIN (n, sizeof name - 1)] = '\0';
  if (n == sizeof name)
    name[0] = '\0';

  tag_end = find_tag_end (r, q);
  if (tag_end == NULL)
    return r->end;
  q = tag_end + 1;

  tag_effect (r, name, closing);
  if (!closing && tag_end[-1] != '/')
    {
      for (guint k = 0; k < N_SKIP; k++)
        {
          const char *close;

          if (strcmp (name, skip_names[k]) != 0)
            continue;
          close = r->closing_absent[k] ? NULL : find_closing (q, r->end, skip_names[k]);
          if (close != NULL)
            return close;
          r->closing_absent[k] = TRUE;
          /* A <head> never closed is a sloppy page, not one without a body. */
          return k == SKIP_HEAD ? q : r->end;
        }
    }
  return q;
}

/**
 * lb_mime_html_to_text:
 * @html: HTML, UTF-8 (invalid bytes end up as U+FFFD)
 * @len: its length, or -1 when nul-terminated
 *
 * Text as a reader would see it: no <script>, <style>, <head>, <title> or comments;
 * line breaks for <br> and the ends of blocks (paragraphs and headings leave an empty
 * line); character references decoded; other whitespace collapsed to single spaces
 * (kept inside <pre>); no whitespace before the first or after the last text, except
 * what a <pre> keeps. Linear in @len.
 *
 * Returns: (transfer full): valid UTF-8
 */
char *
lb_mime_html_to_text (const char *html,
                      gssize      len)
{
  Reducer r = { 0 };
  const char *p = html;
  g_autoptr(GString) out = NULL;

  g_return_val_if_fail (html != NULL || len == 0, NULL);

  if (html == NULL)
    return g_strdup ("");
  if (len < 0)
    len = strlen (html);
  out = g_string_sized_new (len / 2 + 1);
  r.out = out;
  r.end = html + len;

  while (p < r.end)
    {
      if (*p == '<')
        p = handle_markup (&r, p);
      else if (*p == '&')
        p = decode_entity (&r, p);
      else if (is_space (*p))
        {
          if (r.pre_depth > 0 && *p == '\n')
            {
              if (r.out->len > 0)
                r.pending_breaks = MIN (r.pending_breaks + 1, 2);
              r.pending_space = FALSE;
            }
          else if (*p == ' ' || *p == '\t' || r.pre_depth == 0)
            emit_space (&r);
          p++;
        }
      else
        {
          const char *start = p;

          while (p < r.end && *p != '<' && *p != '&' && !is_space (*p))
            p++;
          emit_text (&r, start, p - start);
        }
    }
  return g_utf8_make_valid (out->str, out->len);
}
