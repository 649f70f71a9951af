/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-outbox"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-outbox-prepare.h"

/*
 * What the outbox checks and adds before it queues a submission, as pure functions.
 *
 * A submission keeps its bytes exactly as given; only `Date:` and `Message-ID:` go in
 * front of them when missing, as a submission service does (RFC 6409 §8.2, §8.3). Its
 * header must be one: field lines (`name:` with a name of printable ASCII, RFC 5322
 * §2.2) and their continuations, up to the first empty line.
 */

G_DEFINE_QUARK (lb-outbox-error-quark, lb_outbox_error)

void
lb_outbox_prepared_free (LbOutboxPrepared *prepared)
{
  if (prepared == NULL)
    return;
  g_free (prepared->prefix);
  g_free (prepared->subject);
  g_free (prepared->message_id);
  g_free (prepared);
}

static gboolean
is_field_name_char (guchar c)
{
  /* RFC 5322 §3.6.8: printable US-ASCII except colon. */
  return c >= 33 && c <= 126 && c != ':';
}

/* Walks the header section: every line a field or a continuation, no NUL. Sets which
 * fields are there and where the section ends. */
static gboolean
scan_header (const guint8  *data,
             gsize          len,
             gsize         *header_size,
             gboolean      *crlf,
             gboolean      *has_date,
             gboolean      *has_message_id,
             GError       **error)
{
  gsize pos = 0;
  guint line_no = 0;

  *has_date = FALSE;
  *has_message_id = FALSE;
  *crlf = FALSE;
  while (pos < len)
    {
      const guint8 *nl = memchr (data + pos, '\n', len - pos);
      gsize end = nl != NULL ? (gsize) (nl - data) : len;
      gsize next = nl != NULL ? end + 1 : len;
      gsize content = end;
      gsize name_len = 0;

      line_no++;
      if (content > pos && data[content - 1] == '\r')
        content--;
      if (line_no == 1)
        *crlf = content < end;
      if (content == pos)
        {
          if (line_no == 1)
            {
              g_set_error_literal (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                                   _("The message has no header: it begins with an empty "
                                     "line"));
              return FALSE;
            }
          *header_size = next;
          return TRUE;
        }
      if (next > LB_OUTBOX_MAX_HEADER)
        {
          g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                       _("The message’s header is larger than %u KiB"),
                       (guint) (LB_OUTBOX_MAX_HEADER / 1024));
          return FALSE;
        }
      if (memchr (data + pos, '\0', content - pos) != NULL)
        {
          g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                       _("Line %u of the message’s header contains a NUL byte"), line_no);
          return FALSE;
        }
      if (data[pos] == ' ' || data[pos] == '\t')
        {
          if (line_no == 1)
            {
              g_set_error_literal (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                                   _("The message’s header begins with a continuation "
                                     "line"));
              return FALSE;
            }
          pos = next;
          continue;
        }
      while (pos + name_len < content && is_field_name_char (data[pos + name_len]))
        name_len++;
      /* Obsolete syntax allows white space before the colon (RFC 5322 §4.5). */
      {
        gsize colon = pos + name_len;

        while (colon < content && (data[colon] == ' ' || data[colon] == '\t'))
          colon++;
        if (name_len == 0 || colon >= content || data[colon] != ':')
          {
            g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                         _("Line %u of the message’s header is not a header field "
                           "(“Name: value”)"), line_no);
            return FALSE;
          }
      }
      if (name_len == 4 && g_ascii_strncasecmp ((const char *) data + pos, "Date", 4) == 0)
        *has_date = TRUE;
      else if (name_len == 10 &&
               g_ascii_strncasecmp ((const char *) data + pos, "Message-ID", 10) == 0)
        *has_message_id = TRUE;
      pos = next;
    }
  /* A message without a body: all header. */
  *header_size = len;
  return TRUE;
}

