/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "letterbox-application.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_WINDOW (letterbox_window_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxWindow, letterbox_window, LETTERBOX, WINDOW, AdwApplicationWindow)

LetterboxWindow *letterbox_window_new (LetterboxApplication *application);
void             letterbox_window_present_when_ready (LetterboxWindow *self,
                                                      guint            timeout_ms);

G_END_DECLS
