/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "letterbox-clip-model.h"

/*
 * The first @limit items of another GListModel (G_MAXUINT, the default: all of them).
 *
 * Unlimited, it passes each of the model's changes on exactly as it came: the message
 * list's model says which rows a refresh inserted or removed, and the list view and the
 * selection then ask for those rows only. (GTK 4.8's GtkSliceListModel reports any
 * insertion or removal as "every row from there to the end replaced", even with no
 * limit: on a 100 000-row folder, one new message on top made the list view ask for every
 * row.) Limited, a change that reaches into the first @limit items is reported as those
 * from its position to the limit replaced, which costs at most @limit rows; a change
 * beyond the limit is not reported.
 */
struct _LetterboxClipModel
{
  GObject parent_instance;

  GListModel *model;
  guint n_model;               /* the model's items, as its last items-changed left them */
  guint limit;
};

static void list_model_iface_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LetterboxClipModel, letterbox_clip_model, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, list_model_iface_init))

static guint
shown (guint n_model,
       guint limit)
{
  return MIN (n_model, limit);
}

static void
model_items_changed_cb (GListModel         *model,
                        guint               position,
                        guint               removed,
                        guint               added,
                        LetterboxClipModel *self)
{
  guint before = shown (self->n_model, self->limit);
  guint after;

  self->n_model = self->n_model - removed + added;
  after = shown (self->n_model, self->limit);

  if (self->limit == G_MAXUINT)
    {
      g_list_model_items_changed (G_LIST_MODEL (self), position, removed, added);
      return;
    }
  if (position >= self->limit)
    return;
  if (before - position != 0 || after - position != 0)
    g_list_model_items_changed (G_LIST_MODEL (self), position, before - position,
                                after - position);
}

static GType
list_model_get_item_type (GListModel *list)
{
  LetterboxClipModel *self = LETTERBOX_CLIP_MODEL (list);

  return g_list_model_get_item_type (self->model);
}

static guint
list_model_get_n_items (GListModel *list)
{
  LetterboxClipModel *self = LETTERBOX_CLIP_MODEL (list);

  return shown (self->n_model, self->limit);
}

static gpointer
list_model_get_item (GListModel *list,
                     guint       position)
{
  LetterboxClipModel *self = LETTERBOX_CLIP_MODEL (list);

  if (position >= shown (self->n_model, self->limit))
    return NULL;
  return g_list_model_get_item (self->model, position);
}

static void
list_model_iface_init (GListModelInterface *iface)
{
  iface->get_item_type = list_model_get_item_type;
  iface->get_n_items = list_model_get_n_items;
  iface->get_item = list_model_get_item;
}

static void
letterbox_clip_model_dispose (GObject *object)
{
  LetterboxClipModel *self = LETTERBOX_CLIP_MODEL (object);

  if (self->model != NULL)
    g_signal_handlers_disconnect_by_func (self->model, model_items_changed_cb, self);
  g_clear_object (&self->model);

  G_OBJECT_CLASS (letterbox_clip_model_parent_class)->dispose (object);
}

static void
letterbox_clip_model_class_init (LetterboxClipModelClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = letterbox_clip_model_dispose;
}

static void
letterbox_clip_model_init (LetterboxClipModel *self)
{
  self->limit = G_MAXUINT;
}

/* Returns: (transfer full): all of @model's items, until letterbox_clip_model_set_limit() */
LetterboxClipModel *
letterbox_clip_model_new (GListModel *model)
{
  LetterboxClipModel *self;

  g_return_val_if_fail (G_IS_LIST_MODEL (model), NULL);

  self = g_object_new (LETTERBOX_TYPE_CLIP_MODEL, NULL);
  self->model = g_object_ref (model);
  self->n_model = g_list_model_get_n_items (model);
  g_signal_connect (model, "items-changed", G_CALLBACK (model_items_changed_cb), self);
  return self;
}

/* Shows the first @limit items (G_MAXUINT: all), adding or removing rows at the end. */
void
letterbox_clip_model_set_limit (LetterboxClipModel *self,
                                guint               limit)
{
  guint before, after;

  g_return_if_fail (LETTERBOX_IS_CLIP_MODEL (self));

  if (self->limit == limit)
    return;
  before = shown (self->n_model, self->limit);
  self->limit = limit;
  after = shown (self->n_model, self->limit);
  if (after > before)
    g_list_model_items_changed (G_LIST_MODEL (self), before, 0, after - before);
  else if (after < before)
    g_list_model_items_changed (G_LIST_MODEL (self), after, before - after, 0);
}

guint
letterbox_clip_model_get_limit (LetterboxClipModel *self)
{
  g_return_val_if_fail (LETTERBOX_IS_CLIP_MODEL (self), G_MAXUINT);

  return self->limit;
}
