/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lb-account.h"
#include "lb-test-util.h"

/* Account files: round trips, permissions, listing, every validation error, server URLs
 * and password commands. The keyring side is in tests/integration/test-secret.c. */

#define FINGERPRINT "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:" \
                    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"

static char *config_dir;

/* Each test gets an empty config directory of its own. */
static void
fresh_config_dir (void)
{
  g_autofree char *home = g_strdup (g_getenv ("HOME"));

  g_free (config_dir);
  config_dir = g_build_filename (home, "config-XXXXXX", NULL);
  g_assert_nonnull (g_mkdtemp (config_dir));
  g_setenv ("LETTERBOX_CONFIG_DIR", config_dir, TRUE);
}

static LbAccount *
make_account (const char *id)
{
  LbAccount *account = lb_account_new (id);

  lb_account_add_identity (account, "Alice Example", "alice@example.org");
  account->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP, "imap.example.org", 0,
                                             LB_NET_SECURITY_TLS);
  account->outgoing = lb_account_server_new (LB_ACCOUNT_PROTOCOL_SMTP, "smtp.example.org", 0,
                                             LB_NET_SECURITY_STARTTLS);
  return account;
}

static void
assert_servers_equal (const LbAccountServer *a,
                      const LbAccountServer *b)
{
  if (a == NULL || b == NULL)
    {
      g_assert_true (a == b);
      return;
    }
  g_assert_cmpint (a->protocol, ==, b->protocol);
  g_assert_cmpstr (a->host, ==, b->host);
  g_assert_cmpuint (a->port, ==, b->port);
  g_assert_cmpint (a->security, ==, b->security);
  g_assert_cmpstr (a->user, ==, b->user);
  g_assert_cmpstr (a->auth, ==, b->auth);
  g_assert_cmpint (a->allow_insecure, ==, b->allow_insecure);
}

static void
assert_accounts_equal (const LbAccount *a,
                       const LbAccount *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpstr (a->display_name, ==, b->display_name);
  g_assert_cmpuint (a->identities->len, ==, b->identities->len);
  for (guint i = 0; i < a->identities->len; i++)
    {
      const LbAccountIdentity *x = g_ptr_array_index (a->identities, i);
      const LbAccountIdentity *y = g_ptr_array_index (b->identities, i);

      g_assert_cmpstr (x->name, ==, y->name);
      g_assert_cmpstr (x->address, ==, y->address);
    }
  assert_servers_equal (a->incoming, b->incoming);
  assert_servers_equal (a->outgoing, b->outgoing);
  g_assert_cmpstr (a->ca_file, ==, b->ca_file);
  g_assert_cmpstr (a->fingerprint, ==, b->fingerprint);
  g_assert_cmpint (a->password_source, ==, b->password_source);
  g_assert_cmpstr (a->password_command, ==, b->password_command);
  g_assert_cmpint (a->bodies, ==, b->bodies);
  g_assert_cmpuint (a->bodies_days, ==, b->bodies_days);
  g_assert_cmpint (a->leave_on_server, ==, b->leave_on_server);
  g_assert_cmpuint (a->delete_after_days, ==, b->delete_after_days);
}