static gboolean
is_domain (const char *domain)
{
  if (domain == NULL || domain[0] == '\0' || domain[0] == '.' || domain[0] == '-' ||
      strlen (domain) > 253)
    return FALSE;
  for (const char *p = domain; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

/**
 * lb_outbox_message_id_domain:
 * @sender: (nullable): the envelope sender
 *
 * Returns: (transfer full): the domain for a new Message-ID: the sender's when it is a
 *   plain host name, else @host_name's, else "localhost"
 */
char *
lb_outbox_message_id_domain (const char *sender,
                             const char *host_name)
{
  const char *at = sender != NULL ? strrchr (sender, '@') : NULL;

  if (at != NULL && is_domain (at + 1))
    return g_ascii_strdown (at + 1, -1);
  if (is_domain (host_name))
    return g_ascii_strdown (host_name, -1);
  return g_strdup ("localhost");
}

/**
 * lb_outbox_prepare_message:
 * @data: the message as submitted (any line ends)
 * @domain: for a Message-ID the message lacks (lb_outbox_message_id_domain())
 * @now: for a Date the message lacks
 *
 * Checks that the message has a header GMime can read and says what to add in front of
 * it. The message itself is never changed.
 *
 * Returns: (transfer full): what was found and what to add, or %NULL with
 *   %LB_OUTBOX_ERROR_INVALID
 */
LbOutboxPrepared *
lb_outbox_prepare_message (const guint8  *data,
                           gsize          len,
                           const char    *domain,
                           GDateTime     *now,
                           GError       **error)
{
  g_autoptr(LbOutboxPrepared) prepared = g_new0 (LbOutboxPrepared, 1);
  g_autoptr(GMimeMessage) parsed = NULL;
  g_autoptr(GString) prefix = g_string_new (NULL);
  g_autoptr(GError) parse_error = NULL;
  gboolean crlf, has_date, has_message_id;
  const char *eol;
  const char *subject;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (domain != NULL && now != NULL, NULL);

  if (len == 0)
    {
      g_set_error_literal (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                           _("The message is empty"));
      return NULL;
    }
  if (!scan_header (data, len, &prepared->header_size, &crlf, &has_date, &has_message_id,
                    error))
    return NULL;

  /* Only the header is parsed: the body may be large and is not looked at. */
  parsed = lb_mime_parse_bytes (data, prepared->header_size, &parse_error);
  if (parsed == NULL)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                   _("The message’s header cannot be read: %s"), parse_error->message);
      return NULL;
    }
  subject = g_mime_message_get_subject (parsed);
  prepared->subject = g_strdup (subject != NULL && g_utf8_validate (subject, -1, NULL)
                                  ? subject : "");
  if (has_message_id && g_mime_message_get_message_id (parsed) != NULL)
    prepared->message_id = g_strdup (g_mime_message_get_message_id (parsed));

  eol = crlf ? "\r\n" : "\n";
  if (!has_date)
    {
      g_autofree char *date = g_mime_utils_header_format_date (now);

      g_string_append_printf (prefix, "Date: %s%s", date, eol);
    }
  if (!has_message_id)
    {
      prepared->message_id = g_mime_utils_generate_message_id (domain);
      g_string_append_printf (prefix, "Message-ID: <%s>%s", prepared->message_id, eol);
    }
  prepared->prefix = g_string_free (g_steal_pointer (&prefix), FALSE);
  return g_steal_pointer (&prepared);
}

/**
 * lb_outbox_check_address:
 *
 * An envelope address as the outbox takes it: `local@domain` or a bare local name (the
 * local user), valid UTF-8, at most 254 octets (RFC 5321 §4.5.3.1.3), and nothing that
 * could end or bend an SMTP command: no control characters (CR, LF…), spaces or angle
 * brackets.
 *
 * Returns: %TRUE, or %FALSE with %LB_OUTBOX_ERROR_INVALID naming the problem
 */
gboolean
lb_outbox_check_address (const char  *address,
                         GError     **error)
{
  const char *at;
  g_autofree char *shown = NULL;

  if (address == NULL || address[0] == '\0')
    {
      g_set_error_literal (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                           _("An address is empty"));
      return FALSE;
    }
  if (!g_utf8_validate (address, -1, NULL))
    {
      g_set_error_literal (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                           _("An address is not valid UTF-8"));
      return FALSE;
    }
  shown = g_strescape (address, NULL);
  if (strlen (address) > 254)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                   _("The address “%.40s…” is longer than 254 bytes"), shown);
      return FALSE;
    }
  for (const char *p = address; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      if (c < 0x20 || c == 0x7f || c == ' ' || c == '<' || c == '>')
        {
          g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                       _("The address “%s” contains a space, a control character or an "
                         "angle bracket"), shown);
          return FALSE;
        }
    }
  at = strrchr (address, '@');
  if (at != NULL && (at == address || at[1] == '\0' || memchr (address, '@', (gsize) (at - address))))
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                   _("“%s” is not an address of the form name@domain"), shown);
      return FALSE;
    }
  return TRUE;
}

/**
 * lb_outbox_address_is_local:
 * @user_name: the local user's login name (g_get_user_name())
 * @host_name: this machine's name (g_get_host_name())
 *
 * Whether mail to @address is for the user of this desktop: the user, `root` or
 * `postmaster`, bare or at `localhost`, `localhost.localdomain` or this machine's name
 * (case does not matter). Such mail goes into Local Folders.
 */
gboolean
lb_outbox_address_is_local (const char *address,
                            const char *user_name,
                            const char *host_name)
{
  const char *at;
  g_autofree char *local = NULL;

  g_return_val_if_fail (address != NULL, FALSE);

  at = strrchr (address, '@');
  if (at != NULL)
    {
      const char *domain = at + 1;

      if (g_ascii_strcasecmp (domain, "localhost") != 0 &&
          g_ascii_strcasecmp (domain, "localhost.localdomain") != 0 &&
          (host_name == NULL || host_name[0] == '\0' ||
           g_ascii_strcasecmp (domain, host_name) != 0))
        return FALSE;
      local = g_strndup (address, (gsize) (at - address));
    }
  else
    local = g_strdup (address);
  return (user_name != NULL && user_name[0] != '\0' && g_ascii_strcasecmp (local, user_name) == 0) ||
         g_ascii_strcasecmp (local, "root") == 0 || g_ascii_strcasecmp (local, "postmaster") == 0;
}

