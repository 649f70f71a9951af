/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-account-check.h"
#include "lb-account.h"
#include "lb-autoconfig.h"
#include "lb-bus-backend1.h"
#include "lb-connection.h"
#include "letterbox-account-assistant.h"
#include "letterbox-application.h"
#include "letterbox-combo-row-factory.h"

/*
 * Adding (or changing) a mail account, one page at a time:
 *
 *   account ──Next──▶ busy (autoconfig) ──▶ found ──Sign In──▶ busy (log in to each server)
 *      │                     │ nothing       ▲                      │ ok: keyring, file, Sync
 *      └──Set Up Manually──▶ manual ◀────────┘ Change               ▼
 *                              └─────Sign In──▶ … ─certificate?─▶ certificate ──Accept──▶ …
 *                                                                          done
 *
 * Wrong password → back to the account page with the password marked; unreachable or
 * refused → the manual page with the servers filled in and the error above them; an
 * untrusted certificate → its details, and accepting pins exactly that certificate
 * (its SHA-256 fingerprint, LbAccount.fingerprint) for the account. Nothing is written
 * before every server let the user in: then the password goes into the keyring, the
 * account file is written (the background service notices it), and the service is asked
 * to sync the account. Network and file work is async; the window never blocks.
 */

struct _LetterboxAccountAssistant
{
  AdwWindow parent_instance;

  GCancellable *cancellable;
  char *edit_id;            /* the account being changed; NULL when adding one */
  LbAccount *original;      /* its settings as loaded */
  LbAccount *account;       /* what is being tried */
  LbAutoconfig *found;
  char *password;
  const char *servers_page; /* "found" or "manual": where the servers came from */
  const char *busy_return;  /* the page that Cancel on the busy page goes back to */
  guint checking;           /* 0: the incoming server, 1: the outgoing one */
  char *certificate_fingerprint;
  char *saved_id;
  char *discovered_address;

  AdwWindowTitle *window_title;
  GtkButton *back_button;
  GtkButton *next_button;
  /* The same message on each page that can show one, inside the page's scrolled area:
   * a wrapped label outside it upsets GTK 4.8's width-for-height measuring. */
  AdwPreferencesGroup *error_group_account;
  AdwPreferencesGroup *error_group_found;
  AdwPreferencesGroup *error_group_manual;
  GtkLabel *error_label_account;
  GtkLabel *error_label_found;
  GtkLabel *error_label_manual;
  GtkStack *stack;
  AdwEntryRow *name_row;
  AdwEntryRow *address_row;
  AdwEntryRow *password_row;
  GtkButton *manual_button;
  GtkSpinner *busy_spinner;
  AdwStatusPage *busy_page;
  GtkLabel *found_label;
  AdwActionRow *found_incoming_row;
  AdwActionRow *found_outgoing_row;
  AdwComboRow *in_protocol_row;
  AdwEntryRow *in_host_row;
  AdwEntryRow *in_port_row;
  AdwComboRow *in_security_row;
  AdwEntryRow *in_user_row;
  AdwEntryRow *out_host_row;
  AdwEntryRow *out_port_row;
  AdwComboRow *out_security_row;
  AdwEntryRow *out_user_row;
  GtkLabel *cert_explanation_label;
  AdwActionRow *cert_server_row;
  AdwActionRow *cert_subject_row;
  AdwActionRow *cert_issuer_row;
  AdwActionRow *cert_validity_row;
  GtkLabel *cert_fingerprint_label;
  AdwStatusPage *done_page;
};

G_DEFINE_FINAL_TYPE (LetterboxAccountAssistant, letterbox_account_assistant, ADW_TYPE_WINDOW)

enum
{
  SIGNAL_ACCOUNT_SAVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void check_next_server (LetterboxAccountAssistant *self);

/* The security choices in the combo rows, in their order. */
static const LbNetSecurity security_choices[] = {
  LB_NET_SECURITY_TLS, LB_NET_SECURITY_STARTTLS, LB_NET_SECURITY_NONE,
};

static guint
security_to_index (LbNetSecurity security)
{
  for (guint i = 0; i < G_N_ELEMENTS (security_choices); i++)
    if (security_choices[i] == security)
      return i;
  return 0;
}

static const char *
security_label (LbNetSecurity security)
{
  switch (security)
    {
    case LB_NET_SECURITY_TLS:
      return _("TLS");
    case LB_NET_SECURITY_STARTTLS:
      return _("STARTTLS");
    case LB_NET_SECURITY_NONE:
    default:
      return _("unencrypted");
    }
}

static const char *
protocol_label (LbAccountProtocol protocol)
{
  switch (protocol)
    {
    case LB_ACCOUNT_PROTOCOL_IMAP:
      return _("IMAP");
    case LB_ACCOUNT_PROTOCOL_POP3:
      return _("POP3");
    case LB_ACCOUNT_PROTOCOL_SMTP:
    default:
      return _("SMTP");
    }
}

/* "host:port", with brackets around an IPv6 address. */
static char *
host_port (const char *host,
           guint       port)
{
  if (strchr (host, ':') != NULL)
    return g_strdup_printf ("[%s]:%u", host, port);
  return g_strdup_printf ("%s:%u", host, port);
}

static char *
describe_server (const LbAccountServer *server)
{
  g_autofree char *where = host_port (server->host, server->port);

  /* Translators: "IMAP, imap.example.org:993, TLS" */
  return g_strdup_printf (_("%s, %s, %s"), protocol_label (server->protocol), where,
                          security_label (server->security));
}

static const char *
row_text (AdwEntryRow *row)
{
  return gtk_editable_get_text (GTK_EDITABLE (row));
}

static char *
row_text_stripped (AdwEntryRow *row)
{
  return g_strstrip (g_strdup (row_text (row)));
}

static void
set_row_text (AdwEntryRow *row,
              const char  *text)
{
  gtk_editable_set_text (GTK_EDITABLE (row), text != NULL ? text : "");
}

static void
set_row_error (AdwEntryRow *row,
               gboolean     error)
{
  if (error)
    gtk_widget_add_css_class (GTK_WIDGET (row), "error");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (row), "error");
}

