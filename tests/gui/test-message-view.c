/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <adwaita.h>
#include <dlfcn.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <gdk/x11/gdkx.h>
#include <string.h>
#include <webkit/webkit.h>

#include "lb-store.h"
#include "lb-store-writer.h"
#include "lb-test-sync.h"
#include "lb-test-util.h"
#include "letterbox-message-view.h"

/*
 * The reading pane in-process, under Xvfb (run-gui-test.sh), with a real store and a
 * local HTTP server that counts what it is asked for:
 *  - an HTML mail with a remote <img>, a CSS background url(), a cid: image and a
 *    <script>: no request at all reaches the server while it is shown; the cid: image is
 *    requested from the message and painted (red pixels in a snapshot); the script never
 *    runs (the title it sets never appears); after "Show remote content" both remote
 *    resources are fetched; "Always for this sender" is remembered in GSettings;
 *  - a click on a link in the page navigates nowhere and asks first, showing the target;
 *  - dark style: a mail without colours of its own gets a dark page, one with its own
 *    colours stays light;
 *  - plain text: shown, URLs linked, a long quote folded behind "Show Quoted Text", a
 *    short one left; To and Cc decoded;
 *  - an attachment listed and saved byte for byte; its Open button hands a private copy
 *    to the desktop's application for the type, its Save button asks in the file chooser;
 *  - a body not downloaded and no backend to ask: an error with Retry;
 *  - a body not downloaded, with letterbox-backend on the test bus syncing an on-demand
 *    IMAP account against the Dovecot fixture: the spinner, FetchBody, then the text;
 *    and Retry after the backend has gone shows the error again.
 */

typedef struct
{
  GSocketService *service;
  guint16 port;
  GMutex lock;
  GPtrArray *paths;               /* what was asked for, in order */
  guint connections;              /* TCP connections accepted, with a request or not */
} Server;

GResource *letterbox_get_resource (void);

static Server server;
static char *data_dir;
static LbStore *store;
static LbStoreWriter *writer;
static gint64 folder_id;
static GtkWindow *window;
static LetterboxMessageView *view;
static GPtrArray *requested;      /* URIs the page started to load */

/* A red 1×1 GIF: the cid: image, and what the server answers. */
#define GIF_B64 "R0lGODlhAQABAIAAAP8AAAAAACH5BAAAAAAALAAAAAABAAEAAAICRAEAOw=="

/* In the service's own thread: a connection that never sends a request (WebKit opens
 * some ahead of time) must not hold up the test. */
static gboolean
run_cb (GThreadedSocketService *service,
        GSocketConnection      *connection,
        GObject                *source,
        gpointer                user_data)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autoptr(GDataInputStream) lines = g_data_input_stream_new (in);
  g_autofree char *request = NULL;
  gsize gif_len;
  g_autofree guchar *gif = g_base64_decode (GIF_B64, &gif_len);
  g_autofree char *head = g_strdup_printf ("HTTP/1.0 200 OK\r\nContent-Type: image/gif\r\n"
                                           "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                                           "Connection: close\r\n\r\n", gif_len);
  char *line;

  g_mutex_lock (&server.lock);
  server.connections++;
  g_mutex_unlock (&server.lock);

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (lines), FALSE);
  request = g_data_input_stream_read_line (lines, NULL, NULL, NULL);
  if (request == NULL)
    return TRUE;
  while ((line = g_data_input_stream_read_line (lines, NULL, NULL, NULL)) != NULL &&
         line[0] != '\0' && strcmp (line, "\r") != 0)
    g_free (line);
  g_free (line);
  {
    g_auto(GStrv) parts = g_strsplit (request, " ", 3);

    g_mutex_lock (&server.lock);
    g_ptr_array_add (server.paths, g_strdup (parts[0] != NULL && parts[1] != NULL ? parts[1]
                                                                                  : request));
    g_mutex_unlock (&server.lock);
  }
  g_output_stream_write_all (out, head, strlen (head), NULL, NULL, NULL);
  g_output_stream_write_all (out, gif, gif_len, NULL, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  return TRUE;
}

static guint
hits (const char *path)
{
  guint n = 0;

  g_mutex_lock (&server.lock);
  for (guint i = 0; i < server.paths->len; i++)
    if (path == NULL || strcmp (server.paths->pdata[i], path) == 0)
      n++;
  g_mutex_unlock (&server.lock);
  return n;
}

static guint
connections (void)
{
  guint n;

  g_mutex_lock (&server.lock);
  n = server.connections;
  g_mutex_unlock (&server.lock);
  return n;
}

static void
server_reset (void)
{
  g_mutex_lock (&server.lock);
  g_ptr_array_set_size (server.paths, 0);
  server.connections = 0;
  g_mutex_unlock (&server.lock);
}

static void
requested_cb (LetterboxMessageView *v,
              const char           *uri,
              gpointer              user_data)
{
  g_ptr_array_add (requested, g_strdup (uri));
}

static gboolean
was_requested (const char *uri)
{
  for (guint i = 0; i < requested->len; i++)
    if (strcmp (requested->pdata[i], uri) == 0)
      return TRUE;
  return FALSE;
}

static gint64 started;

static void
stamp (const char *what)
{
  g_test_message ("%.2f s: %s", (g_get_monotonic_time () - started) / 1e6, what);
}

