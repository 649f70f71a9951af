/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define LETTERBOX_TYPE_CLIP_MODEL (letterbox_clip_model_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxClipModel, letterbox_clip_model, LETTERBOX, CLIP_MODEL, GObject)

LetterboxClipModel *letterbox_clip_model_new       (GListModel         *model);
void                letterbox_clip_model_set_limit (LetterboxClipModel *self,
                                                    guint               limit);
guint               letterbox_clip_model_get_limit (LetterboxClipModel *self);

G_END_DECLS