static void
show_error (LetterboxAccountAssistant *self,
            const char                *message)
{
  GtkLabel *labels[] = { self->error_label_account, self->error_label_found,
                         self->error_label_manual };
  AdwPreferencesGroup *groups[] = { self->error_group_account, self->error_group_found,
                                    self->error_group_manual };

  for (guint i = 0; i < G_N_ELEMENTS (labels); i++)
    {
      gtk_label_set_text (labels[i], message != NULL ? message : "");
      gtk_widget_set_visible (GTK_WIDGET (groups[i]), message != NULL);
    }
}

static void
clear_errors (LetterboxAccountAssistant *self)
{
  show_error (self, NULL);
  set_row_error (self->address_row, FALSE);
  set_row_error (self->password_row, FALSE);
  set_row_error (self->in_host_row, FALSE);
  set_row_error (self->in_port_row, FALSE);
  set_row_error (self->in_user_row, FALSE);
  set_row_error (self->out_host_row, FALSE);
  set_row_error (self->out_port_row, FALSE);
}

/* The label of a header bar button, and its accessible name without the underline.
 * GTK 4.8 names a button made by gtk_button_set_label() "_Next Next", and a mnemonic
 * label inside it makes a "labelled by" relation that GTK 4.8's AT-SPI bridge fails on
 * (a critical) when the window closes; a plain label child and a name avoid both. */
static void
set_button_label (GtkButton  *button,
                  const char *label)
{
  GtkWidget *child = gtk_button_get_child (button);
  g_autoptr(GString) name = g_string_new (label);

  if (!GTK_IS_LABEL (child))
    {
      child = gtk_label_new (NULL);
      gtk_button_set_child (button, child);
    }
  gtk_label_set_text_with_mnemonic (GTK_LABEL (child), label);
  g_string_replace (name, "_", "", 0);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  name->str, -1);
}

/* Puts the buttons in the header bar in step with @page. */
static void
show_page (LetterboxAccountAssistant *self,
           const char                *page)
{
  const char *back = _("_Back");
  const char *next = _("_Next");
  gboolean can_next = TRUE;
  GtkWidget *focus = NULL;

  if (strcmp (page, "account") == 0)
    {
      back = _("_Cancel");
      focus = GTK_WIDGET (self->address_row);
      if (row_text (self->name_row)[0] == '\0')
        focus = GTK_WIDGET (self->name_row);
      else if (row_text (self->address_row)[0] != '\0')
        focus = GTK_WIDGET (self->password_row);
    }
  else if (strcmp (page, "busy") == 0)
    {
      back = _("_Cancel");
      can_next = FALSE;
    }
  else if (strcmp (page, "found") == 0)
    {
      next = _("_Sign In");
      focus = GTK_WIDGET (self->next_button);
    }
  else if (strcmp (page, "manual") == 0)
    {
      next = self->edit_id != NULL ? _("_Save") : _("_Sign In");
      focus = GTK_WIDGET (self->in_host_row);
    }
  else if (strcmp (page, "certificate") == 0)
    {
      back = _("_Cancel");
      next = _("_Accept Certificate");
      focus = GTK_WIDGET (self->back_button);
    }
  else if (strcmp (page, "done") == 0)
    {
      next = _("_Close");
      focus = GTK_WIDGET (self->next_button);
    }

  set_button_label (self->back_button, back);
  set_button_label (self->next_button, next);
  gtk_widget_set_visible (GTK_WIDGET (self->back_button), strcmp (page, "done") != 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "assistant.next", can_next);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "assistant.manual",
                                 strcmp (page, "account") == 0 || strcmp (page, "found") == 0);
  gtk_spinner_set_spinning (self->busy_spinner, strcmp (page, "busy") == 0);
  gtk_stack_set_visible_child_name (self->stack, page);
  if (focus != NULL)
    gtk_widget_grab_focus (focus);
}

static void
show_busy (LetterboxAccountAssistant *self,
           const char                *text,
           const char                *return_page)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->busy_return = return_page;
  adw_status_page_set_title (self->busy_page, text);
  show_page (self, "busy");
}

/* ---- the manual page -------------------------------------------------------------- */

static void
fill_manual (LetterboxAccountAssistant *self,
             const LbAccountServer     *incoming,
             const LbAccountServer     *outgoing)
{
  g_autofree char *in_port = NULL;
  g_autofree char *out_port = NULL;

  if (incoming != NULL)
    {
      in_port = g_strdup_printf ("%u", incoming->port);
      adw_combo_row_set_selected (self->in_protocol_row,
                                  incoming->protocol == LB_ACCOUNT_PROTOCOL_POP3 ? 1 : 0);
      set_row_text (self->in_host_row, incoming->host);
      set_row_text (self->in_port_row, in_port);
      adw_combo_row_set_selected (self->in_security_row, security_to_index (incoming->security));
      set_row_text (self->in_user_row, incoming->user);
    }
  if (outgoing != NULL)
    {
      out_port = g_strdup_printf ("%u", outgoing->port);
      set_row_text (self->out_host_row, outgoing->host);
      set_row_text (self->out_port_row, out_port);
      adw_combo_row_set_selected (self->out_security_row, security_to_index (outgoing->security));
      set_row_text (self->out_user_row, outgoing->user);
    }
}

/* Guesses for a provider autoconfiguration knows nothing about: the usual host names,
 * implicit TLS (RFC 8314), the address as the user name. */
static void
fill_manual_guess (LetterboxAccountAssistant *self,
                   const char                *address)
{
  g_autofree char *domain = NULL;
  g_autofree char *in_host = NULL;
  g_autofree char *out_host = NULL;
  g_autoptr(LbAccountServer) incoming = NULL;
  g_autoptr(LbAccountServer) outgoing = NULL;

  if (row_text (self->in_host_row)[0] != '\0')
    return;
  if (!lb_autoconfig_split_address (address, NULL, &domain, NULL))
    return;
  in_host = g_strconcat ("imap.", domain, NULL);
  out_host = g_strconcat ("smtp.", domain, NULL);
  incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP, in_host, 993, LB_NET_SECURITY_TLS);
  outgoing = lb_account_server_new (LB_ACCOUNT_PROTOCOL_SMTP, out_host, 465, LB_NET_SECURITY_TLS);
  incoming->user = g_strdup (address);
  outgoing->user = g_strdup (address);
  fill_manual (self, incoming, outgoing);
}