static gint64
add_message (const char *raw,
             guint32     uid,
             gboolean    with_body)
{
  LbStoreMessage *m = lb_store_message_new ();  /* the writer takes it */
  g_autoptr(GInputStream) body = NULL;
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  gint64 id;

  m->folder_id = folder_id;
  m->uid = uid;
  m->date = 1700000000 + uid;
  m->sender = g_strdup ("Alice Example");
  m->sender_address = g_strdup ("alice@example.org");
  m->subject = g_strdup_printf ("Message %u", uid);
  m->preview = g_strdup ("");
  m->size = strlen (raw);
  if (with_body)
    body = g_memory_input_stream_new_from_data (raw, strlen (raw), NULL);
  lb_store_writer_add_async (writer, m, body, with_body ? (goffset) strlen (raw) : 0, NULL,
                             lb_test_wait_cb, &w);
  stamp ("adding");
  id = lb_store_writer_add_finish (writer, lb_test_wait_result (&w), &error);
  stamp ("added");
  g_object_unref (w.result);
  g_assert_no_error (error);
  return id;
}

static LbMessageSummary *
summary_for (gint64 id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = lb_store_list_messages (store, folder_id, 0, 1000, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < all->len; i++)
    if (lb_message_summary_get_id (all->pdata[i]) == id)
      return g_object_ref (all->pdata[i]);
  g_assert_not_reached ();
  return NULL;
}

typedef struct
{
  const char *state;
} StateWait;

static gboolean
state_is (gpointer user_data)
{
  StateWait *w = user_data;

  return g_strcmp0 (letterbox_message_view_get_state (view), w->state) == 0;
}

static void
show_and_wait (gint64      id,
               const char *state)
{
  g_autoptr(LbMessageSummary) summary = summary_for (id);
  StateWait w = { state };

  g_ptr_array_set_size (requested, 0);
  stamp ("show");
  letterbox_message_view_show (view, store, summary);
  if (!lb_test_wait_until (state_is, &w, 20000))
    g_error ("the view never reached state %s (it is %s)", state,
             letterbox_message_view_get_state (view));
  stamp (state);
}

/* Depth-first search of the widget tree. */
typedef gboolean (*WidgetMatch) (GtkWidget *widget, gconstpointer data);

static GtkWidget *
find_widget (GtkWidget     *root,
             WidgetMatch    match,
             gconstpointer  data)
{
  if (match (root, data))
    return root;
  for (GtkWidget *child = gtk_widget_get_first_child (root); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found = find_widget (child, match, data);

      if (found != NULL)
        return found;
    }
  return NULL;
}

static gboolean
is_button_labelled (GtkWidget     *widget,
                    gconstpointer  label)
{
  return GTK_IS_BUTTON (widget) && g_strcmp0 (gtk_button_get_label (GTK_BUTTON (widget)), label) == 0;
}

static gboolean
is_label_with (GtkWidget     *widget,
               gconstpointer  text)
{
  return GTK_IS_LABEL (widget) && gtk_widget_get_visible (widget) &&
         strstr (gtk_label_get_label (GTK_LABEL (widget)), text) != NULL;
}

static gboolean
is_type (GtkWidget     *widget,
         gconstpointer  type)
{
  return G_TYPE_CHECK_INSTANCE_TYPE (widget, GPOINTER_TO_SIZE (type));
}

/* ---- HTML -------------------------------------------------------------------------- */

static char *
html_message (void)
{
  g_autofree char *base = g_strdup_printf ("http://127.0.0.1:%u", server.port);

  return g_strdup_printf (
    "From: Alice Example <alice@example.org>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: HTML with remote content\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/related; boundary=r\r\n"
    "\r\n"
    "--r\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><head><title>Mail</title></head><body>"
    "<a id=l href=\"%s/clicked\" style=\"display:block;width:300px;height:100px;"
    "background-color:#0000ff\">www.example.org</a>"
    "<img src=\"cid:red@x\" width=\"200\" height=\"200\">"
    "<img src=\"%s/remote.gif\" width=\"10\" height=\"10\">"
    "<div style=\"width:10px;height:10px;background-image:url(%s/bg.gif)\"></div>"
    "<script>document.title = 'SCRIPT RAN'; new Image().src = '%s/script.gif';</script>"
    "</body></html>\r\n"
    "--r\r\n"
    "Content-Type: image/gif\r\n"
    "Content-ID: <red@x>\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    GIF_B64 "\r\n"
    "--r--\r\n",
    base, base, base, base);
}

typedef struct
{
  GdkTexture *texture;
  GError *error;
  gboolean done;
} Snapshot;

static void
snapshot_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Snapshot *s = user_data;

  s->texture = webkit_web_view_get_snapshot_finish (WEBKIT_WEB_VIEW (source), result, &s->error);
  s->done = TRUE;
}

static gboolean
snapshot_done (gpointer user_data)
{
  return ((Snapshot *) user_data)->done;
}

/* How many pixels of the visible page are pure red (the cid: image, scaled). */
static guint
red_pixels (WebKitWebView *web_view)
{
  Snapshot s = { 0 };
  g_autofree guchar *pixels = NULL;
  int width, height;
  guint red = 0;

  webkit_web_view_get_snapshot (web_view, WEBKIT_SNAPSHOT_REGION_VISIBLE,
                                WEBKIT_SNAPSHOT_OPTIONS_NONE, NULL, snapshot_cb, &s);
  g_assert_true (lb_test_wait_until (snapshot_done, &s, 20000));
  g_assert_no_error (s.error);
  width = gdk_texture_get_width (s.texture);
  height = gdk_texture_get_height (s.texture);
  pixels = g_malloc ((gsize) width * height * 4);
  gdk_texture_download (s.texture, pixels, (gsize) width * 4);
  /* GDK_MEMORY_DEFAULT: B G R A on little-endian machines (cairo's ARGB32). */
  for (gsize i = 0; i < (gsize) width * height; i++)
    if (pixels[i * 4 + 2] > 240 && pixels[i * 4 + 1] < 16 && pixels[i * 4] < 16)
      red++;
  g_object_unref (s.texture);
  return red;
}

static gboolean
remote_loaded (gpointer user_data)
{
  return hits ("/remote.gif") > 0 && hits ("/bg.gif") > 0;
}

