/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-store"

#include "config.h"

#include "lb-folder.h"

struct _LbFolder
{
  GObject parent_instance;

  gint64 id;
  char *account_id;
  char *account_name;
  char *name;
  LbFolderRole role;
  guint total;
  guint unread;
  char delimiter;   /* the server's hierarchy delimiter, or 0 for a flat name */
};

G_DEFINE_FINAL_TYPE (LbFolder, lb_folder, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_ACCOUNT_ID,
  PROP_ACCOUNT_NAME,
  PROP_NAME,
  PROP_TOTAL,
  PROP_UNREAD,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *const role_names[] = {
  [LB_FOLDER_ROLE_NONE] = NULL,
  [LB_FOLDER_ROLE_INBOX] = "inbox",
  [LB_FOLDER_ROLE_DRAFTS] = "drafts",
  [LB_FOLDER_ROLE_SENT] = "sent",
  [LB_FOLDER_ROLE_TRASH] = "trash",
  [LB_FOLDER_ROLE_JUNK] = "junk",
  [LB_FOLDER_ROLE_ARCHIVE] = "archive",
};

const char *
lb_folder_role_to_string (LbFolderRole role)
{
  g_return_val_if_fail (role < G_N_ELEMENTS (role_names), NULL);

  return role_names[role];
}

LbFolderRole
lb_folder_role_from_string (const char *str)
{
  if (str == NULL)
    return LB_FOLDER_ROLE_NONE;

  for (guint i = 1; i < G_N_ELEMENTS (role_names); i++)
    if (g_str_equal (str, role_names[i]))
      return (LbFolderRole) i;

  return LB_FOLDER_ROLE_NONE;
}

static void
lb_folder_finalize (GObject *object)
{
  LbFolder *self = LB_FOLDER (object);

  g_free (self->account_id);
  g_free (self->account_name);
  g_free (self->name);

  G_OBJECT_CLASS (lb_folder_parent_class)->finalize (object);
}

static void
lb_folder_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  LbFolder *self = LB_FOLDER (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_int64 (value, self->id);
      break;

    case PROP_ACCOUNT_ID:
      g_value_set_string (value, self->account_id);
      break;

    case PROP_ACCOUNT_NAME:
      g_value_set_string (value, self->account_name);
      break;

    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;

    case PROP_TOTAL:
      g_value_set_uint (value, self->total);
      break;

    case PROP_UNREAD:
      g_value_set_uint (value, self->unread);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lb_folder_class_init (LbFolderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = lb_folder_finalize;
  object_class->get_property = lb_folder_get_property;

  properties[PROP_ID] =
    g_param_spec_int64 ("id", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_ACCOUNT_ID] =
    g_param_spec_string ("account-id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_ACCOUNT_NAME] =
    g_param_spec_string ("account-name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TOTAL] =
    g_param_spec_uint ("total", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_UNREAD] =
    g_param_spec_uint ("unread", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
lb_folder_init (LbFolder *self)
{
}

LbFolder *
lb_folder_new (gint64        id,
               const char   *account_id,
               const char   *account_name,
               const char   *name,
               LbFolderRole  role,
               guint         total,
               guint         unread)
{
  LbFolder *self = g_object_new (LB_TYPE_FOLDER, NULL);

  self->id = id;
  self->account_id = g_strdup (account_id);
  self->account_name = g_strdup (account_name);
  self->name = g_strdup (name);
  self->role = role;
  self->total = total;
  self->unread = unread;

  return self;
}

gint64
lb_folder_get_id (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), 0);
  return self->id;
}

const char *
lb_folder_get_account_id (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), NULL);
  return self->account_id;
}

const char *
lb_folder_get_account_name (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), NULL);
  return self->account_name;
}

const char *
lb_folder_get_name (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), NULL);
  return self->name;
}

LbFolderRole
lb_folder_get_role (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), LB_FOLDER_ROLE_NONE);
  return self->role;
}

guint
lb_folder_get_total (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), 0);
  return self->total;
}

guint
lb_folder_get_unread (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), 0);
  return self->unread;
}

/**
 * lb_folder_get_delimiter:
 *
 * Returns: the character between the levels of the folder's name on its server (such as
 *   '/' in "Projects/Letterbox"), or 0 when the name has no levels
 */
char
lb_folder_get_delimiter (LbFolder *self)
{
  g_return_val_if_fail (LB_IS_FOLDER (self), 0);

  return self->delimiter;
}

void
lb_folder_set_delimiter (LbFolder *self,
                         char      delimiter)
{
  g_return_if_fail (LB_IS_FOLDER (self));

  self->delimiter = delimiter;
}
