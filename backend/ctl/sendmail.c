/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl-sendmail"

#include "config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gi18n.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "lb-mime.h"
#include "lb-smtp-data.h"
#include "lb-smtp-reply.h"
#include "lbd-relay-server.h"

/*
 * letterbox-sendmail: the sendmail(8) interface to Letterbox's relay, for cron, mailx,
 * git send-email and scripts. It reads the whole message first (so no SMTP transaction
 * waits on a slow producer), then speaks SMTP to the relay's Unix socket
 * ($XDG_RUNTIME_DIR/letterbox/relay.sock), whose peer-credential check stands in for a
 * login. When the socket is missing it asks the session bus to start the backend and
 * waits for the socket. Exit statuses are sysexits.h's, with a one-line message.
 *
 * The message: LF (or CR) line ends become CRLF and dots are stuffed by the SMTP
 * encoder (smtp/lb-smtp-data.c); From:, Date: and Message-ID: are added when missing;
 * with -t the recipients come from To:, Cc: and Bcc: (or the Resent- ones when any is
 * there), and Bcc: lines are removed. Every recipient must be accepted, or nothing is
 * sent: there is no bounce to tell the user later.
 */

#define ACTIVATION_WAIT_SECONDS 30
#define RELAY_TIMEOUT_SECONDS 600

static gboolean verbose = FALSE;

typedef struct
{
  gboolean extract;             /* -t */
  gboolean ignore_dots;         /* -i, -oi */
  char *sender;                 /* -f, -r: NULL = login@host, "" = the null sender */
  char *full_name;              /* -F */
  GPtrArray *recipients;        /* from the arguments, then from the headers */
} Options;

static void G_GNUC_PRINTF (1, 2)
fail_message (const char *format,
              ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  /* One line, whatever the relay said. */
  g_strdelimit (message, "\r\n", ' ');
  g_printerr ("letterbox-sendmail: %s\n", message);
}

static void
print_usage (FILE *out)
{
  fprintf (out, "%s\n\n", _("Usage: letterbox-sendmail [OPTIONS] [--] [RECIPIENT…] < MESSAGE"));
  fprintf (out, "%s\n\n", _("Sends a message through the Letterbox relay, like sendmail."));
  fprintf (out, "%s\n", _("Options:"));
  fprintf (out, "  %-14s %s\n", "-t",
           _("Also send to the To, Cc and Bcc addresses (Bcc is removed)"));
  fprintf (out, "  %-14s %s\n", "-i, -oi", _("A line with a single dot does not end the message"));
  fprintf (out, "  %-14s %s\n", "-f SENDER",
           _("Envelope sender (default: LOGIN@HOST; -f '<>' for none)"));
  fprintf (out, "  %-14s %s\n", "-r SENDER", _("The same as -f"));
  fprintf (out, "  %-14s %s\n", "-F NAME", _("Full name for an added From: header"));
  fprintf (out, "  %-14s %s\n", "-bm",
           _("Read the message from standard input (the default mode)"));
  fprintf (out, "  %-14s %s\n", "-v", _("Show the SMTP dialogue on standard error"));
  /* Padded by hand: "…" is one column but three bytes. */
  fprintf (out, "  -o… -B -N…     %s\n",
           _("Accepted and ignored, as are -R, -V, -X, -C, -L, -h, -m, -n, -U"));
  fprintf (out, "  %-14s %s\n", "--help", _("Print this help"));
  fprintf (out, "  %-14s %s\n\n", "--version", _("Print the version"));
  fprintf (out, "%s\n", _("Exit status:"));
  fprintf (out, "  %-3d %s\n", EX_OK, _("the relay accepted the message"));
  fprintf (out, "  %-3d %s\n", EX_USAGE, _("wrong usage: unknown option or mode, no recipient"));
  fprintf (out, "  %-3d %s\n", EX_DATAERR, _("the relay refused the message or the sender"));
  fprintf (out, "  %-3d %s\n", EX_NOUSER, _("the relay refused a recipient (nothing was sent)"));
  fprintf (out, "  %-3d %s\n", EX_UNAVAILABLE, _("the relay refused for another reason"));
  fprintf (out, "  %-3d %s\n", EX_IOERR, _("the message could not be read"));
  fprintf (out, "  %-3d %s\n", EX_TEMPFAIL,
           _("the relay is unreachable or asked to try again later"));
  fprintf (out, "  %-3d %s\n", EX_PROTOCOL, _("the relay answered something unexpected"));
  fprintf (out, "  %-3d %s\n", EX_NOPERM, _("the relay did not allow this sender or user"));
}

