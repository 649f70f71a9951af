/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/*
 * The contract between the reading pane and the HTML module (libletterbox-html.so,
 * app/letterbox-html.c), the only part of the app linked with WebKitGTK. The app loads
 * it the first time a message has an HTML body, so a launch neither maps WebKit's
 * hundred libraries nor pays for their relocations.
 *
 * The module exports one symbol, LETTERBOX_HTML_MODULE_SYMBOL, a const
 * LetterboxHtmlModule whose @abi must equal LETTERBOX_HTML_MODULE_ABI.
 */

#define LETTERBOX_HTML_MODULE_SYMBOL "letterbox_html_module"
#define LETTERBOX_HTML_MODULE_NAME "letterbox-html"
#define LETTERBOX_HTML_MODULE_ABI 2

/* What the page tells its owner; called in the main context with the owner (a GObject,
 * held weakly: once it is finalized nothing is called). */
typedef struct
{
  /* The user clicked a link (navigation itself never happens): its target, and the
   * link's text as shown when the pointer was on it (may be %NULL). */
  void    (*link_activated)     (gpointer    user_data,
                                 const char *uri,
                                 const char *text);
  /* The page started to load a sub-resource (for diagnostics and tests). */
  void    (*resource_requested) (gpointer    user_data,
                                 const char *uri);
  /* @view's page is loaded. */
  void    (*load_finished)      (gpointer    user_data,
                                 GtkWidget  *view);
  /* The message's part with Content-ID @content_id, for cid: URIs; %NULL when the
   * message has none. */
  GBytes *(*lookup_part)        (gpointer    user_data,
                                 const char *content_id,
                                 char      **content_type);
} LetterboxHtmlHooks;

typedef struct
{
  guint abi;
  /* Readies what every view shares (the content filter WebKit compiles once). */
  void       (*prepare_async)  (GCancellable              *cancellable,
                                GAsyncReadyCallback        callback,
                                gpointer                   user_data);
  gboolean   (*prepare_finish) (GAsyncResult              *result,
                                GError                   **error);
  /* A view that can reach nothing, or with @remote one allowed to load remote content.
   * @hooks must outlive the view; @owner is given to them while it lives. */
  GtkWidget *(*view_new)       (gboolean                   remote,
                                const LetterboxHtmlHooks  *hooks,
                                GObject                   *owner);
  void       (*view_load)      (GtkWidget                 *view,
                                const char                *page,
                                const GdkRGBA             *background);
} LetterboxHtmlModule;

G_END_DECLS