static void
test_round_trip (void)
{
  g_autoptr(LbAccount) account = make_account ("work.main_1-x");
  g_autoptr(LbAccount) loaded = NULL;
  g_autoptr(LbAccount) pop = make_account ("pop");
  g_autoptr(LbAccount) pop_loaded = NULL;
  g_autoptr(LbAccount) copy = NULL;
  g_autoptr(LbAccount) pop_copy = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *again = NULL;
  GStatBuf st;

  fresh_config_dir ();
  account->display_name = g_strdup ("Wörk “main”");
  lb_account_add_identity (account, NULL, "alias+tag@example.org");
  account->incoming->user = g_strdup ("alice@example.org");
  account->incoming->auth = (g_free (account->incoming->auth), g_strdup ("SCRAM-SHA-256"));
  account->outgoing->host = (g_free (account->outgoing->host), g_strdup ("::1"));
  account->outgoing->security = LB_NET_SECURITY_NONE;
  account->outgoing->port = 2525;
  account->fingerprint = g_strdup (FINGERPRINT);
  account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  account->password_command = g_strdup ("pass show mail/work; echo \"x=y # z\"");
  account->bodies = LB_ACCOUNT_BODIES_RECENT;
  account->bodies_days = 14;

  g_assert_true (lb_account_save (account, &error));
  g_assert_no_error (error);

  dir = lb_account_dir ();
  g_assert_true (g_str_has_prefix (dir, config_dir));
  path = g_build_filename (dir, "work.main_1-x.ini", NULL);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_stat (dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_null (strstr (contents, "password="));
  g_assert_nonnull (strstr (contents, "password-source=command"));

  loaded = lb_account_load ("work.main_1-x", &error);
  g_assert_no_error (error);
  assert_accounts_equal (account, loaded);
  g_assert_cmpstr (lb_account_get_address (loaded), ==, "alice@example.org");
  again = lb_account_to_data (loaded, NULL);
  g_assert_cmpstr (again, ==, contents);

  /* POP3 with its policy, a CA file and the keyring; saving again replaces the file. */
  pop->incoming->protocol = LB_ACCOUNT_PROTOCOL_POP3;
  pop->incoming->port = 995;
  g_clear_pointer (&pop->outgoing, lb_account_server_free);
  pop->ca_file = g_strdup (path);
  pop->leave_on_server = TRUE;
  pop->delete_after_days = 7;
  pop->bodies = LB_ACCOUNT_BODIES_ON_DEMAND;
  g_assert_true (lb_account_save (pop, &error));
  pop->delete_after_days = 10;
  g_assert_true (lb_account_save (pop, &error));
  g_assert_no_error (error);
  pop_loaded = lb_account_load ("pop", &error);
  g_assert_no_error (error);
  assert_accounts_equal (pop, pop_loaded);

  /* A copy is equal and shares nothing. */
  copy = lb_account_copy (account);
  assert_accounts_equal (account, copy);
  g_assert_true (copy->identities != account->identities);
  g_assert_true (copy->incoming != account->incoming);
  g_assert_true (copy->password_command != account->password_command);
  pop_copy = lb_account_copy (pop_loaded);
  assert_accounts_equal (pop, pop_copy);
}

static void
test_defaults (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAccount) account = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *expected = NULL;

  account = lb_account_load_from_data ("min",
                                       "[identity]\naddress=a@b.example\n"
                                       "[incoming]\nhost=mail.example\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (account->incoming->protocol, ==, LB_ACCOUNT_PROTOCOL_IMAP);
  g_assert_cmpint (account->incoming->security, ==, LB_NET_SECURITY_TLS);
  g_assert_cmpuint (account->incoming->port, ==, 993);
  g_assert_cmpstr (account->incoming->auth, ==, "auto");
  g_assert_null (account->incoming->user);
  g_assert_null (account->outgoing);
  g_assert_cmpint (account->password_source, ==, LB_ACCOUNT_PASSWORD_KEYRING);
  g_assert_cmpint (account->bodies, ==, LB_ACCOUNT_BODIES_ALL);
  g_assert_true (account->leave_on_server);
  g_assert_cmpuint (account->delete_after_days, ==, 0);
  g_clear_pointer (&account, lb_account_free);

  account = lb_account_load_from_data ("min",
                                       "[identity]\naddress=a@b.example\n"
                                       "[incoming]\nprotocol=pop3\nhost=mail.example\n"
                                       "security=starttls\n"
                                       "[outgoing]\nhost=smtp.example\nsecurity=tls\n"
                                       "[future]\nkey=ignored\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (account->incoming->port, ==, 110);
  g_assert_cmpuint (account->outgoing->port, ==, 465);
  g_assert_cmpint (account->outgoing->protocol, ==, LB_ACCOUNT_PROTOCOL_SMTP);

  /* Without the override, the XDG directory. */
  g_unsetenv ("LETTERBOX_CONFIG_DIR");
  dir = lb_account_dir ();
  expected = g_build_filename (g_get_user_config_dir (), "letterbox", "accounts", NULL);
  g_assert_cmpstr (dir, ==, expected);
}

static void
test_list_remove (void)
{
  const char *ids[] = { "b", "a", "c.d", "A" };
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) listed = NULL;
  g_autoptr(GPtrArray) all = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *stray = NULL;
  g_autofree char *hidden = NULL;
  LbAccount *loaded;

  fresh_config_dir ();
  listed = lb_account_list_ids (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (listed), ==, 0);
  g_clear_pointer (&listed, g_strfreev);

  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_autoptr(LbAccount) account = make_account (ids[i]);

      g_assert_true (lb_account_save (account, &error));
      g_assert_no_error (error);
    }
  dir = lb_account_dir ();
  stray = g_build_filename (dir, "notes.txt", NULL);
  hidden = g_build_filename (dir, ".hidden.ini", NULL);
  g_assert_true (g_file_set_contents (stray, "x", -1, NULL));
  g_assert_true (g_file_set_contents (hidden, "x", -1, NULL));

  listed = lb_account_list_ids (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (listed), ==, 4);
  g_assert_cmpstr (listed[0], ==, "A");
  g_assert_cmpstr (listed[1], ==, "a");
  g_assert_cmpstr (listed[2], ==, "b");
  g_assert_cmpstr (listed[3], ==, "c.d");
  g_clear_pointer (&listed, g_strfreev);

  all = lb_account_load_all (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, ==, 4);
  g_assert_cmpstr (((LbAccount *) g_ptr_array_index (all, 3))->id, ==, "c.d");

  g_assert_true (lb_account_remove ("b", &error));
  g_assert_no_error (error);
  g_assert_false (lb_account_remove ("b", &error));
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND);
  g_clear_error (&error);
  loaded = lb_account_load ("b", &error);
  g_assert_null (loaded);
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "“b”"));
  g_clear_error (&error);
  g_assert_false (lb_account_remove ("../escape", &error));
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_null (lb_account_load ("../escape", &error));
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
  g_clear_error (&error);

  listed = lb_account_list_ids (&error);
  g_assert_cmpuint (g_strv_length (listed), ==, 3);
  g_assert_cmpstr (listed[2], ==, "c.d");

  /* A broken file names itself when everything is loaded. */
  {
    g_autofree char *broken = g_build_filename (dir, "broken.ini", NULL);
    g_autoptr(GPtrArray) none = NULL;

    g_assert_true (g_file_set_contents (broken, "[incoming]\nport=x\n", -1, NULL));
    none = lb_account_load_all (&error);
    g_assert_null (none);
    g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "broken"));
    g_assert_nonnull (strstr (error->message, "port"));
  }
}