/* Options (sendmail's, as Postfix's and exim's sendmail read them) */

static const char *
host_domain (void)
{
  static char *domain = NULL;

  if (domain == NULL)
    {
      const char *host = g_get_host_name ();

      /* A host name that is no domain (say, with "_") would make a bad address. */
      domain = g_strdup (g_hostname_is_ip_address (host) ||
                         strspn (host, "abcdefghijklmnopqrstuvwxyz"
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != strlen (host)
                         || host[0] == '\0' || host[0] == '-' || host[0] == '.'
                         ? "localhost" : host);
    }
  return domain;
}

/* "<a@b>" → "a@b"; "root" → "root@HOST" (sendmail qualifies unqualified names). */
static char *
address_normalize (const char *address)
{
  g_autofree char *stripped = g_strstrip (g_strdup (address));
  gsize len = strlen (stripped);

  if (len >= 2 && stripped[0] == '<' && stripped[len - 1] == '>')
    {
      memmove (stripped, stripped + 1, len - 2);
      stripped[len - 2] = '\0';
    }
  if (stripped[0] != '\0' && strchr (stripped, '@') == NULL)
    return g_strconcat (stripped, "@", host_domain (), NULL);
  return g_steal_pointer (&stripped);
}

static void
recipients_add_list (GPtrArray  *recipients,
                     const char *text)
{
  g_autoptr(InternetAddressList) list = NULL;
  int n;

  list = internet_address_list_parse (lb_mime_parser_options (), text);
  n = list != NULL ? internet_address_list_length (list) : 0;

  for (int i = 0; i < n; i++)
    {
      InternetAddress *address = internet_address_list_get_address (list, i);

      if (INTERNET_ADDRESS_IS_GROUP (address))
        {
          InternetAddressList *members =
            internet_address_group_get_members (INTERNET_ADDRESS_GROUP (address));

          for (int j = 0; j < internet_address_list_length (members); j++)
            {
              InternetAddress *member = internet_address_list_get_address (members, j);

              if (INTERNET_ADDRESS_IS_MAILBOX (member))
                g_ptr_array_add (recipients,
                                 address_normalize (internet_address_mailbox_get_addr (
                                   INTERNET_ADDRESS_MAILBOX (member))));
            }
        }
      else if (INTERNET_ADDRESS_IS_MAILBOX (address))
        {
          g_ptr_array_add (recipients,
                           address_normalize (internet_address_mailbox_get_addr (
                             INTERNET_ADDRESS_MAILBOX (address))));
        }
    }
}

/* The same address twice (To and an argument, say) gets one copy. */
static void
recipients_dedupe (GPtrArray *recipients)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < recipients->len;)
    {
      char *key = g_utf8_casefold (g_ptr_array_index (recipients, i), -1);

      if (g_hash_table_contains (seen, key))
        {
          g_free (key);
          g_ptr_array_remove_index (recipients, i);
        }
      else
        {
          g_hash_table_add (seen, key);
          i++;
        }
    }
}