/* When the protocol or security changes, a port still at the old default follows. */
static void
manual_choice_changed_cb (LetterboxAccountAssistant *self)
{
  LbAccountProtocol protocol = adw_combo_row_get_selected (self->in_protocol_row) == 1
                               ? LB_ACCOUNT_PROTOCOL_POP3 : LB_ACCOUNT_PROTOCOL_IMAP;
  guint in_security = adw_combo_row_get_selected (self->in_security_row);
  guint out_security = adw_combo_row_get_selected (self->out_security_row);
  const char *in_port = row_text (self->in_port_row);
  const char *out_port = row_text (self->out_port_row);
  static const char *default_ports[] = { "993", "143", "995", "110", "465", "587", "25", NULL };

  if (in_port[0] == '\0' || g_strv_contains (default_ports, in_port))
    {
      g_autofree char *port = g_strdup_printf ("%u", lb_account_default_port (
        protocol, security_choices[MIN (in_security, G_N_ELEMENTS (security_choices) - 1)]));
      set_row_text (self->in_port_row, port);
    }
  if (out_port[0] == '\0' || g_strv_contains (default_ports, out_port))
    {
      g_autofree char *port = g_strdup_printf ("%u", lb_account_default_port (
        LB_ACCOUNT_PROTOCOL_SMTP,
        security_choices[MIN (out_security, G_N_ELEMENTS (security_choices) - 1)]));
      set_row_text (self->out_port_row, port);
    }
}

static gboolean
parse_port (AdwEntryRow *row,
            guint       *port)
{
  g_autofree char *text = row_text_stripped (row);
  guint64 value = 0;

  if (!g_ascii_string_to_unsigned (text, 10, 1, 65535, &value, NULL))
    return FALSE;
  *port = (guint) value;
  return TRUE;
}

/* The servers on the manual page, or NULL with the offending row marked. */
static gboolean
read_manual (LetterboxAccountAssistant *self,
             LbAccountServer          **incoming_out,
             LbAccountServer          **outgoing_out)
{
  g_autofree char *in_host = row_text_stripped (self->in_host_row);
  g_autofree char *out_host = row_text_stripped (self->out_host_row);
  g_autofree char *in_user = row_text_stripped (self->in_user_row);
  g_autofree char *out_user = row_text_stripped (self->out_user_row);
  g_autoptr(LbAccountServer) incoming = NULL;
  g_autoptr(LbAccountServer) outgoing = NULL;
  guint in_port = 0, out_port = 0;
  guint in_security = adw_combo_row_get_selected (self->in_security_row);
  guint out_security = adw_combo_row_get_selected (self->out_security_row);

  if (in_host[0] == '\0')
    {
      set_row_error (self->in_host_row, TRUE);
      show_error (self, _("Enter the name of the server that receives your mail."));
      return FALSE;
    }
  if (!parse_port (self->in_port_row, &in_port))
    {
      set_row_error (self->in_port_row, TRUE);
      show_error (self, _("The incoming server’s port must be a number from 1 to 65535."));
      return FALSE;
    }
  if (out_host[0] != '\0' && !parse_port (self->out_port_row, &out_port))
    {
      set_row_error (self->out_port_row, TRUE);
      show_error (self, _("The outgoing server’s port must be a number from 1 to 65535."));
      return FALSE;
    }

  incoming = lb_account_server_new (adw_combo_row_get_selected (self->in_protocol_row) == 1
                                    ? LB_ACCOUNT_PROTOCOL_POP3 : LB_ACCOUNT_PROTOCOL_IMAP,
                                    in_host, in_port,
                                    security_choices[MIN (in_security, 2)]);
  incoming->user = in_user[0] != '\0' ? g_steal_pointer (&in_user) : NULL;
  /* Choosing "None" on this page is the user's explicit consent (lb_account_validate
   * still refuses it unless asked for). */
  incoming->allow_insecure = incoming->security == LB_NET_SECURITY_NONE;
  if (out_host[0] != '\0')
    {
      outgoing = lb_account_server_new (LB_ACCOUNT_PROTOCOL_SMTP, out_host, out_port,
                                        security_choices[MIN (out_security, 2)]);
      outgoing->user = out_user[0] != '\0' ? g_steal_pointer (&out_user) : NULL;
      outgoing->allow_insecure = outgoing->security == LB_NET_SECURITY_NONE;
    }
  *incoming_out = g_steal_pointer (&incoming);
  *outgoing_out = g_steal_pointer (&outgoing);
  return TRUE;
}

/* ---- autoconfiguration -------------------------------------------------------------- */

static char *
describe_source (const LbAutoconfig *config,
                 const char         *domain)
{
  switch (config->method)
    {
    case LB_AUTOCONFIG_METHOD_FILE:
      /* Translators: the second %s is the URL the configuration was read from */
      return g_strdup_printf (_("Found settings for %s in the provider’s configuration (%s)."),
                              domain, config->source);
    case LB_AUTOCONFIG_METHOD_SRV:
      return g_strdup_printf (_("Found settings for %s in its DNS SRV records. DNS answers are "
                                "not authenticated: check that the servers below are your "
                                "provider’s."), domain);
    case LB_AUTOCONFIG_METHOD_PROBE:
    case LB_AUTOCONFIG_METHOD_DOCUMENT:
    default:
      return g_strdup_printf (_("Guessed settings for %s: these servers answered at the usual "
                                "addresses."), domain);
    }
}

static const LbAccountServer *
first_secure (GPtrArray *servers)
{
  for (guint i = 0; i < servers->len; i++)
    {
      const LbAccountServer *server = g_ptr_array_index (servers, i);

      if (server->security != LB_NET_SECURITY_NONE)
        return server;
    }
  return NULL;
}