static void
test_html_remote_content (void)
{
  g_autofree char *raw = html_message ();
  gint64 id = add_message (raw, 10, TRUE);
  g_autofree char *cid_uri = g_strdup ("cid:red@x");
  WebKitWebView *web_view;
  GtkWidget *show_button;
  guint red;

  server_reset ();
  show_and_wait (id, "html");
  web_view = WEBKIT_WEB_VIEW (letterbox_message_view_get_web_view (view));
  g_assert_nonnull (web_view);

  /* Nothing reached the network, not even a connection; the cid: image came from the
   * message and is painted. */
  g_assert_cmpuint (hits (NULL), ==, 0);
  g_assert_cmpuint (connections (), ==, 0);
  g_assert_true (was_requested (cid_uri));
  red = red_pixels (web_view);
  g_test_message ("red pixels: %u", red);
  g_assert_cmpuint (red, >=, 150 * 150);
  g_assert_cmpstr (webkit_web_view_get_title (web_view), !=, "SCRIPT RAN");
  g_assert_cmpstr (webkit_web_view_get_title (web_view), ==, "Mail");

  /* The bar offers remote content. */
  show_button = find_widget (GTK_WIDGET (view), is_button_labelled, "_Show Remote Content");
  g_assert_nonnull (show_button);
  g_assert_true (gtk_revealer_get_reveal_child (
    GTK_REVEALER (gtk_widget_get_ancestor (show_button, GTK_TYPE_REVEALER))));
  g_assert_cmpuint (hits (NULL), ==, 0);

  /* Clicked: the remote image and the background are fetched, the script still never ran. */
  gtk_widget_activate (show_button);
  g_assert_true (lb_test_wait_until (remote_loaded, NULL, 20000));
  {
    StateWait w = { "html" };

    g_assert_true (lb_test_wait_until (state_is, &w, 20000));
  }
  web_view = WEBKIT_WEB_VIEW (letterbox_message_view_get_web_view (view));
  g_assert_cmpstr (webkit_web_view_get_title (web_view), !=, "SCRIPT RAN");
  g_assert_cmpuint (hits ("/script.gif"), ==, 0);
  g_assert_false (gtk_revealer_get_reveal_child (
    GTK_REVEALER (gtk_widget_get_ancestor (show_button, GTK_TYPE_REVEALER))));

  /* Another message of the same sender: blocked again (this message only). */
  {
    gint64 other = add_message (raw, 11, TRUE);

    server_reset ();
    show_and_wait (other, "html");
    g_assert_cmpuint (hits (NULL), ==, 0);
    g_assert_true (gtk_revealer_get_reveal_child (
      GTK_REVEALER (gtk_widget_get_ancestor (show_button, GTK_TYPE_REVEALER))));

    /* "Always for this sender": remembered, and the next message loads at once. */
    gtk_widget_activate_action (GTK_WIDGET (view), "view.always-remote-content", NULL);
    g_assert_true (lb_test_wait_until (remote_loaded, NULL, 20000));
    {
      g_autoptr(GSettings) settings = g_settings_new (APP_ID);
      g_auto(GStrv) senders = g_settings_get_strv (settings, "remote-content-senders");

      g_assert_true (g_strv_contains ((const char * const *) senders, "alice@example.org"));
      g_settings_set_strv (settings, "remote-content-senders", NULL);
    }
  }
}

/* The page's own background at its top-left corner, as painted. */
static guint
corner_brightness (WebKitWebView *web_view)
{
  Snapshot s = { 0 };
  guchar pixel[4];

  webkit_web_view_get_snapshot (web_view, WEBKIT_SNAPSHOT_REGION_VISIBLE,
                                WEBKIT_SNAPSHOT_OPTIONS_NONE, NULL, snapshot_cb, &s);
  g_assert_true (lb_test_wait_until (snapshot_done, &s, 20000));
  g_assert_no_error (s.error);
  {
    gsize stride = (gsize) gdk_texture_get_width (s.texture) * 4;
    g_autofree guchar *pixels = g_malloc (stride * gdk_texture_get_height (s.texture));

    gdk_texture_download (s.texture, pixels, stride);
    memcpy (pixel, pixels + stride * 2 + 2 * 4, 4);
  }
  g_object_unref (s.texture);
  return (pixel[0] + pixel[1] + pixel[2]) / 3;
}

static void
test_dark_style (void)
{
  const char *plain = "From: a@example.org\r\nSubject: d\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/html\r\n\r\n<p>No colours of its own</p>\r\n";
  const char *styled = "From: a@example.org\r\nSubject: e\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: text/html\r\n\r\n"
                       "<body style=\"color:#222222\"><p>Its own colours</p></body>\r\n";
  gint64 plain_id = add_message (plain, 50, TRUE);
  gint64 styled_id = add_message (styled, 51, TRUE);
  AdwStyleManager *manager = adw_style_manager_get_default ();
  StateWait html = { "html" };

  show_and_wait (plain_id, "html");
  g_assert_cmpuint (corner_brightness (WEBKIT_WEB_VIEW (letterbox_message_view_get_web_view (view))), >, 200);

  /* Dark: the page follows, at once. */
  adw_style_manager_set_color_scheme (manager, ADW_COLOR_SCHEME_FORCE_DARK);
  g_assert_true (adw_style_manager_get_dark (manager));
  g_assert_true (lb_test_wait_until (state_is, &html, 20000));
  g_assert_cmpuint (corner_brightness (WEBKIT_WEB_VIEW (letterbox_message_view_get_web_view (view))), <, 60);

  /* A mail that sets its own colours stays as its author made it. */
  show_and_wait (styled_id, "html");
  g_assert_cmpuint (corner_brightness (WEBKIT_WEB_VIEW (letterbox_message_view_get_web_view (view))), >, 200);
  adw_style_manager_set_color_scheme (manager, ADW_COLOR_SCHEME_DEFAULT);
}