/* Returns an exit status, or -1 to go on. */
static int
options_parse (Options  *options,
               int       argc,
               char    **argv)
{
  gboolean options_done = FALSE;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];

      if (options_done || arg[0] != '-' || arg[1] == '\0')
        {
          /* An argument may hold several addresses ("a@x, b@y"). */
          g_autofree char *address = address_normalize (arg);

          if (strchr (arg, ',') != NULL || strchr (arg, '<') != NULL)
            recipients_add_list (options->recipients, arg);
          else if (address[0] != '\0')
            g_ptr_array_add (options->recipients, g_steal_pointer (&address));
          continue;
        }
      if (g_str_equal (arg, "--"))
        {
          options_done = TRUE;
          continue;
        }
      if (g_str_equal (arg, "--help"))
        {
          print_usage (stdout);
          return EX_OK;
        }
      if (g_str_equal (arg, "--version"))
        {
          printf ("letterbox-sendmail %s\n", PACKAGE_VERSION);
          return EX_OK;
        }

      for (const char *p = arg + 1; *p != '\0'; p++)
        {
          const char *value = NULL;

          if (strchr ("frFBNRVXCLhob", *p) != NULL)
            {
              if (p[1] != '\0')
                value = p + 1;
              else if (i + 1 < argc)
                value = argv[++i];
              else
                {
                  fail_message (_("option -%c needs a value"), *p);
                  return EX_USAGE;
                }
            }

          switch (*p)
            {
            case 't':
              options->extract = TRUE;
              break;
            case 'i':
              options->ignore_dots = TRUE;
              break;
            case 'v':
              verbose = TRUE;
              break;
            case 'm': /* "me too", -n "no aliases", -U "initial submission" */
            case 'n':
            case 'U':
              break;
            case 'f':
            case 'r':
              g_free (options->sender);
              options->sender = g_str_equal (value, "<>") ? g_strdup ("")
                                                          : address_normalize (value);
              break;
            case 'F':
              g_free (options->full_name);
              options->full_name = g_strdup (value);
              break;
            case 'o':
              if (g_str_equal (value, "i"))
                options->ignore_dots = TRUE;
              break;
            case 'b':
              if (!g_str_equal (value, "m"))
                {
                  fail_message (_("mode -b%s is not supported; only -bm (send a message)"), value);
                  return EX_USAGE;
                }
              break;
            default:
              if (value == NULL)
                {
                  fail_message (_("unknown option -%c (see --help)"), *p);
                  return EX_USAGE;
                }
              break; /* -B, -N, -R, -V, -X, -C, -L, -h: ignored */
            }
          if (value != NULL)
            break;
        }
    }
  return -1;
}

/* The message */

/* Reads standard input; without -i a line holding only "." ends it (and nothing after
 * it is read, so a terminal user can end with a dot). */
static GByteArray *
message_read (gboolean   ignore_dots,
              GError   **error)
{
  GByteArray *message = g_byte_array_new ();
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;

  while ((n = getline (&line, &cap, stdin)) > 0)
    {
      if (!ignore_dots && line[0] == '.' &&
          (n == 1 || (n == 2 && line[1] == '\n') || (n == 3 && line[1] == '\r' && line[2] == '\n')))
        break;
      g_byte_array_append (message, (const guint8 *) line, (guint) n);
    }
  free (line);
  if (ferror (stdin))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("cannot read the message: %s"),
                   g_strerror (errno));
      g_byte_array_unref (message);
      return NULL;
    }
  return message;
}

typedef struct
{
  gsize start;
  gsize end;          /* after its line end */
  char *name;         /* lower case */
} Header;

static void
header_free (Header *h)
{
  g_free (h->name);
  g_free (h);
}

static gsize
line_end (const GByteArray *m,
          gsize             from)
{
  const guint8 *nl = memchr (m->data + from, '\n', m->len - from);

  return nl != NULL ? (gsize) (nl - m->data) + 1 : m->len;
}

static gboolean
line_is_blank (const GByteArray *m,
               gsize             start,
               gsize             end)
{
  for (gsize i = start; i < end; i++)
    if (m->data[i] != '\r' && m->data[i] != '\n')
      return FALSE;
  return TRUE;
}

/* The header fields at the top (RFC 5322 §2.2); returns where the body starts. */
static gsize
headers_scan (const GByteArray *m,
              gsize             start,
              GPtrArray        *headers)
{
  gsize pos = start;

  while (pos < m->len)
    {
      gsize end = line_end (m, pos);
      const guint8 *colon;

      if (line_is_blank (m, pos, end))
        return pos;
      if ((m->data[pos] == ' ' || m->data[pos] == '\t') && headers->len > 0)
        {
          ((Header *) g_ptr_array_index (headers, headers->len - 1))->end = end;
          pos = end;
          continue;
        }
      colon = memchr (m->data + pos, ':', end - pos);
      if (colon == NULL || colon == m->data + pos)
        return pos;
      for (const guint8 *p = m->data + pos; p < colon; p++)
        if (*p <= ' ' || *p >= 127)
          return pos;
      {
        Header *h = g_new0 (Header, 1);

        h->start = pos;
        h->end = end;
        h->name = g_ascii_strdown ((const char *) m->data + pos, colon - (m->data + pos));
        g_ptr_array_add (headers, h);
      }
      pos = end;
    }
  return pos;
}