static void
discover_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(LetterboxAccountAssistant) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) config = lb_autoconfig_discover_finish (result, &error);
  const char *address = row_text (self->address_row);
  g_autofree char *domain = NULL;
  const LbAccountServer *incoming = NULL;
  const LbAccountServer *outgoing = NULL;
  g_autofree char *text = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  lb_autoconfig_split_address (address, NULL, &domain, NULL);
  if (config != NULL)
    {
      incoming = first_secure (config->incoming);
      outgoing = first_secure (config->outgoing);
    }
  if (incoming == NULL)
    {
      g_autofree char *message = NULL;

      if (config != NULL)
        message = g_strdup_printf (_("The settings found for %s offer no encrypted connection. "
                                     "Enter the servers yourself."), domain);
      else
        message = g_strdup_printf (_("No settings found for %s (%s). Enter the servers "
                                     "yourself."), domain, error->message);
      self->servers_page = "manual";
      fill_manual_guess (self, address);
      show_page (self, "manual");
      show_error (self, message);
      return;
    }

  g_clear_pointer (&self->found, lb_autoconfig_free);
  self->found = g_steal_pointer (&config);
  text = describe_source (self->found, domain);
  gtk_label_set_text (self->found_label, text);
  {
    g_autofree char *in = describe_server (incoming);
    g_autofree char *in_user = g_strdup_printf (_("%s, user name %s"), in,
                                                incoming->user != NULL ? incoming->user : address);

    adw_action_row_set_subtitle (self->found_incoming_row, in_user);
  }
  if (outgoing != NULL)
    {
      g_autofree char *out = describe_server (outgoing);
      g_autofree char *out_user = g_strdup_printf (_("%s, user name %s"), out,
                                                   outgoing->user != NULL ? outgoing->user
                                                                          : address);

      adw_action_row_set_subtitle (self->found_outgoing_row, out_user);
    }
  else
    adw_action_row_set_subtitle (self->found_outgoing_row, _("None found: you can receive mail "
                                                            "but not send it"));
  fill_manual (self, incoming, outgoing);
  self->servers_page = "found";
  show_page (self, "found");
}

static void
start_discovery (LetterboxAccountAssistant *self)
{
  /* Testing aids, the same as letterbox-ctl's (documented in letterbox-ctl(1)). */
  const char *probe_hosts = g_getenv ("LETTERBOX_AUTOCONFIG_PROBE_HOSTS");
  g_auto(GStrv) probe_host_list = probe_hosts != NULL ? g_strsplit (probe_hosts, ",", -1) : NULL;
  LbAutoconfigOptions options = {
    .base_url_override = g_getenv ("LETTERBOX_AUTOCONFIG_URL"),
    .nameserver = g_getenv ("LETTERBOX_AUTOCONFIG_DNS"),
    .probe_hosts = (const char * const *) probe_host_list,
  };
  g_autofree char *domain = NULL;
  g_autofree char *text = NULL;

  g_free (self->discovered_address);
  self->discovered_address = g_strdup (row_text (self->address_row));
  self->servers_page = NULL;
  lb_autoconfig_split_address (row_text (self->address_row), NULL, &domain, NULL);
  text = g_strdup_printf (_("Looking up the settings for %s…"), domain);
  show_busy (self, text, "account");
  lb_autoconfig_discover_async (row_text (self->address_row), &options, self->cancellable,
                                discover_cb, g_object_ref (self));
}

/* ---- trying the servers ------------------------------------------------------------- */

static void
reset_account (LetterboxAccountAssistant *self,
               LbAccountServer           *incoming,
               LbAccountServer           *outgoing)
{
  g_autofree char *name = row_text_stripped (self->name_row);
  g_autofree char *address = row_text_stripped (self->address_row);
  g_autofree char *fingerprint = NULL;

  /* A certificate accepted earlier stays accepted while the servers stay the same. */
  if (self->account != NULL && self->account->fingerprint != NULL &&
      self->account->incoming != NULL &&
      g_strcmp0 (self->account->incoming->host, incoming->host) == 0)
    fingerprint = g_strdup (self->account->fingerprint);
  g_clear_pointer (&self->account, lb_account_free);

  if (self->original != NULL)
    {
      self->account = lb_account_copy (self->original);
      g_clear_pointer (&self->account->incoming, lb_account_server_free);
      g_clear_pointer (&self->account->outgoing, lb_account_server_free);
      if (fingerprint == NULL && g_strcmp0 (self->original->incoming->host, incoming->host) == 0)
        fingerprint = g_strdup (self->original->fingerprint);
      g_clear_pointer (&self->account->fingerprint, g_free);
    }
  else
    {
      /* The id is chosen when saving; this one only names the account in messages. */
      self->account = lb_account_new ("new");
      self->account->display_name = g_strdup (address);
      self->account->password_source = LB_ACCOUNT_PASSWORD_KEYRING;
    }
  /* The first identity is the one these pages show; others stay as they are. */
  if (self->account->identities->len > 0)
    {
      LbAccountIdentity *identity = g_ptr_array_index (self->account->identities, 0);

      g_free (identity->name);
      identity->name = name[0] != '\0' ? g_strdup (name) : NULL;
      g_free (identity->address);
      identity->address = g_strdup (address);
    }
  else
    lb_account_add_identity (self->account, name[0] != '\0' ? name : NULL, address);
  self->account->incoming = incoming;
  self->account->outgoing = outgoing;
  self->account->fingerprint = g_steal_pointer (&fingerprint);
}

