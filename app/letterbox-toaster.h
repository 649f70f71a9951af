/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define LETTERBOX_TYPE_TOASTER (letterbox_toaster_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxToaster, letterbox_toaster, LETTERBOX, TOASTER, GObject)

LetterboxToaster *letterbox_toaster_new        (AdwToastOverlay  *overlay);
void              letterbox_toaster_show       (LetterboxToaster *self,
                                                AdwToast         *toast);
void              letterbox_toaster_dismiss    (LetterboxToaster *self,
                                                AdwToast         *toast);
AdwToast         *letterbox_toaster_get_latest (LetterboxToaster *self);
AdwToast         *letterbox_toaster_get_shown  (LetterboxToaster *self);

G_END_DECLS