static char *
header_value (const GByteArray *m,
              const Header     *h)
{
  gsize name_len = strlen (h->name) + 1;
  g_autofree char *raw = g_strndup ((const char *) m->data + h->start + name_len,
                                    h->end - h->start - name_len);

  /* Unfold. */
  g_strdelimit (raw, "\r\n", ' ');
  return g_strstrip (g_steal_pointer (&raw));
}

static gboolean
headers_have (GPtrArray  *headers,
              const char *name)
{
  for (guint i = 0; i < headers->len; i++)
    if (g_str_equal (((Header *) g_ptr_array_index (headers, i))->name, name))
      return TRUE;
  return FALSE;
}

/* Adds the headers a sendmail adds, takes recipients for -t and drops Bcc; returns the
 * message to send. */
static GByteArray *
message_prepare (GByteArray    *input,
                 Options       *options,
                 const char    *sender)
{
  g_autoptr(GPtrArray) headers = g_ptr_array_new_with_free_func ((GDestroyNotify) header_free);
  GByteArray *out = g_byte_array_sized_new (input->len + 512);
  gsize start = 0, body;
  gboolean resent = FALSE;
  GString *added = g_string_new (NULL);

  /* An mbox "From " line is not part of the message. */
  if (input->len >= 5 && memcmp (input->data, "From ", 5) == 0)
    start = line_end (input, 0);
  body = headers_scan (input, start, headers);

  for (guint i = 0; i < headers->len; i++)
    {
      const char *name = ((Header *) g_ptr_array_index (headers, i))->name;

      if (g_str_equal (name, "resent-to") || g_str_equal (name, "resent-cc") ||
          g_str_equal (name, "resent-bcc"))
        resent = TRUE;
    }

  if (!headers_have (headers, "from"))
    {
      g_autoptr(InternetAddress) from = NULL;
      const char *name = options->full_name;
      g_autofree char *login = g_strconcat (g_get_user_name (), "@", host_domain (), NULL);
      g_autofree char *text = NULL;

      if (name == NULL && g_strcmp0 (g_get_real_name (), "Unknown") != 0)
        name = g_get_real_name ();
      /* The null sender (-f '<>') still needs a From: address. */
      from = internet_address_mailbox_new (name, sender[0] != '\0' ? sender : login);
      text = internet_address_to_string (from, lb_mime_format_options (), TRUE);
      g_string_append_printf (added, "From: %s\r\n", text);
    }
  if (!headers_have (headers, "date"))
    {
      g_autoptr(GDateTime) now = g_date_time_new_now_local ();
      g_autofree char *date = g_mime_utils_header_format_date (now);

      g_string_append_printf (added, "Date: %s\r\n", date);
    }
  if (!headers_have (headers, "message-id"))
    {
      g_autofree char *id = g_mime_utils_generate_message_id (host_domain ());

      g_string_append_printf (added, "Message-ID: <%s>\r\n", id);
    }
  g_byte_array_append (out, (const guint8 *) added->str, added->len);
  g_string_free (added, TRUE);

  for (guint i = 0; i < headers->len; i++)
    {
      Header *h = g_ptr_array_index (headers, i);
      gboolean is_bcc = g_str_equal (h->name, "bcc") || g_str_equal (h->name, "resent-bcc");

      if (options->extract &&
          (resent ? (g_str_equal (h->name, "resent-to") || g_str_equal (h->name, "resent-cc") ||
                     g_str_equal (h->name, "resent-bcc"))
                  : (g_str_equal (h->name, "to") || g_str_equal (h->name, "cc") ||
                     g_str_equal (h->name, "bcc"))))
        {
          g_autofree char *value = header_value (input, h);

          recipients_add_list (options->recipients, value);
        }
      /* Bcc never goes out, with or without -t (as with Postfix's sendmail). */
      if (!is_bcc)
        g_byte_array_append (out, input->data + h->start, (guint) (h->end - h->start));
    }

  /* A message that did not start with headers gets the separating blank line. */
  if (body < input->len && !line_is_blank (input, body, line_end (input, body)))
    g_byte_array_append (out, (const guint8 *) "\r\n", 2);
  else if (body >= input->len)
    g_byte_array_append (out, (const guint8 *) "\r\n", 2);
  g_byte_array_append (out, input->data + body, (guint) (input->len - body));
  return out;
}

/* SMTP over the relay's socket */

typedef struct
{
  GSocketConnection *connection;
  GInputStream *input;
  GOutputStream *output;
  LbSmtpReplyParser *parser;
} Client;