static gboolean
account_has_address (const LbAccount *account,
                     const char      *address)
{
  for (guint i = 0; account->identities != NULL && i < account->identities->len; i++)
    {
      const LbAccountIdentity *identity = g_ptr_array_index (account->identities, i);

      if (identity->address != NULL && g_ascii_strcasecmp (identity->address, address) == 0)
        return TRUE;
    }
  /* The login name is often the address too. */
  return account->outgoing != NULL && account->outgoing->user != NULL &&
         strchr (account->outgoing->user, '@') != NULL &&
         g_ascii_strcasecmp (account->outgoing->user, address) == 0;
}

static const char *
first_address (const LbAccount *account)
{
  if (account->identities == NULL || account->identities->len == 0)
    return NULL;
  return ((const LbAccountIdentity *) g_ptr_array_index (account->identities, 0))->address;
}

/**
 * lb_outbox_route:
 * @accounts: (element-type LbAccount): every account, in their order (lb_account_load_all())
 * @sender: the envelope sender
 * @account_id: (nullable): the account the caller chose; else the sender chooses
 * @route: (out caller-allocates): the result; clear it with lb_outbox_route_clear()
 *
 * Picks the account that sends: the named one; else the first whose addresses
 * (identities, and the SMTP login when it is an address) include @sender, compared
 * without regard to case; else, as a desktop user expects for mail from programs
 * (`user@host` from cron or a script), the first account that has an outgoing server,
 * with the account's own address as the envelope sender, so that bounces reach the
 * user. No account at all leaves @route->account %NULL: the caller decides whether that
 * matters (it does not for mail to the local user).
 *
 * Returns: %FALSE with %LB_OUTBOX_ERROR_NO_ACCOUNT only when @account_id names no account
 */
gboolean
lb_outbox_route (GPtrArray      *accounts,
                 const char     *sender,
                 const char     *account_id,
                 LbOutboxRoute  *route,
                 GError        **error)
{
  g_return_val_if_fail (sender != NULL && route != NULL, FALSE);

  memset (route, 0, sizeof *route);
  if (account_id != NULL)
    {
      for (guint i = 0; accounts != NULL && i < accounts->len; i++)
        {
          const LbAccount *account = g_ptr_array_index (accounts, i);

          if (g_strcmp0 (account->id, account_id) != 0)
            continue;
          route->account = account;
          route->matched = TRUE;
          /* The caller chose the account: a full sender address stays as given. */
          route->address = g_strdup (strchr (sender, '@') != NULL || first_address (account) == NULL
                                       ? sender : first_address (account));
          return TRUE;
        }
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT,
                   _("There is no account “%s”"), account_id);
      return FALSE;
    }
  for (guint i = 0; accounts != NULL && i < accounts->len; i++)
    {
      const LbAccount *account = g_ptr_array_index (accounts, i);

      if (account_has_address (account, sender))
        {
          route->account = account;
          route->matched = TRUE;
          route->address = g_strdup (sender);
          return TRUE;
        }
    }
  for (guint i = 0; accounts != NULL && i < accounts->len; i++)
    {
      const LbAccount *account = g_ptr_array_index (accounts, i);

      if (account->outgoing != NULL && first_address (account) != NULL)
        {
          route->account = account;
          route->address = g_strdup (first_address (account));
          return TRUE;
        }
    }
  route->address = g_strdup (sender);
  return TRUE;
}

void
lb_outbox_route_clear (LbOutboxRoute *route)
{
  g_clear_pointer (&route->address, g_free);
  route->account = NULL;
}

/**
 * lb_outbox_message_transport:
 * @header_size: where the header section ends (#LbOutboxPrepared.header_size, plus any
 *   prefix added)
 *
 * Returns: what SMTP must allow for the message: raw UTF-8 in the header needs SMTPUTF8
 *   (RFC 6532), 8-bit bytes anywhere BODY=8BITMIME (RFC 6152)
 */
LbSmtpMessageFlags
lb_outbox_message_transport (const guint8 *data,
                             gsize         len,
                             gsize         header_size)
{
  LbSmtpMessageFlags flags = LB_SMTP_MESSAGE_7BIT;

  header_size = MIN (header_size, len);
  for (gsize i = 0; i < header_size; i++)
    if (data[i] >= 0x80)
      {
        /* Raw 8-bit header text that is not UTF-8 (Latin-1 from an old program) is no
         * RFC 6532 header: it goes as 8BITMIME, as other mailers send it. */
        flags |= LB_SMTP_MESSAGE_8BIT;
        if (g_utf8_validate ((const char *) data, (gssize) header_size, NULL))
          flags |= LB_SMTP_MESSAGE_UTF8;
        break;
      }
  if ((flags & LB_SMTP_MESSAGE_8BIT) == 0)
    for (gsize i = header_size; i < len; i++)
      if (data[i] >= 0x80)
        {
          flags |= LB_SMTP_MESSAGE_8BIT;
          break;
        }
  return flags;
}