/* XTest from the X server the test runs on, loaded at run time (no -dev package). */
typedef int (*MotionFunc) (Display *, int, int, int, unsigned long);
typedef int (*ButtonFunc) (Display *, unsigned int, int, unsigned long);

static MotionFunc xtest_motion;
static ButtonFunc xtest_button;

static gboolean
xtest_available (GtkWidget *widget)
{
  void *xtst;

  if (!GDK_IS_X11_DISPLAY (gtk_widget_get_display (widget)))
    return FALSE;
  if (xtest_motion == NULL && (xtst = dlopen ("libXtst.so.6", RTLD_NOW)) != NULL)
    {
      xtest_motion = (MotionFunc) dlsym (xtst, "XTestFakeMotionEvent");
      xtest_button = (ButtonFunc) dlsym (xtst, "XTestFakeButtonEvent");
    }
  return xtest_motion != NULL && xtest_button != NULL;
}

static Display *
pointer_to (GtkWidget *widget,
            double     x,
            double     y)
{
  GtkNative *native = gtk_widget_get_native (widget);
  Display *xdisplay = gdk_x11_display_get_xdisplay (gtk_widget_get_display (widget));
  graphene_point_t in = GRAPHENE_POINT_INIT (x, y), out;
  double sx, sy;
  int rx, ry;
  Window child;

  g_assert_true (gtk_widget_compute_point (widget, GTK_WIDGET (native), &in, &out));
  gtk_native_get_surface_transform (native, &sx, &sy);
  XTranslateCoordinates (xdisplay, gdk_x11_surface_get_xid (gtk_native_get_surface (native)),
                         DefaultRootWindow (xdisplay), (int) (out.x + sx), (int) (out.y + sy),
                         &rx, &ry, &child);
  xtest_motion (xdisplay, -1, rx, ry, 0);
  XFlush (xdisplay);
  return xdisplay;
}

static void
hover_cb (WebKitWebView       *web_view,
          WebKitHitTestResult *hit,
          guint                modifiers,
          gboolean            *over_link)
{
  *over_link = webkit_hit_test_result_context_is_link (hit);
}

static gboolean
is_true (gpointer user_data)
{
  return *(gboolean *) user_data;
}

static GtkWidget *
find_dialog (void)
{
  GListModel *toplevels = gtk_window_get_toplevels ();

  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr(GObject) w = g_list_model_get_item (toplevels, i);

      if (ADW_IS_MESSAGE_DIALOG (w))
        return GTK_WIDGET (w);
    }
  return NULL;
}

static gboolean
dialog_shown (gpointer user_data)
{
  return find_dialog () != NULL;
}

static void
test_link_click (void)
{
  g_autofree char *raw = html_message ();
  gint64 id = add_message (raw, 12, TRUE);
  g_autofree char *target = g_strdup_printf ("http://127.0.0.1:%u/clicked", server.port);
  WebKitWebView *web_view;
  GtkWidget *dialog;
  const char *body;

  server_reset ();
  show_and_wait (id, "html");
  web_view = WEBKIT_WEB_VIEW (letterbox_message_view_get_web_view (view));
  if (!xtest_available (GTK_WIDGET (web_view)))
    {
      g_test_skip ("no XTest to click with");
      return;
    }
  /* The link is the first thing in the page: 300×100 at the body's margin (12, 24).
   * The pointer goes there first, and the click follows once WebKit says it is over
   * the link (the page is laid out and hit-testable by then). */
  {
    gboolean over_link = FALSE;
    gulong handler = g_signal_connect (web_view, "mouse-target-changed", G_CALLBACK (hover_cb),
                                       &over_link);
    Display *xdisplay = NULL;

    for (int dx = 0; !over_link && dx < 20; dx += 5)
      {
        xdisplay = pointer_to (GTK_WIDGET (web_view), 24 + 60 + dx, 12 + 40);
        lb_test_wait_until (is_true, &over_link, 2000);
      }
    g_signal_handler_disconnect (web_view, handler);
    g_assert_true (over_link);
    stamp ("over the link");
    /* Hovering opens nothing. */
    g_assert_cmpuint (connections (), ==, 0);
    xtest_button (xdisplay, 1, True, 0);
    xtest_button (xdisplay, 1, False, 0);
    XFlush (xdisplay);
  }
  g_assert_true (lb_test_wait_until (dialog_shown, NULL, 20000));
  dialog = find_dialog ();
  body = adw_message_dialog_get_body (ADW_MESSAGE_DIALOG (dialog));
  g_test_message ("dialog: %s", body);
  /* The real target, and a warning that the text shows another address. */
  g_assert_nonnull (strstr (body, target));
  g_assert_nonnull (strstr (body, "www.example.org"));
  /* The view did not navigate, and nothing was fetched. */
  g_assert_cmpstr (webkit_web_view_get_uri (web_view), ==, "about:blank");
  g_assert_cmpuint (hits (NULL), ==, 0);
  /* Not even a connection: WebKit's speculative preconnect on mouse-down (before any
   * policy is asked) is turned off for mail. */
  g_assert_cmpuint (connections (), ==, 0);
  stamp ("respond");
  adw_message_dialog_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  stamp ("responded");
  gtk_window_destroy (GTK_WINDOW (dialog));
  stamp ("destroyed");
  g_assert_cmpuint (hits (NULL), ==, 0);
  g_assert_cmpstr (letterbox_message_view_get_state (view), ==, "html");
}

/* ---- plain text, attachments, errors ----------------------------------------------- */

static char *
visible_text (GtkTextView *text_view)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (text_view);
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (buffer, &start, &end);
  return gtk_text_iter_get_visible_text (&start, &end);
}