static void
client_close (Client *client)
{
  if (client->connection != NULL)
    g_io_stream_close (G_IO_STREAM (client->connection), NULL, NULL);
  g_clear_object (&client->connection);
  g_clear_pointer (&client->parser, lb_smtp_reply_parser_free);
}

static gboolean
client_write (Client      *client,
              const char  *text,
              GError     **error)
{
  if (verbose)
    {
      g_autofree char *shown = g_strdup (text);

      g_strchomp (shown);
      g_printerr (">>> %s\n", g_strdelimit (shown, "\r\n", '|'));
    }
  return g_output_stream_write_all (client->output, text, strlen (text), NULL, NULL, error);
}

/* "550 5.1.1 text", on one line. */
static char *
reply_describe (const LbSmtpReply *reply)
{
  char *text = lb_smtp_reply_dup_text (reply);

  return g_strdelimit (text, "\r\n", ' ');
}

static LbSmtpReply *
client_read (Client  *client,
             GError **error)
{
  guint8 buf[4096];

  while (TRUE)
    {
      LbSmtpReply *reply = lb_smtp_reply_parser_pop (client->parser);
      gssize n;

      if (reply != NULL)
        {
          if (verbose)
            {
              g_autofree char *text = reply_describe (reply);

              g_printerr ("<<< %s\n", text);
            }
          return reply;
        }
      n = g_input_stream_read (client->input, buf, sizeof buf, NULL, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               _("the relay closed the connection"));
          return NULL;
        }
      if (!lb_smtp_reply_parser_feed (client->parser, buf, (gsize) n, error))
        return NULL;
    }
}

typedef enum
{
  STAGE_CONNECT,
  STAGE_SENDER,
  STAGE_RECIPIENT,
  STAGE_DATA,
} Stage;

/* A refusal → sysexits.h, from the enhanced status code where there is one. */
static int
exit_for_reply (const LbSmtpReply *reply,
                Stage              stage)
{
  guint subject = reply->has_enhanced ? reply->enhanced[1] : 0;

  if (reply->code >= 400 && reply->code < 500)
    return EX_TEMPFAIL;
  if (reply->code < 400)
    return EX_PROTOCOL;
  if (subject == 7)
    return EX_NOPERM;
  if (stage == STAGE_RECIPIENT)
    return EX_NOUSER;
  if (stage == STAGE_SENDER || stage == STAGE_DATA)
    return EX_DATAERR;
  return EX_UNAVAILABLE;
}

static gboolean
socket_connect (const char         *path,
                GSocketConnection **connection,
                GError            **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);

  *connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, error);
  return *connection != NULL;
}

/* StartServiceByName on the session bus; never autolaunches a bus (cron has none). */
static gboolean
backend_activate (const char  *socket_path,
                  GError     **error)
{
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *address = g_strdup (g_getenv ("DBUS_SESSION_BUS_ADDRESS"));

  if (address == NULL || address[0] == '\0')
    {
      g_autofree char *letterbox_dir = g_path_get_dirname (socket_path);
      g_autofree char *runtime = g_path_get_dirname (letterbox_dir);
      g_autofree char *bus_path = g_build_filename (runtime, "bus", NULL);
      g_autofree char *escaped = NULL;

      if (!g_file_test (bus_path, G_FILE_TEST_EXISTS))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               _("there is no session bus to start the backend with"));
          return FALSE;
        }
      escaped = g_dbus_address_escape_value (bus_path);
      g_free (address);
      address = g_strconcat ("unix:path=", escaped, NULL);
    }

  bus = g_dbus_connection_new_for_address_sync (address,
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, error);
  if (bus == NULL)
    return FALSE;
  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "StartServiceByName",
                                       g_variant_new ("(su)", LB_BACKEND_BUS_NAME, 0),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE,
                                       ACTIVATION_WAIT_SECONDS * 1000, NULL, error);
  if (reply == NULL)
    {
      if (error != NULL && *error != NULL)
        g_dbus_error_strip_remote_error (*error);
      return FALSE;
    }
  return TRUE;
}