typedef void (*Mutate) (LbAccount *account);

static void bad_id (LbAccount *a) { g_free (a->id); a->id = g_strdup ("a/b"); }
static void dot_id (LbAccount *a) { g_free (a->id); a->id = g_strdup (".hidden"); }
static void empty_id (LbAccount *a) { g_free (a->id); a->id = g_strdup (""); }
static void space_id (LbAccount *a) { g_free (a->id); a->id = g_strdup ("my account"); }
static void no_identity (LbAccount *a) { g_ptr_array_set_size (a->identities, 0); }
static void no_address (LbAccount *a) { lb_account_add_identity (a, "Bob", NULL); }
static void bad_address (LbAccount *a) { lb_account_add_identity (a, NULL, "bob.example.org"); }
static void two_ats (LbAccount *a) { lb_account_add_identity (a, NULL, "bob@x@example.org"); }
static void angle_address (LbAccount *a) { lb_account_add_identity (a, NULL, "<bob@example.org>"); }
static void space_address (LbAccount *a) { lb_account_add_identity (a, NULL, "bob @example.org"); }
static void no_incoming (LbAccount *a) { g_clear_pointer (&a->incoming, lb_account_server_free); }
static void no_host (LbAccount *a) { g_clear_pointer (&a->incoming->host, g_free); }
static void bad_host (LbAccount *a) { g_free (a->incoming->host); a->incoming->host = g_strdup ("a b"); }
static void port_zero (LbAccount *a) { a->incoming->port = 0; }
static void port_big (LbAccount *a) { a->outgoing->port = 65536; }
static void bad_security (LbAccount *a) { a->incoming->security = (LbNetSecurity) 7; }
static void smtp_incoming (LbAccount *a) { a->incoming->protocol = LB_ACCOUNT_PROTOCOL_SMTP; }
static void imap_outgoing (LbAccount *a) { a->outgoing->protocol = LB_ACCOUNT_PROTOCOL_IMAP; }
static void insecure (LbAccount *a) { a->incoming->security = LB_NET_SECURITY_NONE; }
static void insecure_out (LbAccount *a) { a->outgoing->security = LB_NET_SECURITY_NONE; }
static void bad_auth (LbAccount *a) { g_free (a->incoming->auth); a->incoming->auth = g_strdup ("NO SUCH"); }
static void empty_user (LbAccount *a) { a->incoming->user = g_strdup (""); }
static void both_trusts (LbAccount *a) { a->ca_file = g_strdup ("/etc/hostname"); a->fingerprint = g_strdup (FINGERPRINT); }
static void missing_ca (LbAccount *a) { a->ca_file = g_strdup ("/nonexistent/ca.pem"); }
static void lower_fingerprint (LbAccount *a) { a->fingerprint = g_ascii_strdown (FINGERPRINT, -1); }
static void short_fingerprint (LbAccount *a) { a->fingerprint = g_strdup ("AA:BB:CC"); }
static void sha1_fingerprint (LbAccount *a) { a->fingerprint = g_strndup (FINGERPRINT, 59); }
static void no_colons (LbAccount *a) { a->fingerprint = g_strdup ("00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"); }
static void no_command (LbAccount *a) { a->password_source = LB_ACCOUNT_PASSWORD_COMMAND; }
static void blank_command (LbAccount *a) { a->password_source = LB_ACCOUNT_PASSWORD_COMMAND; a->password_command = g_strdup ("  \t"); }
static void zero_days (LbAccount *a) { a->bodies = LB_ACCOUNT_BODIES_RECENT; a->bodies_days = 0; }

