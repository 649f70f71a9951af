/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>
#include <webkit/webkit.h>

#include "letterbox-html-module.h"

/*
 * The HTML module: the app's only code linked with WebKitGTK, loaded by the reading pane
 * (letterbox-message-view.c) on the first HTML body. Its views can reach nothing
 * (DESIGN.md, "Nothing leaks"): JavaScript off, an ephemeral network session, no
 * speculative connections, a default Content-Security-Policy that allows only cid: and
 * data: images and inline styles, and on top a content filter blocking every network
 * scheme. cid: URIs are answered from the message by the owner's hooks. A "remote" view
 * has a permissive policy instead (the policy is construct-only, hence two views). Links
 * never navigate: the owner is told, and decides.
 */

#define STRICT_CSP "default-src 'none'; img-src cid: data:; style-src 'unsafe-inline'; " \
                   "font-src data:"
#define REMOTE_CSP "default-src 'none'; img-src * cid: data:; style-src * 'unsafe-inline'; " \
                   "font-src * data:; media-src *"

/* Safari-style content blocker rules; their regular expressions have no "|". */
#define FILTER_ID "letterbox-block-remote"
#define FILTER_JSON                                                       \
  "[{\"trigger\":{\"url-filter\":\"^https?:\"},\"action\":{\"type\":\"block\"}},"  \
  "{\"trigger\":{\"url-filter\":\"^wss?:\"},\"action\":{\"type\":\"block\"}},"     \
  "{\"trigger\":{\"url-filter\":\"^ftps?:\"},\"action\":{\"type\":\"block\"}},"    \
  "{\"trigger\":{\"url-filter\":\"^file:\"},\"action\":{\"type\":\"block\"}}]"

/* Each view's owner, and the link under the pointer. */
typedef struct
{
  const LetterboxHtmlHooks *hooks;
  GWeakRef owner;              /* the hooks' user data: told nothing once it is gone */
  char *hover_uri;
  char *hover_text;
} ViewData;

static void
view_data_free (gpointer data)
{
  ViewData *view = data;

  g_weak_ref_clear (&view->owner);
  g_free (view->hover_uri);
  g_free (view->hover_text);
  g_free (view);
}

static ViewData *
view_data (WebKitWebView *web_view)
{
  return web_view != NULL ? g_object_get_data (G_OBJECT (web_view), "letterbox-html") : NULL;
}

static void
replace_str (char       **where,
             const char  *value)
{
  if (*where == value)
    return;
  g_free (*where);
  *where = g_strdup (value);
}

static void
cid_request_cb (WebKitURISchemeRequest *request,
                gpointer                user_data)
{
  ViewData *view = view_data (webkit_uri_scheme_request_get_web_view (request));
  const char *uri = webkit_uri_scheme_request_get_uri (request);
  g_autofree char *id = g_uri_unescape_string (uri + strlen ("cid:"), NULL);
  g_autofree char *content_type = NULL;
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GInputStream) stream = NULL;

  g_autoptr(GObject) owner = view != NULL ? g_weak_ref_get (&view->owner) : NULL;

  if (owner != NULL && id != NULL)
    data = view->hooks->lookup_part (owner, id, &content_type);
  if (data == NULL)
    {
      g_autoptr(GError) error = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                             "No part %s in the message", uri);

      webkit_uri_scheme_request_finish_error (request, error);
      return;
    }
  stream = g_memory_input_stream_new_from_bytes (data);
  webkit_uri_scheme_request_finish (request, stream, g_bytes_get_size (data), content_type);
}

/* Nothing in a mail is saved by WebKit on its own: attachments have their own buttons. */
static void
download_started_cb (WebKitNetworkSession *session,
                     WebKitDownload       *download,
                     gpointer              user_data)
{
  webkit_download_cancel (download);
}

/* Made on the first HTML body, one for all views. */
static WebKitWebContext *
shared_context (void)
{
  static WebKitWebContext *context;
  static WebKitNetworkSession *session;

  if (context == NULL)
    {
      context = webkit_web_context_new ();
      session = webkit_network_session_new_ephemeral ();
      g_signal_connect (session, "download-started", G_CALLBACK (download_started_cb), NULL);
      g_object_set_data_full (G_OBJECT (context), "letterbox-session", session, g_object_unref);
      webkit_web_context_set_cache_model (context, WEBKIT_CACHE_MODEL_DOCUMENT_VIEWER);
      /* The cid: scheme answers from the message shown; registered before any view. */
      webkit_web_context_register_uri_scheme (context, "cid", cid_request_cb, NULL, NULL);
    }
  return context;
}

/* The content filter, compiled once per process (WebKit keeps it in a file). */
static WebKitUserContentFilter *remote_filter;
static gboolean filter_ready;
static GPtrArray *filter_waiters;  /* GTask* */