static int
relay_connect (const char  *path,
               Client      *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) activation_error = NULL;
  gint64 deadline;

  if (socket_connect (path, &client->connection, &error))
    goto connected;
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    {
      fail_message (_("cannot reach the relay at %s: %s"), path, error->message);
      return EX_TEMPFAIL;
    }

  /* Nobody listens: start the backend, then wait for its socket. */
  deadline = g_get_monotonic_time () + ACTIVATION_WAIT_SECONDS * G_USEC_PER_SEC;
  if (!backend_activate (path, &activation_error))
    {
      fail_message (_("cannot reach the relay at %s (%s), and cannot start the backend: %s"),
                    path, error->message, activation_error->message);
      return EX_TEMPFAIL;
    }
  while (TRUE)
    {
      g_clear_error (&error);
      if (socket_connect (path, &client->connection, &error))
        goto connected;
      if (g_get_monotonic_time () >= deadline)
        break;
      g_usleep (50 * 1000);
    }
  fail_message (_("the backend started, but its relay did not open %s within %d s: %s"), path,
                ACTIVATION_WAIT_SECONDS, error->message);
  return EX_TEMPFAIL;

connected:
  g_socket_set_timeout (g_socket_connection_get_socket (client->connection), RELAY_TIMEOUT_SECONDS);
  client->input = g_io_stream_get_input_stream (G_IO_STREAM (client->connection));
  client->output = g_io_stream_get_output_stream (G_IO_STREAM (client->connection));
  client->parser = lb_smtp_reply_parser_new ();
  return -1;
}

static gboolean
needs_smtputf8 (const char *text)
{
  for (const char *p = text; *p != '\0'; p++)
    if ((guint8) *p >= 0x80)
      return TRUE;
  return FALSE;
}

static int
relay_send (Client           *client,
            const char       *sender,
            GPtrArray        *recipients,
            const GByteArray *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSmtpReply) reply = NULL;
  g_autoptr(LbSmtpEhlo) ehlo = NULL;
  g_autoptr(GString) command = g_string_new (NULL);
  g_autoptr(GByteArray) encoded = NULL;
  gboolean utf8 = needs_smtputf8 (sender);
  gboolean eight_bit = FALSE;
  int status = EX_OK;
  guint state = 0;

#define READ_REPLY()                                                   \
  G_STMT_START {                                                              \
    g_clear_pointer (&reply, lb_smtp_reply_free);                             \
    if ((reply = client_read (client, &error)) == NULL)                       \
      goto io_error;                                                          \
  } G_STMT_END

  READ_REPLY ();
  if (reply->code != 220)
    {
      g_autofree char *text = reply_describe (reply);

      fail_message (_("the relay does not take mail now: %s"), text);
      return exit_for_reply (reply, STAGE_CONNECT);
    }
  g_string_printf (command, "EHLO %s\r\n", host_domain ());
  if (!client_write (client, command->str, &error))
    goto io_error;
  READ_REPLY ();
  if (reply->code != 250 || (ehlo = lb_smtp_ehlo_parse (reply, NULL)) == NULL)
    {
      g_autofree char *text = reply_describe (reply);

      fail_message (_("the relay refused EHLO: %s"), text);
      return EX_PROTOCOL;
    }

  for (guint i = 0; i < recipients->len; i++)
    utf8 |= needs_smtputf8 (g_ptr_array_index (recipients, i));
  for (guint i = 0; i < message->len && !eight_bit; i++)
    eight_bit = message->data[i] >= 0x80;

  /* MAIL and every RCPT in one write when the relay pipelines (RFC 2920); DATA only
   * once all of them were accepted, so a refused recipient sends nothing. */
  g_string_printf (command, "MAIL FROM:<%s> SIZE=%u", sender, message->len);
  if (eight_bit && (ehlo->caps & LB_SMTP_CAP_8BITMIME))
    g_string_append (command, " BODY=8BITMIME");
  if (utf8 && (ehlo->caps & LB_SMTP_CAP_SMTPUTF8))
    g_string_append (command, " SMTPUTF8");
  g_string_append (command, "\r\n");
  for (guint i = 0; i < recipients->len; i++)
    {
      if (!(ehlo->caps & LB_SMTP_CAP_PIPELINING))
        break;
      g_string_append_printf (command, "RCPT TO:<%s>\r\n",
                              (char *) g_ptr_array_index (recipients, i));
    }
  if (!client_write (client, command->str, &error))
    goto io_error;
  READ_REPLY ();
  if (reply->code != 250)
    {
      g_autofree char *text = reply_describe (reply);

      fail_message (_("the relay refused the sender <%s>: %s"), sender, text);
      status = exit_for_reply (reply, STAGE_SENDER);
    }
  for (guint i = 0; i < recipients->len; i++)
    {
      const char *rcpt = g_ptr_array_index (recipients, i);

      if (!(ehlo->caps & LB_SMTP_CAP_PIPELINING))
        {
          if (status != EX_OK)
            break;
          g_string_printf (command, "RCPT TO:<%s>\r\n", rcpt);
          if (!client_write (client, command->str, &error))
            goto io_error;
        }
      READ_REPLY ();
      if (reply->code != 250 && reply->code != 251 && status == EX_OK)
        {
          g_autofree char *text = reply_describe (reply);

          fail_message (_("the relay refused the recipient <%s>: %s; nothing was sent"), rcpt,
                        text);
          status = exit_for_reply (reply, STAGE_RECIPIENT);
        }
    }
  if (status != EX_OK)
    {
      client_write (client, "RSET\r\nQUIT\r\n", NULL);
      return status;
    }

  if (!client_write (client, "DATA\r\n", &error))
    goto io_error;
  READ_REPLY ();
  if (reply->code != 354)
    {
      g_autofree char *text = reply_describe (reply);

      fail_message (_("the relay refused DATA: %s"), text);
      client_write (client, "QUIT\r\n", NULL);
      return reply->code == 250 ? EX_PROTOCOL : exit_for_reply (reply, STAGE_DATA);
    }
  encoded = g_byte_array_sized_new (message->len + message->len / 32 + 8);
  lb_smtp_data_encode (&state, message->data, message->len, TRUE, encoded);
  lb_smtp_data_encode_finish (&state, TRUE, encoded);
  if (verbose)
    g_printerr (">>> (%u octets of message)\n", encoded->len);
  if (!g_output_stream_write_all (client->output, encoded->data, encoded->len, NULL, NULL, &error))
    goto io_error;
  READ_REPLY ();
  if (reply->code != 250)
    {
      g_autofree char *text = reply_describe (reply);

      fail_message (_("the relay refused the message: %s"), text);
      client_write (client, "QUIT\r\n", NULL);
      return exit_for_reply (reply, STAGE_DATA);
    }
  if (client_write (client, "QUIT\r\n", NULL))
    {
      g_clear_pointer (&reply, lb_smtp_reply_free);
      reply = client_read (client, NULL);
    }
  return EX_OK;