static void
test_validate (void)
{
  const struct
  {
    Mutate mutate;
    const char *field;
  } cases[] = {
    { bad_id, "id" },
    { dot_id, "id" },
    { empty_id, "id" },
    { space_id, "id" },
    { no_identity, "address" },
    { no_address, "address" },
    { bad_address, "bob.example.org" },
    { two_ats, "address" },
    { angle_address, "address" },
    { space_address, "address" },
    { no_incoming, "[incoming]" },
    { no_host, "[incoming] host" },
    { bad_host, "[incoming] host" },
    { port_zero, "[incoming] port" },
    { port_big, "[outgoing] port" },
    { bad_security, "[incoming] security" },
    { smtp_incoming, "[incoming] protocol" },
    { imap_outgoing, "[outgoing] protocol" },
    { insecure, "allow-insecure" },
    { insecure_out, "[outgoing] security" },
    { bad_auth, "[incoming] auth" },
    { empty_user, "[incoming] user" },
    { both_trusts, "ca-file" },
    { missing_ca, "ca-file" },
    { lower_fingerprint, "fingerprint" },
    { short_fingerprint, "fingerprint" },
    { sha1_fingerprint, "fingerprint" },
    { no_colons, "fingerprint" },
    { no_command, "password-command" },
    { blank_command, "password-command" },
    { zero_days, "bodies-days" },
  };
  g_autoptr(LbAccount) good = make_account ("good");
  g_autoptr(GError) error = NULL;

  fresh_config_dir ();
  g_assert_true (lb_account_validate (good, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(LbAccount) account = make_account ("acct");
      g_auto(GStrv) listed = NULL;

      g_test_message ("case %u: %s", i, cases[i].field);
      cases[i].mutate (account);
      g_assert_false (lb_account_validate (account, &error));
      g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
      if (strstr (error->message, cases[i].field) == NULL ||
          (account->id[0] != '\0' && strstr (error->message, account->id) == NULL))
        g_error ("case %u: “%s” does not name %s", i, error->message, cases[i].field);
      g_clear_error (&error);

      /* Saving validates too, and writes nothing. */
      g_assert_false (lb_account_save (account, &error));
      g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
      g_clear_error (&error);
      listed = lb_account_list_ids (&error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_strv_length (listed), ==, 0);
    }

  /* Cleartext is fine to loopback, or with explicit consent. */
  {
    const char *loopback[] = { "localhost", "127.0.0.1", "127.1.2.3", "::1" };

    for (guint i = 0; i < G_N_ELEMENTS (loopback); i++)
      {
        g_autoptr(LbAccount) account = make_account ("local");

        insecure (account);
        g_free (account->incoming->host);
        account->incoming->host = g_strdup (loopback[i]);
        g_assert_true (lb_account_validate (account, &error));
        g_assert_no_error (error);
      }
  }
  {
    g_autoptr(LbAccount) account = make_account ("consent");

    insecure (account);
    account->incoming->allow_insecure = TRUE;
    g_assert_true (lb_account_validate (account, &error));
    g_assert_no_error (error);
  }
}

static void
test_load_errors (void)
{
  const struct
  {
    const char *data;
    const char *field;
  } cases[] = {
    { "[incoming\n", "file" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\nsecurity=ssl\n", "[incoming] security" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\nprotocol=jmap\n", "[incoming] protocol" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\nport=imap\n", "[incoming] port" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\nport=-1\n", "[incoming] port" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\nport=70000\n", "[incoming] port" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\n[outgoing]\nhost=s\nport=0\n", "[outgoing] port" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\nallow-insecure=yes\n", "[incoming] allow-insecure" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\nsecurity=none\n", "[incoming] security" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\n[sync]\nbodies=some\n", "[sync] bodies" },
    { "[identity]\naddress=a@b.example\n[incoming]\nhost=h\n[sync]\nleave-on-server=1\n", "[sync] leave-on-server" },
    { "[account]\npassword-source=file\n[identity]\naddress=a@b.example\n[incoming]\nhost=h\n", "password-source" },
    { "[account]\npassword-source=command\n[identity]\naddress=a@b.example\n[incoming]\nhost=h\n", "password-command" },
    { "[incoming]\nhost=h\n", "address" },
    { "[identity]\nname=A\n[incoming]\nhost=h\n", "address" },
    { "[identity]\naddress=a@b.example\n", "[incoming]" },
  };
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(LbAccount) account = lb_account_load_from_data ("f", cases[i].data, -1, &error);

      g_test_message ("case %u: %s", i, cases[i].field);
      g_assert_null (account);
      g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
      if (strstr (error->message, cases[i].field) == NULL || strstr (error->message, "“f”") == NULL)
        g_error ("case %u: “%s” does not name %s", i, error->message, cases[i].field);
      g_clear_error (&error);
    }
}

static void
test_url (void)
{
  const struct
  {
    const char *url;
    LbAccountProtocol protocol;
    const char *host;
    guint port;
    LbNetSecurity security;
    const char *user;
    const char *auth;
    gboolean allow_insecure;
  } good[] = {
    { "imaps://user@host.example:993", LB_ACCOUNT_PROTOCOL_IMAP, "host.example", 993, LB_NET_SECURITY_TLS, "user", "auto", FALSE },
    { "imaps://host.example", LB_ACCOUNT_PROTOCOL_IMAP, "host.example", 993, LB_NET_SECURITY_TLS, NULL, "auto", FALSE },
    { "imap://host.example/", LB_ACCOUNT_PROTOCOL_IMAP, "host.example", 143, LB_NET_SECURITY_STARTTLS, NULL, "auto", FALSE },
    { "IMAPS://Host.Example:1993", LB_ACCOUNT_PROTOCOL_IMAP, "host.example", 1993, LB_NET_SECURITY_TLS, NULL, "auto", FALSE },
    { "pop3s://u@pop.example", LB_ACCOUNT_PROTOCOL_POP3, "pop.example", 995, LB_NET_SECURITY_TLS, "u", "auto", FALSE },
    { "pop3://pop.example", LB_ACCOUNT_PROTOCOL_POP3, "pop.example", 110, LB_NET_SECURITY_STARTTLS, NULL, "auto", FALSE },
    { "smtps://smtp.example", LB_ACCOUNT_PROTOCOL_SMTP, "smtp.example", 465, LB_NET_SECURITY_TLS, NULL, "auto", FALSE },
    { "smtp://smtp.example", LB_ACCOUNT_PROTOCOL_SMTP, "smtp.example", 587, LB_NET_SECURITY_STARTTLS, NULL, "auto", FALSE },
    { "imaps://user%40example.org@[::1]:10993", LB_ACCOUNT_PROTOCOL_IMAP, "::1", 10993, LB_NET_SECURITY_TLS, "user@example.org", "auto", FALSE },
    { "imap://[2001:db8::1]", LB_ACCOUNT_PROTOCOL_IMAP, "2001:db8::1", 143, LB_NET_SECURITY_STARTTLS, NULL, "auto", FALSE },
    { "imap://J%C3%BCrgen@127.0.0.1:1143?security=none", LB_ACCOUNT_PROTOCOL_IMAP, "127.0.0.1", 1143, LB_NET_SECURITY_NONE, "Jürgen", "auto", FALSE },
    { "imaps://h.example?security=none&allow-insecure=true", LB_ACCOUNT_PROTOCOL_IMAP, "h.example", 143, LB_NET_SECURITY_NONE, NULL, "auto", TRUE },
    { "smtp://h.example?security=tls&auth=PLAIN", LB_ACCOUNT_PROTOCOL_SMTP, "h.example", 465, LB_NET_SECURITY_TLS, NULL, "PLAIN", FALSE },
  };
  const char *bad[] = {
    "http://host.example",
    "imaps://",
    "imaps://user:secret@host.example",
    "imaps://host.example:0",
    "imaps://host.example:99999",
    "imaps://host.example/INBOX",
    "imaps://host.example?security=ssl",
    "imaps://host.example?tls=1",
    "imaps://host.example?auth=NO%20SUCH",
    "imaps://host.example?allow-insecure=maybe",
    "imaps://host.example#frag",
    "imaps://[::1",
    "host.example:993",
    "",
  };
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(LbAccountServer) server = lb_account_server_from_url (good[i].url, &error);

      g_test_message ("good %u: %s", i, good[i].url);
      g_assert_no_error (error);
      g_assert_cmpint (server->protocol, ==, good[i].protocol);
      g_assert_cmpint (g_ascii_strcasecmp (server->host, good[i].host), ==, 0);
      g_assert_cmpuint (server->port, ==, good[i].port);
      g_assert_cmpint (server->security, ==, good[i].security);
      g_assert_cmpstr (server->user, ==, good[i].user);
      g_assert_cmpstr (server->auth, ==, good[i].auth);
      g_assert_cmpint (server->allow_insecure, ==, good[i].allow_insecure);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(LbAccountServer) server = lb_account_server_from_url (bad[i], &error);

      g_test_message ("bad %u: %s", i, bad[i]);
      g_assert_null (server);
      g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, bad[i]));
      /* A password in the URL is refused and never repeated beyond the URL itself. */
      g_clear_error (&error);
    }
}