static void
test_plain_text (void)
{
  const char *raw = "From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.org>\r\n"
                    "To: Bob <bob@example.org>, carol@example.org\r\n"
                    "Cc: =?ISO-8859-1?Q?Ren=E9?= <rene@example.org>\r\n"
                    "Subject: Plain\r\n"
                    "\r\n"
                    "Hello Bob, see https://example.org/page.\r\n"
                    "\r\n"
                    "On Monday you wrote:\r\n"
                    "> old line one\r\n"
                    "> old line two\r\n"
                    "> old line three\r\n"
                    "> old line four\r\n"
                    "> old line five\r\n"
                    "\r\n"
                    "Short answer\r\n"
                    "> just one quoted\r\n"
                    "Bye\r\n";
  gint64 id = add_message (raw, 20, TRUE);
  GtkTextView *text_view;
  GtkWidget *toggle;
  g_autofree char *shown = NULL;
  g_autofree char *expanded = NULL;

  show_and_wait (id, "text");
  text_view = GTK_TEXT_VIEW (find_widget (GTK_WIDGET (view), is_type,
                                          GSIZE_TO_POINTER (GTK_TYPE_TEXT_VIEW)));
  shown = visible_text (text_view);
  g_test_message ("shown: %s", shown);
  g_assert_nonnull (strstr (shown, "Hello Bob, see https://example.org/page."));
  g_assert_nonnull (strstr (shown, "On Monday you wrote:"));
  g_assert_null (strstr (shown, "old line"));
  g_assert_nonnull (strstr (shown, "> just one quoted"));
  g_assert_nonnull (strstr (shown, "Bye"));

  /* Decoded headers. */
  g_assert_nonnull (find_widget (GTK_WIDGET (view), is_label_with, "Jürgen <juergen@example.org>"));
  g_assert_nonnull (find_widget (GTK_WIDGET (view), is_label_with,
                                 "Bob <bob@example.org>, carol@example.org"));
  g_assert_nonnull (find_widget (GTK_WIDGET (view), is_label_with, "René <rene@example.org>"));

  /* The URL is a link. */
  {
    GtkTextBuffer *buffer = gtk_text_view_get_buffer (text_view);
    GtkTextIter start, iter;
    gboolean linked = FALSE;
    g_autoptr(GSList) tags = NULL;

    gtk_text_buffer_get_start_iter (buffer, &start);
    g_assert_true (gtk_text_iter_forward_search (&start, "example.org/page", 0, &iter, NULL,
                                                 NULL));
    tags = gtk_text_iter_get_tags (&iter);

    for (GSList *l = tags; l != NULL; l = l->next)
      if (g_strcmp0 (g_object_get_data (l->data, "letterbox-uri"), "https://example.org/page") == 0)
        linked = TRUE;
    g_assert_true (linked);
  }

  /* Unfolded on request. */
  toggle = find_widget (GTK_WIDGET (view), is_button_labelled, "Show Quoted Text");
  g_assert_nonnull (toggle);
  g_signal_emit_by_name (toggle, "clicked");
  expanded = visible_text (text_view);
  g_assert_nonnull (strstr (expanded, "> old line one"));
  g_assert_nonnull (strstr (expanded, "> old line five"));
  g_assert_cmpstr (gtk_button_get_label (GTK_BUTTON (toggle)), ==, "Hide Quoted Text");
}

typedef struct
{
  GAsyncResult *result;
} Saved;

static const char attachment_raw[] = "From: Alice <alice@example.org>\r\n"
                    "To: bob@example.org\r\n"
                    "Subject: Report\r\n"
                    "MIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=m\r\n"
                    "\r\n"
                    "--m\r\n"
                    "Content-Type: text/plain\r\n"
                    "\r\n"
                    "See attached.\r\n"
                    "--m\r\n"
                    "Content-Type: application/pdf; name=report.pdf\r\n"
                    "Content-Disposition: attachment; filename=report.pdf\r\n"
                    "Content-Transfer-Encoding: base64\r\n"
                    "\r\n"
                    "JVBERi0xLjQKJcTl8uXr\r\n"
                    "--m--\r\n";

static void
test_attachment (void)
{
  gint64 id = add_message (attachment_raw, 30, TRUE);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-view-save-XXXXXX", &error);
  g_autoptr(GFile) file = NULL;
  g_autofree char *contents = NULL;
  gsize len;
  LbTestWait w = { 0 };
  GtkWidget *row;

  g_assert_no_error (error);
  show_and_wait (id, "text");
  row = find_widget (GTK_WIDGET (view), is_type, GSIZE_TO_POINTER (ADW_TYPE_ACTION_ROW));
  g_assert_nonnull (row);
  g_assert_cmpstr (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (row)), ==, "report.pdf");
  g_assert_nonnull (strstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (row)), "15 bytes"));

  file = g_file_new_build_filename (dir, "saved.pdf", NULL);
  letterbox_message_view_save_attachment_async (view, 0, file, NULL, lb_test_wait_cb, &w);
  g_assert_true (letterbox_message_view_save_attachment_finish (view, lb_test_wait_result (&w),
                                                                &error));
  g_clear_object (&w.result);
  g_assert_no_error (error);
  g_assert_true (g_file_load_contents (file, NULL, &contents, &len, NULL, &error));
  g_assert_cmpmem (contents, len, "%PDF-1.4\n%\xc4\xe5\xf2\xe5\xeb", 15);

  /* An index past the list: a clear error, nothing written. */
  letterbox_message_view_save_attachment_async (view, 5, file, NULL, lb_test_wait_cb, &w);
  g_assert_false (letterbox_message_view_save_attachment_finish (view, lb_test_wait_result (&w),
                                                                 &error));
  g_clear_object (&w.result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  lb_test_remove_tree (dir);
}

static gboolean
is_button_with_tooltip (GtkWidget     *widget,
                        gconstpointer  text)
{
  return GTK_IS_BUTTON ((GtkWidget *) widget) &&
         g_strcmp0 (gtk_widget_get_tooltip_text (widget), text) == 0;
}