io_error:
  if (g_error_matches (error, LB_SMTP_PARSE_ERROR, LB_SMTP_PARSE_ERROR_SYNTAX) ||
      g_error_matches (error, LB_SMTP_PARSE_ERROR, LB_SMTP_PARSE_ERROR_TOO_LONG))
    {
      fail_message (_("the relay's answer makes no sense: %s"), error->message);
      return EX_PROTOCOL;
    }
  fail_message (_("lost the relay: %s"), error->message);
  return EX_TEMPFAIL;
#undef READ_REPLY
}

int
main (int   argc,
      char *argv[])
{
  Options options = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GByteArray) input = NULL;
  g_autoptr(GByteArray) message = NULL;
  g_autofree char *sender = NULL;
  g_autofree char *socket_path = NULL;
  Client client = { 0 };
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  options.recipients = g_ptr_array_new_with_free_func (g_free);
  status = options_parse (&options, argc, argv);
  if (status >= 0)
    goto out;

  lb_mime_init ();
  sender = options.sender != NULL ? g_strdup (options.sender)
                                  : g_strconcat (g_get_user_name (), "@", host_domain (), NULL);

  input = message_read (options.ignore_dots, &error);
  if (input == NULL)
    {
      fail_message ("%s", error->message);
      status = EX_IOERR;
      goto out;
    }
  message = message_prepare (input, &options, sender);
  recipients_dedupe (options.recipients);
  if (options.recipients->len == 0)
    {
      fail_message (options.extract ? _("no recipients: none given and none in To, Cc or Bcc")
                                    : _("no recipients given (or use -t)"));
      status = EX_USAGE;
      goto out;
    }

  socket_path = lbd_relay_default_socket_path ();
  status = relay_connect (socket_path, &client);
  if (status < 0)
    status = relay_send (&client, sender, options.recipients, message);

out:
  client_close (&client);
  g_ptr_array_unref (options.recipients);
  g_free (options.sender);
  g_free (options.full_name);
  return status;
}