static void
server_failed (LetterboxAccountAssistant *self,
               const LbAccountServer     *server,
               const GError              *error)
{
  g_autofree char *where = host_port (server->host, server->port);
  g_autofree char *message = NULL;

  switch (lb_account_check_classify (error))
    {
    case LB_ACCOUNT_CHECK_PASSWORD:
      message = g_strdup_printf (_("%s refused the user name or password. Check your "
                                   "password and try again. (The server said: %s)"),
                                 where, error->message);
      show_page (self, "account");
      set_row_error (self->password_row, TRUE);
      gtk_widget_grab_focus (GTK_WIDGET (self->password_row));
      break;
    case LB_ACCOUNT_CHECK_UNREACHABLE:
      message = g_strdup_printf (_("Cannot reach %s: %s. Check the server name and port, and "
                                   "your network connection."), where, error->message);
      show_page (self, "manual");
      set_row_error (server->protocol == LB_ACCOUNT_PROTOCOL_SMTP ? self->out_host_row
                                                                  : self->in_host_row, TRUE);
      break;
    case LB_ACCOUNT_CHECK_SECURITY:
    case LB_ACCOUNT_CHECK_CERTIFICATE:
    case LB_ACCOUNT_CHECK_OTHER:
    case LB_ACCOUNT_CHECK_OK:
    default:
      message = g_strdup_printf (_("Signing in to %s failed: %s"), where, error->message);
      show_page (self, "manual");
      break;
    }
  show_error (self, message);
}

static void
format_validity (GString   *out,
                 GDateTime *when)
{
  g_autofree char *text = NULL;

  if (when == NULL)
    {
      g_string_append (out, _("unknown"));
      return;
    }
  text = g_date_time_format (when, "%Y-%m-%d");
  g_string_append (out, text);
}

static void
show_certificate (LetterboxAccountAssistant *self,
                  const LbAccountServer     *server,
                  GTlsCertificate           *certificate,
                  const GError              *error)
{
  g_autofree char *where = host_port (server->host, server->port);
  g_autofree char *fingerprint = lb_certificate_dup_fingerprint (certificate);
  g_autofree char *subject = NULL;
  g_autofree char *issuer = NULL;
  g_autoptr(GDateTime) not_before = NULL;
  g_autoptr(GDateTime) not_after = NULL;
  g_autoptr(GString) validity = g_string_new (NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *explanation = NULL;
  g_autofree char *server_text = NULL;
  g_autofree char *why = NULL;

  /* The account can trust one certificate besides the CA-verified ones. */
  if (self->account->fingerprint != NULL &&
      g_strcmp0 (self->account->fingerprint, fingerprint) != 0)
    {
      g_autofree char *message =
        g_strdup_printf (_("%s presents a different untrusted certificate than the other "
                           "server. Letterbox can trust only one such certificate per "
                           "account: %s"), where, error->message);

      show_page (self, "manual");
      show_error (self, message);
      return;
    }

  g_object_get (certificate, "subject-name", &subject, "issuer-name", &issuer,
                "not-valid-before", &not_before, "not-valid-after", &not_after, NULL);
  g_string_append (validity, _("from "));
  format_validity (validity, not_before);
  g_string_append (validity, _(" until "));
  format_validity (validity, not_after);
  if (not_after != NULL && g_date_time_compare (now, not_after) > 0)
    g_string_append (validity, _(" (expired)"));
  else if (not_before != NULL && g_date_time_compare (now, not_before) < 0)
    g_string_append (validity, _(" (not valid yet)"));

  /* The error ends with the fingerprint, which the page shows on its own. */
  why = g_strdup (error->message);
  if (strstr (why, " (SHA-256") != NULL)
    *strstr (why, " (SHA-256") = '\0';
  explanation = g_strdup_printf (_("Letterbox cannot confirm that the server it reached is "
                                   "really %s. %s.\n\nAccept the certificate only if you "
                                   "expected it, for example because your organisation runs "
                                   "its own server, and its fingerprint matches the one you "
                                   "were given. Letterbox then trusts exactly this certificate "
                                   "for this account."), server->host, why);
  server_text = g_strdup_printf (_("%s (%s)"), where, protocol_label (server->protocol));

  g_free (self->certificate_fingerprint);
  self->certificate_fingerprint = g_strdup (fingerprint);
  gtk_label_set_text (self->cert_explanation_label, explanation);
  adw_action_row_set_subtitle (self->cert_server_row, server_text);
  adw_action_row_set_subtitle (self->cert_subject_row, subject != NULL ? subject : _("unknown"));
  adw_action_row_set_subtitle (self->cert_issuer_row, issuer != NULL ? issuer : _("unknown"));
  adw_action_row_set_subtitle (self->cert_validity_row, validity->str);
  /* 32 pairs as two lines of 16, so a line never breaks inside a pair. */
  {
    g_autofree char *two_lines = g_strdup (fingerprint);

    if (strlen (two_lines) == 95)
      two_lines[47] = '\n';
    gtk_label_set_text (self->cert_fingerprint_label, two_lines);
  }
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->cert_fingerprint_label),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, fingerprint, -1);
  show_error (self, NULL);
  show_page (self, "certificate");
}

static void
check_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(LetterboxAccountAssistant) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  const LbAccountServer *server;

  if (lb_account_check_server_finish (result, &certificate, &error))
    {
      self->checking++;
      check_next_server (self);
      return;
    }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  server = self->checking == 0 ? self->account->incoming : self->account->outgoing;
  if (certificate != NULL && lb_account_check_classify (error) == LB_ACCOUNT_CHECK_CERTIFICATE)
    show_certificate (self, server, certificate, error);
  else
    server_failed (self, server, error);
}

/* ---- saving ------------------------------------------------------------------------- */

static char *
id_from_address (const char *address)
{
  GString *id = g_string_new (NULL);

  for (const char *p = address; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p) || *p == '.' || *p == '_' || *p == '-')
        g_string_append_c (id, g_ascii_tolower (*p));
      else if (id->len > 0 && id->str[id->len - 1] != '-')
        g_string_append_c (id, '-');
    }
  while (id->len > 0 && id->str[0] == '.')
    g_string_erase (id, 0, 1);
  if (id->len == 0)
    g_string_append (id, "account");
  return g_string_free (id, FALSE);
}

