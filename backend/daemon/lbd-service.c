/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd-service"

#include "config.h"

#include <unistd.h>

#include "lb-bus-backend1.h"
#include "lbd-service.h"

/* The org.letterbox.Backend1 object: answers for the engine on the session bus. */
struct _LbdService
{
  GObject parent_instance;

  LbStore *store;
  LbBusBackend1 *skeleton;
  gint64 started_at;
};

G_DEFINE_FINAL_TYPE (LbdService, lbd_service, G_TYPE_OBJECT)

static gboolean
handle_status (LbBusBackend1         *skeleton,
               GDBusMethodInvocation *invocation,
               gpointer               user_data)
{
  LbdService *self = user_data;
  g_autoptr(GError) error = NULL;
  GVariantDict dict;
  guint n_accounts = 0;

  if (!lb_store_count_accounts (self->store, &n_accounts, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "version", "s", PACKAGE_VERSION);
  g_variant_dict_insert (&dict, "pid", "u", (guint32) getpid ());
  g_variant_dict_insert (&dict, "uptime", "t",
                         (guint64) ((g_get_monotonic_time () - self->started_at) / G_USEC_PER_SEC));
  g_variant_dict_insert (&dict, "data-dir", "s", lb_store_get_data_dir (self->store));
  g_variant_dict_insert (&dict, "accounts", "u", n_accounts);
  g_variant_dict_insert (&dict, "state", "s", "idle");

  lb_bus_backend1_complete_status (skeleton, invocation, g_variant_dict_end (&dict));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
lbd_service_dispose (GObject *object)
{
  LbdService *self = LBD_SERVICE (object);

  lbd_service_unexport (self);
  g_clear_object (&self->skeleton);
  g_clear_object (&self->store);

  G_OBJECT_CLASS (lbd_service_parent_class)->dispose (object);
}

static void
lbd_service_class_init (LbdServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = lbd_service_dispose;
}

static void
lbd_service_init (LbdService *self)
{
  self->started_at = g_get_monotonic_time ();
  self->skeleton = lb_bus_backend1_skeleton_new ();
  lb_bus_backend1_set_version (self->skeleton, PACKAGE_VERSION);
  g_signal_connect (self->skeleton, "handle-status", G_CALLBACK (handle_status), self);
}

LbdService *
lbd_service_new (LbStore *store)
{
  LbdService *self;

  g_return_val_if_fail (LB_IS_STORE (store), NULL);

  self = g_object_new (LBD_TYPE_SERVICE, NULL);
  self->store = g_object_ref (store);
  return self;
}

gboolean
lbd_service_export (LbdService       *self,
                    GDBusConnection  *connection,
                    GError          **error)
{
  g_return_val_if_fail (LBD_IS_SERVICE (self), FALSE);

  return g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton),
                                           connection, LB_BACKEND_OBJECT_PATH, error);
}

void
lbd_service_unexport (LbdService *self)
{
  g_return_if_fail (LBD_IS_SERVICE (self));

  if (self->skeleton != NULL &&
      g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (self->skeleton)))
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
}
