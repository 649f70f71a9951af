/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "lb-bus-backend1.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_APPLICATION (letterbox_application_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxApplication, letterbox_application, LETTERBOX, APPLICATION,
                      AdwApplication)

LetterboxApplication *letterbox_application_new         (void);
LbBusBackend1        *letterbox_application_get_backend (LetterboxApplication *self);

G_END_DECLS
