/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "letterbox-account-states.h"

/*
 * What the backend says about each account, followed once for the whole window: the
 * states ListAccounts gives whenever the bus name gets an owner, then AccountChanged;
 * SyncProgress marks an account syncing too. The status area (errors and their fixes)
 * and the header bar's spinner (who is syncing) both read it, so one owner change costs
 * one ListAccounts call.
 */
struct _LetterboxAccountStates
{
  GObject parent_instance;

  LbBusBackend1 *backend;
  GCancellable *cancellable;     /* the calls to @backend */
  GHashTable *accounts;          /* account id → Account */
  guint n_list_calls;
};

typedef struct
{
  GVariant *state;               /* a{sv} as in ListAccounts; NULL: only progress seen */
  char *name;                    /* the last display name given; NULL: none yet */
  gboolean syncing;
} Account;

enum
{
  ACCOUNT_CHANGED,
  SYNCING_CHANGED,
  RESET,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (LetterboxAccountStates, letterbox_account_states, G_TYPE_OBJECT)

static void
account_free (Account *account)
{
  g_clear_pointer (&account->state, g_variant_unref);
  g_free (account->name);
  g_free (account);
}

static Account *
ensure_account (LetterboxAccountStates *self,
                const char             *account_id)
{
  Account *account = g_hash_table_lookup (self->accounts, account_id);

  if (account == NULL)
    {
      account = g_new0 (Account, 1);
      g_hash_table_insert (self->accounts, g_strdup (account_id), account);
    }
  return account;
}

static void
set_state (LetterboxAccountStates *self,
           const char             *account_id,
           GVariant               *state)
{
  Account *account = ensure_account (self, account_id);
  const char *state_name = "", *name = NULL;
  gboolean was_syncing = account->syncing;

  g_variant_lookup (state, "state", "&s", &state_name);
  g_variant_lookup (state, "display-name", "&s", &name);
  g_clear_pointer (&account->state, g_variant_unref);
  account->state = g_variant_ref_sink (state);
  if (name != NULL && name[0] != '\0')
    {
      g_free (account->name);
      account->name = g_strdup (name);
    }
  account->syncing = g_strcmp0 (state_name, "syncing") == 0;
  g_signal_emit (self, signals[ACCOUNT_CHANGED], 0, account_id);
  if (account->syncing != was_syncing)
    g_signal_emit (self, signals[SYNCING_CHANGED], 0, account_id);
}

static void
account_changed_cb (LbBusBackend1          *backend,
                    const char             *account_id,
                    GVariant               *state,
                    LetterboxAccountStates *self)
{
  set_state (self, account_id, state);
}

/* Progress of an account not seen syncing yet: it syncs. */
static void
progress_cb (LbBusBackend1          *backend,
             const char             *account_id,
             const char             *folder,
             guint                   done,
             guint                   total,
             LetterboxAccountStates *self)
{
  Account *account = ensure_account (self, account_id);

  if (account->syncing)
    return;
  account->syncing = TRUE;
  g_signal_emit (self, signals[SYNCING_CHANGED], 0, account_id);
}

static void
list_accounts_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  LetterboxAccountStates *self = user_data;
  g_autoptr(GVariant) accounts = NULL;
  g_autoptr(GError) error = NULL;
  GVariantIter iter;
  const char *id;
  GVariant *state;

  /* Cancelled (another backend, or disposed): @self may be gone. */
  if (!lb_bus_backend1_call_list_accounts_finish (LB_BUS_BACKEND1 (source), &accounts, result,
                                                  &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("ListAccounts: %s", error->message);
      return;
    }
  g_variant_iter_init (&iter, accounts);
  while (g_variant_iter_next (&iter, "(&s@a{sv})", &id, &state))
    {
      set_state (self, id, state);
      g_variant_unref (state);
    }
}

static void
list_accounts (LetterboxAccountStates *self)
{
  self->n_list_calls++;
  lb_bus_backend1_call_list_accounts (self->backend, self->cancellable, list_accounts_cb, self);
}

/* A service that went away syncs nothing any more; a (new) owner tells what it knows,
 * which replaces what the last one said. */
static void
name_owner_changed_cb (GDBusProxy             *proxy,
                       GParamSpec             *pspec,
                       LetterboxAccountStates *self)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (proxy);
  g_autoptr(GPtrArray) stopped = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer id, value;

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &id, &value))
    {
      Account *account = value;

      if (account->syncing)
        {
          account->syncing = FALSE;
          g_ptr_array_add (stopped, g_strdup (id));
        }
    }
  for (guint i = 0; i < stopped->len; i++)
    g_signal_emit (self, signals[SYNCING_CHANGED], 0, g_ptr_array_index (stopped, i));
  if (owner != NULL)
    list_accounts (self);
}

/**
 * letterbox_account_states_set_backend:
 * @backend: (nullable): the proxy for org.letterbox.Backend1 (a skeleton in tests, to
 *   emit signals on: no calls are made on it)
 *
 * Forgets every state ("reset"), then follows @backend: ListAccounts now and whenever
 * its name gets an owner, AccountChanged and SyncProgress. Signals are emitted in the
 * main context.
 */