static char *
run_command (const char    *command,
             GCancellable  *cancellable,
             GError       **error)
{
  g_autoptr(LbAccount) account = make_account ("cmd");
  LbTestWait wait = { 0 };
  char *password;

  account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  account->password_command = g_strdup (command);
  lb_account_get_password_async (account, LB_ACCOUNT_PROTOCOL_IMAP, cancellable,
                                 lb_test_wait_cb, &wait);
  g_clear_pointer (&account, lb_account_free); /* the call keeps what it needs */
  password = lb_account_get_password_finish (lb_test_wait_result (&wait), error);
  g_object_unref (wait.result);
  return password;
}

static void
test_password_command (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = NULL;
  char *password;

  password = run_command ("printf 'hunter2\\nsecond line\\n'", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, "hunter2");
  g_free (password);

  password = run_command ("printf 'with spaces \\r\\n'", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, "with spaces ");
  g_free (password);

  password = run_command ("printf 'no-newline'", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, "no-newline");
  g_free (password);

  /* Stdin is not the terminal: a command that reads it gets end of file at once. */
  password = run_command ("read x; echo \"got${x}\"", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, "got");
  g_free (password);

  /* The message quotes the command, so the output and the second line are assembled. */
  password = run_command ("printf 'top%s\\n' secret; echo 'vault is sealed' >&2; "
                          "printf 'second%s\\n' line >&2; exit 3",
                          NULL, &error);
  g_assert_null (password);
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD);
  g_assert_nonnull (strstr (error->message, "“cmd”"));
  g_assert_nonnull (strstr (error->message, " 3"));
  g_assert_nonnull (strstr (error->message, "vault is sealed"));
  g_assert_null (strstr (error->message, "secondline"));
  g_assert_null (strstr (error->message, "topsecret"));
  g_clear_error (&error);

  password = run_command ("kill -9 $$", NULL, &error);
  g_assert_null (password);
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD);
  g_assert_nonnull (strstr (error->message, "signal 9"));
  g_clear_error (&error);

  password = run_command ("true", NULL, &error);
  g_assert_null (password);
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD);
  g_clear_error (&error);

  password = run_command ("/nonexistent/command", NULL, &error);
  g_assert_null (password);
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD);
  g_assert_nonnull (strstr (error->message, "127"));
  g_clear_error (&error);

  password = run_command (" ", NULL, &error);
  g_assert_null (password);
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "password-command"));
  g_clear_error (&error);

  /* Cancelled while the command hangs: the callback still comes, and the command dies. */
  cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  password = run_command ("exec sleep 600", cancellable, &error);
  g_assert_null (password);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
}

static void
test_set_password_command_account (void)
{
  g_autoptr(LbAccount) account = make_account ("cmd");
  g_autoptr(GError) error = NULL;
  LbTestWait wait = { 0 };

  account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  account->password_command = g_strdup ("true");
  lb_account_set_password_async (account, LB_ACCOUNT_PROTOCOL_SMTP, "pw", NULL,
                                 lb_test_wait_cb, &wait);
  g_assert_false (lb_account_set_password_finish (lb_test_wait_result (&wait), &error));
  g_assert_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
  g_object_unref (wait.result);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  home = lb_test_make_home ();

  g_test_add_func ("/account/round-trip", test_round_trip);
  g_test_add_func ("/account/defaults", test_defaults);
  g_test_add_func ("/account/list-remove", test_list_remove);
  g_test_add_func ("/account/validate", test_validate);
  g_test_add_func ("/account/load-errors", test_load_errors);
  g_test_add_func ("/account/url", test_url);
  g_test_add_func ("/account/password-command", test_password_command);
  g_test_add_func ("/account/set-password-command-account", test_set_password_command_account);

  status = g_test_run ();
  g_free (config_dir);
  lb_test_remove_tree (home);
  return status;
}