static gboolean
is_mapped (gpointer user_data)
{
  return gtk_widget_get_mapped (user_data);
}

static gboolean
has_pdf (gpointer user_data)
{
  g_autofree char *contents = NULL;
  gsize len = 0;

  return g_file_get_contents (user_data, &contents, &len, NULL) && len == 15 &&
         memcmp (contents, "%PDF-1.4\n%\xc4\xe5\xf2\xe5\xeb", 15) == 0;
}

static GtkWidget *
file_chooser_dialog (void)
{
  GListModel *toplevels = gtk_window_get_toplevels ();

  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr(GtkWidget) toplevel = g_list_model_get_item (toplevels, i);

      if (GTK_IS_FILE_CHOOSER_DIALOG (toplevel) && gtk_widget_get_visible (toplevel))
        return toplevel;
    }
  return NULL;
}

/* Whether the open file chooser would save to the path @user_data. */
static gboolean
chooser_names (gpointer user_data)
{
  GtkWidget *dialog = file_chooser_dialog ();
  g_autoptr(GFile) file = dialog != NULL ? gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog))
                                         : NULL;
  g_autofree char *path = file != NULL ? g_file_get_path (file) : NULL;

  return g_strcmp0 (path, user_data) == 0;
}

static gboolean
chooser_shown (gpointer user_data)
{
  return file_chooser_dialog () != NULL;
}

/* The attachment row's own buttons, as a person clicks them: Open writes a private copy
 * and hands it to the desktop's application for the type (here a script that copies it
 * where the test can read it); Save asks where, in the file chooser, and writes there. */
static void
test_attachment_buttons (void)
{
  gint64 id = add_message (attachment_raw, 31, TRUE);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-view-open-XXXXXX", &error);
  g_autofree char *apps = g_build_filename (g_get_user_data_dir (), "applications", NULL);
  g_autofree char *script = g_build_filename (dir, "opener.sh", NULL);
  g_autofree char *opened = g_build_filename (dir, "opened.pdf", NULL);
  g_autofree char *opened_path = g_build_filename (dir, "opened-path", NULL);
  g_autofree char *saved = g_build_filename (dir, "chosen.pdf", NULL);
  g_autofree char *script_text = NULL;
  g_autofree char *desktop_path = NULL;
  g_autofree char *desktop_text = NULL;
  g_autofree char *mimeapps = NULL;
  g_autofree char *path = NULL;
  g_autofree char *private_dir = NULL;
  g_autofree char *cache = g_build_filename (g_get_user_cache_dir (), "letterbox", "attachments",
                                             NULL);
  GtkWidget *open, *save, *dialog;
  GStatBuf st;

  g_assert_no_error (error);
  /* The desktop's handler for PDF: installed as any application is, in the (private)
   * XDG directories run-gui-test.sh gives the test. */
  script_text = g_strdup_printf ("#!/bin/sh\nprintf '%%s' \"$1\" > '%s'\n"
                                 "cp \"$1\" '%s.part' && mv '%s.part' '%s'\n",
                                 opened_path, opened, opened, opened);
  g_assert_true (g_file_set_contents (script, script_text, -1, &error));
  g_assert_cmpint (g_chmod (script, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (apps, 0700), ==, 0);
  desktop_path = g_build_filename (apps, "lb-test-opener.desktop", NULL);
  desktop_text = g_strdup_printf ("[Desktop Entry]\nType=Application\nName=Test opener\n"
                                  "Exec=%s %%f\nMimeType=application/pdf;\nNoDisplay=true\n",
                                  script);
  g_assert_true (g_file_set_contents (desktop_path, desktop_text, -1, &error));
  mimeapps = g_build_filename (g_get_user_config_dir (), "mimeapps.list", NULL);
  g_assert_true (g_file_set_contents (mimeapps, "[Default Applications]\n"
                                      "application/pdf=lb-test-opener.desktop\n", -1, &error));

  show_and_wait (id, "text");
  open = find_widget (GTK_WIDGET (view), is_button_with_tooltip, "Open “report.pdf”");
  save = find_widget (GTK_WIDGET (view), is_button_with_tooltip, "Save “report.pdf”");
  g_assert_nonnull (open);
  g_assert_nonnull (save);

  /* Open: the handler gets a copy in a private folder under the cache. */
  /* The attachments slide in: a click lands once the buttons are on screen. */
  g_assert_true (lb_test_wait_until (is_mapped, open, 20000));
  g_assert_true (gtk_widget_activate (open));
  g_assert_true (lb_test_wait_until (has_pdf, opened, 20000));
  g_assert_true (g_file_get_contents (opened_path, &path, NULL, &error));
  g_assert_true (g_str_has_prefix (path, cache));
  g_assert_true (g_str_has_suffix (path, "/report.pdf"));
  private_dir = g_path_get_dirname (path);
  g_assert_cmpint (g_stat (private_dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_true (has_pdf (path));

  /* Save: the file chooser asks; the file lands where the person chose. */
  gtk_widget_activate (save);
  g_assert_true (lb_test_wait_until (chooser_shown, NULL, 20000));
  dialog = file_chooser_dialog ();
  {
    g_autofree char *proposed = gtk_file_chooser_get_current_name (GTK_FILE_CHOOSER (dialog));

    g_assert_cmpstr (proposed, ==, "report.pdf");
  }
  /* As a person types it into the name field: the whole path. */
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), saved);
  g_assert_true (lb_test_wait_until (chooser_names, saved, 20000));
  gtk_dialog_response (GTK_DIALOG (dialog), GTK_RESPONSE_ACCEPT);
  g_assert_true (lb_test_wait_until (has_pdf, saved, 20000));
  g_assert_null (file_chooser_dialog ());

  g_unlink (mimeapps);
  g_unlink (desktop_path);
  lb_test_remove_tree (private_dir);
  lb_test_remove_tree (dir);
}

static void
test_not_downloaded (void)
{
  gint64 id = add_message ("From: a@example.org\r\nSubject: later\r\n\r\nx\r\n", 40, FALSE);
  GtkWidget *retry;

  show_and_wait (id, "error");
  retry = find_widget (GTK_WIDGET (view), is_button_labelled, "_Retry");
  g_assert_nonnull (retry);
  g_assert_true (gtk_widget_get_mapped (retry));
  g_assert_nonnull (find_widget (GTK_WIDGET (view), is_label_with, "cannot be reached"));

  /* Retry goes through the same path (no backend yet): the same clear error. */
  gtk_widget_activate (retry);
  {
    StateWait w = { "error" };

    g_assert_true (lb_test_wait_until (state_is, &w, 20000));
  }

  letterbox_message_view_show (view, store, NULL);
  g_assert_cmpstr (letterbox_message_view_get_state (view), ==, "empty");
}

/* ---- bodies on demand through the real backend ------------------------------------ */

static gboolean
headers_synced (gpointer user_data)
{
  gint64 n = 0;

  return lb_test_store_try_query_int (user_data, "SELECT count(*) FROM messages m JOIN folders "
                                                 "f ON f.id = m.folder_id WHERE f.account_id = "
                                                 "'work'", &n) && n == 1;
}

static gboolean
has_owner (gpointer user_data)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (user_data);

  return owner != NULL;
}