static void
filter_saved_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) waiters = g_steal_pointer (&filter_waiters);

  remote_filter = webkit_user_content_filter_store_save_finish (
    WEBKIT_USER_CONTENT_FILTER_STORE (source), result, &error);
  if (remote_filter == NULL)
    /* The Content-Security-Policy alone still blocks every load. */
    g_warning ("The content filter for remote content cannot be made: %s", error->message);
  filter_ready = TRUE;
  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    g_task_return_boolean (waiters->pdata[i], TRUE);
}

static void
html_prepare_async (GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  static WebKitUserContentFilterStore *store;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, html_prepare_async);
  if (filter_ready)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (filter_waiters == NULL)
    filter_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (filter_waiters, g_steal_pointer (&task));
  if (store == NULL)
    {
      g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "letterbox",
                                               "content-filters", NULL);
      g_autoptr(GBytes) json = g_bytes_new_static (FILTER_JSON, strlen (FILTER_JSON));

      store = webkit_user_content_filter_store_new (dir);
      webkit_user_content_filter_store_save (store, FILTER_ID, json, NULL, filter_saved_cb, NULL);
    }
}

static gboolean
html_prepare_finish (GAsyncResult  *result,
                     GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
decide_policy_cb (WebKitWebView            *web_view,
                  WebKitPolicyDecision     *decision,
                  WebKitPolicyDecisionType  type,
                  ViewData                 *view)
{
  g_autoptr(GObject) owner = NULL;
  WebKitNavigationAction *action;
  const char *uri;

  if (type != WEBKIT_POLICY_DECISION_TYPE_NAVIGATION_ACTION &&
      type != WEBKIT_POLICY_DECISION_TYPE_NEW_WINDOW_ACTION)
    return FALSE;

  action = webkit_navigation_policy_decision_get_navigation_action (
    WEBKIT_NAVIGATION_POLICY_DECISION (decision));
  uri = webkit_uri_request_get_uri (webkit_navigation_action_get_request (action));
  /* Our own load_html() (about:blank), and jumps inside the page. */
  if (type == WEBKIT_POLICY_DECISION_TYPE_NAVIGATION_ACTION &&
      (g_strcmp0 (uri, "about:blank") == 0 || g_str_has_prefix (uri, "about:blank#")))
    {
      webkit_policy_decision_use (decision);
      return TRUE;
    }
  /* Never navigate: the mail stays in the view, and nothing is fetched. */
  webkit_policy_decision_ignore (decision);
  owner = g_weak_ref_get (&view->owner);
  if (owner != NULL &&
      (webkit_navigation_action_get_navigation_type (action) == WEBKIT_NAVIGATION_TYPE_LINK_CLICKED ||
       webkit_navigation_action_is_user_gesture (action)))
    view->hooks->link_activated (owner, uri,
                                 g_strcmp0 (uri, view->hover_uri) == 0 ? view->hover_text
                                                                       : NULL);
  return TRUE;
}

static void
mouse_target_changed_cb (WebKitWebView       *web_view,
                         WebKitHitTestResult *hit,
                         guint                modifiers,
                         ViewData            *view)
{
  gboolean link = webkit_hit_test_result_context_is_link (hit);

  replace_str (&view->hover_uri, link ? webkit_hit_test_result_get_link_uri (hit) : NULL);
  replace_str (&view->hover_text, link ? webkit_hit_test_result_get_link_label (hit) : NULL);
}

static gboolean
context_menu_cb (WebKitWebView       *web_view,
                 WebKitContextMenu   *menu,
                 WebKitHitTestResult *hit,
                 gpointer             user_data)
{
  GList *items = g_list_copy (webkit_context_menu_get_items (menu));

  /* Copying only: opening, downloading or reloading would go around the rules above. */
  for (GList *l = items; l != NULL; l = l->next)
    {
      WebKitContextMenuAction stock = webkit_context_menu_item_get_stock_action (l->data);

      if (stock != WEBKIT_CONTEXT_MENU_ACTION_COPY &&
          stock != WEBKIT_CONTEXT_MENU_ACTION_COPY_LINK_TO_CLIPBOARD &&
          stock != WEBKIT_CONTEXT_MENU_ACTION_COPY_IMAGE_TO_CLIPBOARD &&
          stock != WEBKIT_CONTEXT_MENU_ACTION_SELECT_ALL)
        webkit_context_menu_remove (menu, l->data);
    }
  g_list_free (items);
  return webkit_context_menu_get_n_items (menu) == 0;
}

static gboolean
permission_request_cb (WebKitWebView           *web_view,
                       WebKitPermissionRequest *request,
                       gpointer                 user_data)
{
  webkit_permission_request_deny (request);
  return TRUE;
}

static void
resource_load_started_cb (WebKitWebView     *web_view,
                          WebKitWebResource *resource,
                          WebKitURIRequest  *request,
                          ViewData          *view)
{
  g_autoptr(GObject) owner = g_weak_ref_get (&view->owner);

  if (owner != NULL)
    view->hooks->resource_requested (owner, webkit_uri_request_get_uri (request));
}

static void
load_changed_cb (WebKitWebView   *web_view,
                 WebKitLoadEvent  event,
                 ViewData        *view)
{
  g_autoptr(GObject) owner = g_weak_ref_get (&view->owner);

  if (event == WEBKIT_LOAD_FINISHED && owner != NULL)
    view->hooks->load_finished (owner, GTK_WIDGET (web_view));
}

/* WebKit connects to hosts ahead of need (preconnect, DNS prefetch, preload): none of
 * that for mail. These are WebKit's own feature names. */
static void
disable_speculative_loads (WebKitSettings *settings)
{
  static const char *const speculative[] = { "LinkPreconnect", "LinkDNSPrefetch", "LinkPreload",
                                             "LinkPrefetch", "LinkPreconnectEarlyHints", NULL };
  g_autoptr(WebKitFeatureList) features = webkit_settings_get_all_features ();

  for (gsize i = 0; i < webkit_feature_list_get_length (features); i++)
    {
      WebKitFeature *feature = webkit_feature_list_get (features, i);

      if (g_strv_contains (speculative, webkit_feature_get_identifier (feature)))
        webkit_settings_set_feature_enabled (settings, feature, FALSE);
    }
}

static GtkWidget *
html_view_new (gboolean                  remote,
               const LetterboxHtmlHooks *hooks,
               GObject                  *owner)
{
  g_autoptr(WebKitSettings) settings = webkit_settings_new ();
  g_autoptr(WebKitUserContentManager) content = webkit_user_content_manager_new ();
  WebKitWebContext *context = shared_context ();
  WebKitWebView *web_view;
  ViewData *view = g_new0 (ViewData, 1);

  webkit_settings_set_enable_javascript (settings, FALSE);
  webkit_settings_set_enable_javascript_markup (settings, FALSE);
  webkit_settings_set_enable_html5_local_storage (settings, FALSE);
  webkit_settings_set_enable_html5_database (settings, FALSE);
  webkit_settings_set_enable_developer_extras (settings, FALSE);
  webkit_settings_set_enable_webgl (settings, FALSE);
  webkit_settings_set_enable_webaudio (settings, FALSE);
  webkit_settings_set_enable_media (settings, FALSE);
  webkit_settings_set_enable_page_cache (settings, FALSE);
  webkit_settings_set_enable_back_forward_navigation_gestures (settings, FALSE);
  webkit_settings_set_auto_load_images (settings, TRUE);
  disable_speculative_loads (settings);
  if (!remote && remote_filter != NULL)
    webkit_user_content_manager_add_filter (content, remote_filter);

  web_view = g_object_new (WEBKIT_TYPE_WEB_VIEW,
                           "web-context", context,
                           "network-session", g_object_get_data (G_OBJECT (context),
                                                                 "letterbox-session"),
                           "settings", settings,
                           "user-content-manager", content,
                           "default-content-security-policy", remote ? REMOTE_CSP : STRICT_CSP,
                           "vexpand", TRUE,
                           "hexpand", TRUE,
                           NULL);
  view->hooks = hooks;
  g_weak_ref_init (&view->owner, owner);
  g_object_set_data_full (G_OBJECT (web_view), "letterbox-html", view, view_data_free);
  gtk_accessible_update_property (GTK_ACCESSIBLE (web_view), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Message body"), -1);
  g_signal_connect (web_view, "decide-policy", G_CALLBACK (decide_policy_cb), view);
  g_signal_connect (web_view, "mouse-target-changed", G_CALLBACK (mouse_target_changed_cb),
                    view);
  g_signal_connect (web_view, "context-menu", G_CALLBACK (context_menu_cb), NULL);
  g_signal_connect (web_view, "permission-request", G_CALLBACK (permission_request_cb), NULL);
  g_signal_connect (web_view, "resource-load-started", G_CALLBACK (resource_load_started_cb),
                    view);
  g_signal_connect (web_view, "load-changed", G_CALLBACK (load_changed_cb), view);
  return GTK_WIDGET (web_view);
}

static void
html_view_load (GtkWidget     *view,
                const char    *page,
                const GdkRGBA *background)
{
  webkit_web_view_set_background_color (WEBKIT_WEB_VIEW (view), background);
  webkit_web_view_load_html (WEBKIT_WEB_VIEW (view), page, NULL);
}

G_MODULE_EXPORT const LetterboxHtmlModule letterbox_html_module = {
  .abi = LETTERBOX_HTML_MODULE_ABI,
  .prepare_async = html_prepare_async,
  .prepare_finish = html_prepare_finish,
  .view_new = html_view_new,
  .view_load = html_view_load,
};