void
letterbox_account_states_set_backend (LetterboxAccountStates *self,
                                      LbBusBackend1          *backend)
{
  g_return_if_fail (LETTERBOX_IS_ACCOUNT_STATES (self));
  g_return_if_fail (backend == NULL || LB_BUS_IS_BACKEND1 (backend));

  if (self->backend == backend)
    return;
  if (self->backend != NULL)
    g_signal_handlers_disconnect_by_data (self->backend, self);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  g_set_object (&self->backend, backend);
  g_hash_table_remove_all (self->accounts);
  g_signal_emit (self, signals[RESET], 0);
  if (backend == NULL)
    return;
  g_signal_connect (backend, "account-changed", G_CALLBACK (account_changed_cb), self);
  g_signal_connect (backend, "sync-progress", G_CALLBACK (progress_cb), self);
  if (G_IS_DBUS_PROXY (backend))
    {
      g_signal_connect (backend, "notify::g-name-owner", G_CALLBACK (name_owner_changed_cb),
                        self);
      list_accounts (self);
    }
}

/**
 * letterbox_account_states_get_backend:
 *
 * Returns: (transfer none) (nullable): the backend followed, for calls on it (Sync)
 */
LbBusBackend1 *
letterbox_account_states_get_backend (LetterboxAccountStates *self)
{
  g_return_val_if_fail (LETTERBOX_IS_ACCOUNT_STATES (self), NULL);
  return self->backend;
}

/**
 * letterbox_account_states_get_state:
 *
 * Returns: (transfer none) (nullable): the account's last state (a{sv}: "state",
 *   "error", "error-kind", "display-name", … as ListAccounts gives them), %NULL when none
 *   was told
 */
GVariant *
letterbox_account_states_get_state (LetterboxAccountStates *self,
                                    const char             *account_id)
{
  Account *account;

  g_return_val_if_fail (LETTERBOX_IS_ACCOUNT_STATES (self), NULL);
  g_return_val_if_fail (account_id != NULL, NULL);

  account = g_hash_table_lookup (self->accounts, account_id);
  return account != NULL ? account->state : NULL;
}

/**
 * letterbox_account_states_get_display_name:
 *
 * Returns: the last display name the backend gave for the account, else @account_id
 */
const char *
letterbox_account_states_get_display_name (LetterboxAccountStates *self,
                                           const char             *account_id)
{
  Account *account;

  g_return_val_if_fail (LETTERBOX_IS_ACCOUNT_STATES (self), NULL);
  g_return_val_if_fail (account_id != NULL, NULL);

  account = g_hash_table_lookup (self->accounts, account_id);
  return account != NULL && account->name != NULL ? account->name : account_id;
}

/**
 * letterbox_account_states_get_syncing:
 *
 * Returns: whether the account syncs: its state is "syncing", or progress came since its
 *   last state, and the service that said so still owns the name
 */
gboolean
letterbox_account_states_get_syncing (LetterboxAccountStates *self,
                                      const char             *account_id)
{
  Account *account;

  g_return_val_if_fail (LETTERBOX_IS_ACCOUNT_STATES (self), FALSE);
  g_return_val_if_fail (account_id != NULL, FALSE);

  account = g_hash_table_lookup (self->accounts, account_id);
  return account != NULL && account->syncing;
}

/**
 * letterbox_account_states_dup_syncing:
 *
 * Returns: (transfer full): the ids of the accounts syncing, in no particular order
 */
GStrv
letterbox_account_states_dup_syncing (LetterboxAccountStates *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  GHashTableIter iter;
  gpointer id, value;

  g_return_val_if_fail (LETTERBOX_IS_ACCOUNT_STATES (self), NULL);

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &id, &value))
    if (((Account *) value)->syncing)
      g_strv_builder_add (builder, id);
  return g_strv_builder_end (builder);
}

/**
 * letterbox_account_states_get_n_list_calls:
 *
 * Returns: how many ListAccounts calls this object has made (for tests: one per owner)
 */
guint
letterbox_account_states_get_n_list_calls (LetterboxAccountStates *self)
{
  g_return_val_if_fail (LETTERBOX_IS_ACCOUNT_STATES (self), 0);
  return self->n_list_calls;
}

static void
letterbox_account_states_dispose (GObject *object)
{
  LetterboxAccountStates *self = LETTERBOX_ACCOUNT_STATES (object);

  g_cancellable_cancel (self->cancellable);
  if (self->backend != NULL)
    g_signal_handlers_disconnect_by_data (self->backend, self);
  g_clear_object (&self->backend);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (letterbox_account_states_parent_class)->dispose (object);
}

static void
letterbox_account_states_finalize (GObject *object)
{
  LetterboxAccountStates *self = LETTERBOX_ACCOUNT_STATES (object);

  g_hash_table_unref (self->accounts);

  G_OBJECT_CLASS (letterbox_account_states_parent_class)->finalize (object);
}

static void
letterbox_account_states_class_init (LetterboxAccountStatesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = letterbox_account_states_dispose;
  object_class->finalize = letterbox_account_states_finalize;

  /**
   * LetterboxAccountStates::account-changed:
   * @account_id: the account the backend told a state of (letterbox_account_states_get_state())
   */
  signals[ACCOUNT_CHANGED] = g_signal_new ("account-changed", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                           G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * LetterboxAccountStates::syncing-changed:
   * @account_id: the account that started or stopped syncing
   *   (letterbox_account_states_get_syncing())
   */
  signals[SYNCING_CHANGED] = g_signal_new ("syncing-changed", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                           G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * LetterboxAccountStates::reset:
   *
   * Every state was forgotten (another backend, or none).
   */
  signals[RESET] = g_signal_new ("reset", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                 NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
letterbox_account_states_init (LetterboxAccountStates *self)
{
  self->cancellable = g_cancellable_new ();
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) account_free);
}

LetterboxAccountStates *
letterbox_account_states_new (void)
{
  return g_object_new (LETTERBOX_TYPE_ACCOUNT_STATES, NULL);
}