/* In a worker thread: an id no account file uses yet (the file listing is disk I/O). */
static void
pick_id_thread (GTask        *task,
                gpointer      source,
                gpointer      task_data,
                GCancellable *cancellable)
{
  const char *base = task_data;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) ids = lb_account_list_ids (&error);

  if (ids == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  for (guint n = 1; n < 1000; n++)
    {
      g_autofree char *id = n == 1 ? g_strdup (base) : g_strdup_printf ("%s-%u", base, n);

      if (!g_strv_contains ((const char * const *) ids, id))
        {
          g_task_return_pointer (task, g_steal_pointer (&id), g_free);
          return;
        }
    }
  g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID,
                           _("Too many accounts are named after %s"), base);
}

/* In a worker thread: writes the account file. */
static void
save_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  const LbAccount *account = task_data;
  GError *error = NULL;

  if (!lb_account_save (account, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
sync_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;

  /* The service picks up a new account file by itself and syncs it; asking only makes
   * sure it runs (D-Bus activation). Its errors show where the window shows sync state. */
  if (!lb_bus_backend1_call_sync_finish (LB_BUS_BACKEND1 (object), &results, result, &error))
    g_debug ("Sync after adding an account: %s", error->message);
}

static void
saved_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(LetterboxAccountAssistant) self = user_data;
  g_autoptr(GError) error = NULL;
  GtkApplication *app;
  g_autofree char *description = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_autofree char *message = g_strdup_printf (_("The account could not be saved: %s"),
                                                  error->message);
      show_page (self, self->servers_page);
      show_error (self, message);
      return;
    }

  g_free (self->saved_id);
  self->saved_id = g_strdup (self->account->id);
  app = gtk_window_get_application (GTK_WINDOW (self));
  if (app == NULL)
    {
      GtkWindow *parent = gtk_window_get_transient_for (GTK_WINDOW (self));
      app = parent != NULL ? gtk_window_get_application (parent) : NULL;
    }
  if (LETTERBOX_IS_APPLICATION (app))
    {
      LbBusBackend1 *backend = letterbox_application_get_backend (LETTERBOX_APPLICATION (app));

      if (backend != NULL)
        {
          const char *ids[] = { self->account->id, NULL };

          lb_bus_backend1_call_sync (backend, ids, g_variant_new ("a{sv}", NULL), NULL,
                                     sync_cb, NULL);
        }
    }

  if (self->edit_id != NULL)
    {
      adw_status_page_set_title (self->done_page, _("Account Saved"));
      description = g_strdup_printf (_("The new settings of %s are in use."),
                                     lb_account_get_address (self->account));
    }
  else
    description = g_strdup_printf (_("%s is ready. Its folders appear in the sidebar as they "
                                     "are downloaded."),
                                   lb_account_get_address (self->account));
  adw_status_page_set_description (self->done_page, description);
  show_error (self, NULL);
  show_page (self, "done");
  g_signal_emit (self, signals[SIGNAL_ACCOUNT_SAVED], 0, self->account->id);
}

static void
write_account_file (LetterboxAccountAssistant *self)
{
  g_autoptr(GTask) task = g_task_new (NULL, self->cancellable, saved_cb, g_object_ref (self));

  g_task_set_task_data (task, lb_account_copy (self->account), (GDestroyNotify) lb_account_free);
  g_task_run_in_thread (task, save_thread);
}

static void store_next_password (LetterboxAccountAssistant *self,
                                 guint                      index);

static void
password_stored_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(LetterboxAccountAssistant) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_account_set_password_finish (result, &error))
    {
      g_autofree char *message = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      message = g_strdup_printf (_("The password could not be stored in the keyring, so the "
                                   "account was not added: %s"), error->message);
      show_page (self, "account");
      show_error (self, message);
      return;
    }
  store_next_password (self, GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (self),
                                                                  "storing")) + 1);
}

/* The keyring first, then the file: the background service syncs an account as soon as
 * its file appears, and must find the password there. */
static void
store_next_password (LetterboxAccountAssistant *self,
                     guint                      index)
{
  const LbAccountServer *server = index == 0 ? self->account->incoming
                                             : index == 1 ? self->account->outgoing : NULL;

  if (index == 1 && server == NULL)
    index = 2;
  if (index >= 2 || self->password == NULL ||
      self->account->password_source != LB_ACCOUNT_PASSWORD_KEYRING)
    {
      write_account_file (self);
      return;
    }
  g_object_set_data (G_OBJECT (self), "storing", GUINT_TO_POINTER (index));
  lb_account_set_password_async (self->account, server->protocol, self->password,
                                 self->cancellable, password_stored_cb, g_object_ref (self));
}

static void
id_picked_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(LetterboxAccountAssistant) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = g_task_propagate_pointer (G_TASK (result), &error);

  if (id == NULL)
    {
      g_autofree char *message = g_strdup_printf (_("The account could not be saved: %s"),
                                                  error->message);
      show_page (self, self->servers_page);
      show_error (self, message);
      return;
    }
  g_free (self->account->id);
  self->account->id = g_steal_pointer (&id);
  store_next_password (self, 0);
}

static void
save_account (LetterboxAccountAssistant *self)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  if (self->edit_id != NULL)
    {
      g_free (self->account->id);
      self->account->id = g_strdup (self->edit_id);
    }
  if (!lb_account_validate (self->account, &error))
    {
      show_page (self, self->servers_page);
      show_error (self, error->message);
      return;
    }
  show_busy (self, _("Saving the account…"), self->servers_page);
  if (self->edit_id != NULL)
    {
      store_next_password (self, 0);
      return;
    }
  task = g_task_new (NULL, self->cancellable, id_picked_cb, g_object_ref (self));
  g_task_set_task_data (task, id_from_address (lb_account_get_address (self->account)), g_free);
  g_task_run_in_thread (task, pick_id_thread);
}