static void
test_fetch_on_demand (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *config_dir = g_dir_make_tmp ("lb-view-config-XXXXXX", &error);
  g_autofree char *dir = g_dir_make_tmp ("lb-view-backend-XXXXXX", &error);
  g_autofree char *accounts = g_build_filename (config_dir, "accounts", NULL);
  g_autofree char *account = NULL;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GSubprocess) backend = NULL;
  g_autoptr(LbBusBackend1) proxy = NULL;
  g_autoptr(LbStore) remote_store = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GPtrArray) messages = NULL;
  g_autoptr(LbMessageSummary) summary = NULL;
  LbTestServers *servers;
  const char *backend_path = g_getenv ("LB_BACKEND_PATH");
  gboolean saw_spinner = FALSE;
  GtkTextView *text_view;
  g_autofree char *shown = NULL;
  StateWait text = { "text" }, failed = { "error" };

  g_assert_no_error (error);
  if (backend_path == NULL)
    {
      g_test_skip ("LB_BACKEND_PATH is not set");
      return;
    }
  stamp ("starting servers");
  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  stamp ("servers started");
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "expunge", "-u", "alice@example.test",
                           "mailbox", "*", "all", NULL);
  g_assert_no_error (error);
  lb_test_servers_doveadm (servers,
                           "From: Carol <carol@example.org>\r\nTo: alice@example.test\r\n"
                           "Subject: Fetched later\r\nMessage-ID: <view-fetch@example.org>\r\n"
                           "\r\nThe marmalade recipe, downloaded when opened.\r\n",
                           NULL, &error, "save", "-u", "alice@example.test", "-m", "INBOX", NULL);
  g_assert_no_error (error);

  account = g_strdup_printf ("[account]\ndisplay-name=Work\nca-file=%s\n"
                             "password-command=printf %%s alice-password\n\n"
                             "[identity]\naddress=alice@example.test\n\n"
                             "[incoming]\nprotocol=imap\nsecurity=tls\nhost=%s\nport=%u\n"
                             "user=alice@example.test\n\n[sync]\nbodies=on-demand\n",
                             servers->ca_file, servers->host, (guint) servers->imaps_port);
  g_assert_cmpint (g_mkdir_with_parents (accounts, 0700), ==, 0);
  {
    g_autofree char *path = g_build_filename (accounts, "work.ini", NULL);

    g_assert_true (g_file_set_contents (path, account, -1, &error));
  }

  g_subprocess_launcher_setenv (launcher, "LETTERBOX_CONFIG_DIR", config_dir, TRUE);
  backend = g_subprocess_launcher_spawn (launcher, &error, backend_path, "--data-dir", dir,
                                         "--poll-interval", "600", NULL);
  g_assert_no_error (error);
  g_assert_true (lb_test_wait_until (headers_synced, dir, 30000));
  stamp ("headers synced");

  proxy = lb_bus_backend1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION,
                                                  G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START |
                                                  G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                                  "org.letterbox.Backend",
                                                  "/org/letterbox/Backend", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (lb_test_wait_until (has_owner, proxy, 10000));
  letterbox_message_view_set_backend (view, proxy);

  remote_store = lb_store_open (dir, &error);
  g_assert_no_error (error);
  folders = lb_store_list_folders (remote_store, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < folders->len && messages == NULL; i++)
    if (g_strcmp0 (lb_folder_get_account_id (folders->pdata[i]), "work") == 0 &&
        lb_folder_get_role (folders->pdata[i]) == LB_FOLDER_ROLE_INBOX)
      messages = lb_store_list_messages (remote_store, lb_folder_get_id (folders->pdata[i]), 0,
                                         10, &error);
  g_assert_no_error (error);
  g_assert_nonnull (messages);
  g_assert_cmpuint (messages->len, ==, 1);
  summary = g_object_ref (messages->pdata[0]);

  /* Headers only: the spinner while FetchBody runs, then the text. */
  letterbox_message_view_show (view, remote_store, summary);
  for (gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
       g_strcmp0 (letterbox_message_view_get_state (view), "text") != 0 &&
       g_get_monotonic_time () < deadline;)
    {
      saw_spinner |= g_strcmp0 (letterbox_message_view_get_state (view), "loading") == 0;
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_true (saw_spinner);
  g_assert_true (lb_test_wait_until (state_is, &text, 1000));
  text_view = GTK_TEXT_VIEW (find_widget (GTK_WIDGET (view), is_type,
                                          GSIZE_TO_POINTER (GTK_TYPE_TEXT_VIEW)));
  shown = visible_text (text_view);
  g_assert_nonnull (strstr (shown, "The marmalade recipe, downloaded when opened."));
  g_assert_nonnull (find_widget (GTK_WIDGET (view), is_label_with, "Carol <carol@example.org>"));

  stamp ("fetched and shown");
  /* The backend gone: a fresh message of the account cannot be fetched; Retry says so. */
  g_subprocess_send_signal (backend, SIGTERM);
  g_assert_true (g_subprocess_wait (backend, NULL, &error));
  g_assert_no_error (error);
  lb_test_servers_doveadm (servers,
                           "From: Carol <carol@example.org>\r\nTo: alice@example.test\r\n"
                           "Subject: Second\r\nMessage-ID: <view-fetch-2@example.org>\r\n"
                           "\r\nNot fetched.\r\n",
                           NULL, &error, "save", "-u", "alice@example.test", "-m", "INBOX", NULL);
  g_assert_no_error (error);
  {
    g_autoptr(LbMessageSummary) missing = NULL;
    g_autoptr(GPtrArray) folder = NULL;
    LbStoreMessage *row = lb_store_message_new ();
    g_autoptr(LbStoreWriter) remote_writer = lb_store_writer_new (dir, &error);
    LbTestWait w = { 0 };
    gint64 folder_of_row = lb_message_summary_get_folder_id (summary);
    gint64 id;

    g_assert_no_error (error);
    row->folder_id = folder_of_row;
    row->uid = 999;
    row->sender = g_strdup ("Carol");
    row->subject = g_strdup ("Second");
    lb_store_writer_add_async (remote_writer, row, NULL, 0, NULL, lb_test_wait_cb, &w);
    id = lb_store_writer_add_finish (remote_writer, lb_test_wait_result (&w), &error);
    g_clear_object (&w.result);
    g_assert_no_error (error);
    lb_store_writer_close (remote_writer);
    /* The writer took @row. */
    folder = lb_store_list_messages (remote_store, folder_of_row, 0, 10, &error);
    g_assert_no_error (error);
    for (guint i = 0; i < folder->len; i++)
      if (lb_message_summary_get_id (folder->pdata[i]) == id)
        missing = g_object_ref (folder->pdata[i]);
    g_assert_nonnull (missing);
    letterbox_message_view_show (view, remote_store, missing);
    g_assert_true (lb_test_wait_until (state_is, &failed, 30000));
    gtk_widget_activate_action (GTK_WIDGET (view), "view.retry", NULL);
    g_assert_true (lb_test_wait_until (state_is, &failed, 30000));
  }

  stamp ("retried");
  letterbox_message_view_set_backend (view, NULL);
  letterbox_message_view_show (view, NULL, NULL);
  lb_test_servers_stop (servers);
  stamp ("servers stopped");
  lb_test_remove_tree (config_dir);
  lb_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  int status;

  started = g_get_monotonic_time ();
  gtk_test_init (&argc, &argv, NULL);
  adw_init ();
  /* Pulls the app's resources (registered by their constructor) out of the static library. */
  g_assert_nonnull (letterbox_get_resource ());

  data_dir = g_dir_make_tmp ("lb-view-XXXXXX", &error);
  g_assert_no_error (error);
  store = lb_store_open (data_dir, &error);
  g_assert_no_error (error);
  writer = lb_store_writer_new (data_dir, &error);
  g_assert_no_error (error);
  lb_store_writer_ensure_folder_async (writer, "work", "imap", "Work", "INBOX",
                                       LB_FOLDER_ROLE_INBOX, NULL, lb_test_wait_cb, &w);
  folder_id = lb_store_writer_ensure_folder_finish (writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);

  server.paths = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&server.lock);
  server.service = g_threaded_socket_service_new (4);
  {
    g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
    g_autoptr(GSocketAddress) effective = NULL;

    g_socket_listener_add_address (G_SOCKET_LISTENER (server.service), address,
                                   G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &effective,
                                   &error);
    g_assert_no_error (error);
    server.port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  }
  g_signal_connect (server.service, "run", G_CALLBACK (run_cb), NULL);
  g_socket_service_start (server.service);

  requested = g_ptr_array_new_with_free_func (g_free);
  window = GTK_WINDOW (gtk_window_new ());
  gtk_window_set_default_size (window, 900, 700);
  view = LETTERBOX_MESSAGE_VIEW (letterbox_message_view_new ());
  g_signal_connect (view, "resource-requested", G_CALLBACK (requested_cb), NULL);
  gtk_window_set_child (window, GTK_WIDGET (view));
  gtk_window_present (window);

  g_test_add_func ("/message-view/html-remote-content", test_html_remote_content);
  g_test_add_func ("/message-view/link-click", test_link_click);
  g_test_add_func ("/message-view/dark-style", test_dark_style);
  g_test_add_func ("/message-view/plain-text", test_plain_text);
  g_test_add_func ("/message-view/attachment", test_attachment);
  g_test_add_func ("/message-view/attachment-buttons", test_attachment_buttons);
  g_test_add_func ("/message-view/not-downloaded", test_not_downloaded);
  g_test_add_func ("/message-view/fetch-on-demand", test_fetch_on_demand);
  status = g_test_run ();

  gtk_window_destroy (window);
  g_socket_service_stop (server.service);
  g_clear_object (&server.service);
  g_ptr_array_unref (server.paths);
  g_ptr_array_unref (requested);
  lb_store_writer_close (writer);
  g_clear_object (&writer);
  g_clear_object (&store);
  lb_test_remove_tree (data_dir);
  g_free (data_dir);
  return status;
}