static void
check_next_server (LetterboxAccountAssistant *self)
{
  const LbAccountServer *server = self->checking == 0 ? self->account->incoming
                                  : self->checking == 1 ? self->account->outgoing : NULL;
  g_autofree char *where = NULL;
  g_autofree char *text = NULL;

  if (server == NULL)
    {
      self->checking = 2;
      save_account (self);
      return;
    }
  where = host_port (server->host, server->port);
  text = g_strdup_printf (_("Signing in to %s…"), where);
  show_busy (self, text, self->servers_page);
  lb_account_check_server_async (self->account, server, self->password, self->cancellable,
                                 check_cb, g_object_ref (self));
}

static void
stored_password_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(LetterboxAccountAssistant) self = user_data;
  g_autoptr(GError) error = NULL;
  char *password = lb_account_get_password_finish (result, &error);

  if (password == NULL)
    {
      g_autofree char *message = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      message = g_strdup_printf (_("Enter the password: %s"), error->message);
      show_page (self, "account");
      set_row_error (self->password_row, TRUE);
      show_error (self, message);
      return;
    }
  self->password = password;
  self->checking = 0;
  check_next_server (self);
}

/* Tries the servers with the current settings, from the first. */
static void
start_checking (LetterboxAccountAssistant *self,
                LbAccountServer           *incoming,
                LbAccountServer           *outgoing)
{
  const char *typed = row_text (self->password_row);

  reset_account (self, incoming, outgoing);
  if (self->password != NULL)
    memset (self->password, 0, strlen (self->password));
  g_clear_pointer (&self->password, g_free);

  /* Changing an account without typing a password: the stored one. */
  if (typed[0] == '\0' && self->edit_id != NULL)
    {
      show_busy (self, _("Reading the password from the keyring…"), self->servers_page);
      lb_account_get_password_async (self->original, self->account->incoming->protocol,
                                     self->cancellable, stored_password_cb, g_object_ref (self));
      return;
    }
  self->password = g_strdup (typed);
  self->checking = 0;
  check_next_server (self);
}

/* ---- the buttons ------------------------------------------------------------------- */

static gboolean
check_identity (LetterboxAccountAssistant *self)
{
  g_autofree char *address = row_text_stripped (self->address_row);
  g_autoptr(GError) error = NULL;

  if (!lb_autoconfig_split_address (address, NULL, NULL, &error))
    {
      g_autofree char *message = g_strdup_printf (_("“%s” is not an e-mail address: %s"),
                                                  address, error->message);
      set_row_error (self->address_row, TRUE);
      gtk_widget_grab_focus (GTK_WIDGET (self->address_row));
      show_error (self, message);
      return FALSE;
    }
  set_row_text (self->address_row, address);
  /* Changing an account, an empty password keeps the stored one. */
  if (row_text (self->password_row)[0] == '\0' && self->edit_id == NULL)
    {
      set_row_error (self->password_row, TRUE);
      gtk_widget_grab_focus (GTK_WIDGET (self->password_row));
      show_error (self, _("Enter the password of your mail account."));
      return FALSE;
    }
  return TRUE;
}

static void
next_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  LetterboxAccountAssistant *self = LETTERBOX_ACCOUNT_ASSISTANT (widget);
  const char *page = gtk_stack_get_visible_child_name (self->stack);
  LbAccountServer *incoming = NULL;
  LbAccountServer *outgoing = NULL;

  if (strcmp (page, "done") == 0)
    {
      gtk_window_close (GTK_WINDOW (self));
      return;
    }

  clear_errors (self);
  if (strcmp (page, "account") == 0)
    {
      if (!check_identity (self))
        return;
      if (self->edit_id != NULL)
        {
          show_page (self, "manual");
          return;
        }
      /* A second try after a wrong password: the same servers. */
      if (self->servers_page != NULL &&
          g_strcmp0 (self->discovered_address, row_text (self->address_row)) == 0)
        {
          if (!read_manual (self, &incoming, &outgoing))
            {
              show_page (self, "manual");
              return;
            }
          start_checking (self, incoming, outgoing);
          return;
        }
      start_discovery (self);
    }
  else if (strcmp (page, "found") == 0 || strcmp (page, "manual") == 0)
    {
      if (strcmp (page, "manual") == 0)
        self->servers_page = "manual";
      if (!check_identity (self))
        {
          show_page (self, "account");
          return;
        }
      if (!read_manual (self, &incoming, &outgoing))
        return;
      start_checking (self, incoming, outgoing);
    }
  else if (strcmp (page, "certificate") == 0)
    {
      g_free (self->account->fingerprint);
      self->account->fingerprint = g_strdup (self->certificate_fingerprint);
      check_next_server (self);
    }
}

static void
back_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  LetterboxAccountAssistant *self = LETTERBOX_ACCOUNT_ASSISTANT (widget);
  const char *page = gtk_stack_get_visible_child_name (self->stack);

  clear_errors (self);
  if (strcmp (page, "busy") == 0)
    {
      g_cancellable_cancel (self->cancellable);
      show_page (self, self->busy_return != NULL ? self->busy_return : "account");
    }
  else if (strcmp (page, "certificate") == 0)
    show_page (self, self->servers_page != NULL ? self->servers_page : "manual");
  else if (strcmp (page, "account") == 0)
    gtk_window_close (GTK_WINDOW (self));
  else
    show_page (self, "account");
}

static void
manual_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *parameter)
{
  LetterboxAccountAssistant *self = LETTERBOX_ACCOUNT_ASSISTANT (widget);

  clear_errors (self);
  fill_manual_guess (self, row_text (self->address_row));
  self->servers_page = "manual";
  show_page (self, "manual");
}

/* ---- the object ------------------------------------------------------------------- */

static void
letterbox_account_assistant_dispose (GObject *object)
{
  LetterboxAccountAssistant *self = LETTERBOX_ACCOUNT_ASSISTANT (object);

  g_cancellable_cancel (self->cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), LETTERBOX_TYPE_ACCOUNT_ASSISTANT);

  G_OBJECT_CLASS (letterbox_account_assistant_parent_class)->dispose (object);
}

static void
letterbox_account_assistant_finalize (GObject *object)
{
  LetterboxAccountAssistant *self = LETTERBOX_ACCOUNT_ASSISTANT (object);

  g_clear_object (&self->cancellable);
  g_free (self->edit_id);
  g_clear_pointer (&self->original, lb_account_free);
  g_clear_pointer (&self->account, lb_account_free);
  g_clear_pointer (&self->found, lb_autoconfig_free);
  if (self->password != NULL)
    memset (self->password, 0, strlen (self->password));
  g_free (self->password);
  g_free (self->certificate_fingerprint);
  g_free (self->saved_id);
  g_free (self->discovered_address);

  G_OBJECT_CLASS (letterbox_account_assistant_parent_class)->finalize (object);
}

static void
letterbox_account_assistant_class_init (LetterboxAccountAssistantClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_account_assistant_dispose;
  object_class->finalize = letterbox_account_assistant_finalize;

  /**
   * LetterboxAccountAssistant::account-saved:
   * @id: the account's id
   *
   * The account file was written (and its password stored). Emitted in the main context.
   */
  signals[SIGNAL_ACCOUNT_SAVED] = g_signal_new ("account-saved", G_TYPE_FROM_CLASS (klass),
                                                G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-account-assistant.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, window_title);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, back_button);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, next_button);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, error_group_account);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, error_group_found);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, error_group_manual);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, error_label_account);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, error_label_found);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, error_label_manual);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, name_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, address_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, password_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, manual_button);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, busy_spinner);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, busy_page);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, found_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, found_incoming_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, found_outgoing_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, in_protocol_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, in_host_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, in_port_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, in_security_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, in_user_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, out_host_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, out_port_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, out_security_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, out_user_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, cert_explanation_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, cert_server_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, cert_subject_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, cert_issuer_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, cert_validity_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, cert_fingerprint_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxAccountAssistant, done_page);

  gtk_widget_class_install_action (widget_class, "assistant.next", NULL, next_action);
  gtk_widget_class_install_action (widget_class, "assistant.back", NULL, back_action);
  gtk_widget_class_install_action (widget_class, "assistant.manual", NULL, manual_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
letterbox_account_assistant_init (LetterboxAccountAssistant *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
  {
    g_autoptr(GtkListItemFactory) factory = letterbox_combo_row_factory_new ();

    adw_combo_row_set_factory (self->in_protocol_row, factory);
    adw_combo_row_set_factory (self->in_security_row, factory);
    adw_combo_row_set_factory (self->out_security_row, factory);
  }


  g_signal_connect_swapped (self->in_protocol_row, "notify::selected",
                            G_CALLBACK (manual_choice_changed_cb), self);
  g_signal_connect_swapped (self->in_security_row, "notify::selected",
                            G_CALLBACK (manual_choice_changed_cb), self);
  g_signal_connect_swapped (self->out_security_row, "notify::selected",
                            G_CALLBACK (manual_choice_changed_cb), self);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->busy_spinner),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Working"), -1);

  gtk_window_set_default_widget (GTK_WINDOW (self), GTK_WIDGET (self->next_button));
  show_page (self, "account");
}

/**
 * letterbox_account_assistant_new:
 * @parent: (nullable): the window it belongs to
 *
 * Returns: (transfer full): an assistant that adds a new account; present it
 */
LetterboxAccountAssistant *
letterbox_account_assistant_new (GtkWindow *parent)
{
  return g_object_new (LETTERBOX_TYPE_ACCOUNT_ASSISTANT,
                       "transient-for", parent,
                       "application", parent != NULL ? gtk_window_get_application (parent) : NULL,
                       NULL);
}

/**
 * letterbox_account_assistant_new_for_account:
 * @account_id: the account to change
 *
 * The same pages for an account that exists: its servers on the manual page, tried with
 * the stored password (or a new one typed on the first page) before anything is saved.
 *
 * Returns: (transfer full) (nullable): the assistant, or %NULL when the account cannot
 *   be read (@error says why)
 */
LetterboxAccountAssistant *
letterbox_account_assistant_new_for_account (GtkWindow   *parent,
                                             const char  *account_id,
                                             GError     **error)
{
  g_autoptr(LbAccount) account = lb_account_load (account_id, error);
  LetterboxAccountAssistant *self;
  const char *name = NULL;

  if (account == NULL)
    return NULL;

  self = letterbox_account_assistant_new (parent);
  self->edit_id = g_strdup (account_id);
  gtk_window_set_title (GTK_WINDOW (self), _("Server Settings"));
  adw_window_title_set_title (self->window_title, _("Server Settings"));
  adw_window_title_set_subtitle (self->window_title, lb_account_get_address (account));
  if (account->identities->len > 0)
    name = ((LbAccountIdentity *) g_ptr_array_index (account->identities, 0))->name;
  set_row_text (self->name_row, name);
  set_row_text (self->address_row, lb_account_get_address (account));
  if (account->password_source == LB_ACCOUNT_PASSWORD_KEYRING)
    adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->password_row),
                                   _("New _Password (empty: keep the stored one)"));
  fill_manual (self, account->incoming, account->outgoing);
  self->servers_page = "manual";
  self->original = g_steal_pointer (&account);
  show_page (self, "account");
  return self;
}

/**
 * letterbox_account_assistant_check_now:
 *
 * For an assistant made by letterbox_account_assistant_new_for_account(): signs in to
 * the account's servers at once, as Next on its server page does, so that a certificate
 * to review (Review Certificate in the window) is the first page shown.
 */
void
letterbox_account_assistant_check_now (LetterboxAccountAssistant *self)
{
  g_return_if_fail (LETTERBOX_IS_ACCOUNT_ASSISTANT (self));
  g_return_if_fail (self->edit_id != NULL);

  show_page (self, "manual");
  gtk_widget_activate_action (GTK_WIDGET (self), "assistant.next", NULL);
}

/**
 * letterbox_account_assistant_get_account_id:
 *
 * Returns: (nullable): the id of the account saved, once it is
 */
const char *
letterbox_account_assistant_get_account_id (LetterboxAccountAssistant *self)
{
  g_return_val_if_fail (LETTERBOX_IS_ACCOUNT_ASSISTANT (self), NULL);

  return self->saved_id;
}
