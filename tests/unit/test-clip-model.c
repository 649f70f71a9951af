/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>

#include "letterbox-clip-model.h"

/* LetterboxClipModel over a GListStore: unlimited it passes each change on as it came
 * (one row inserted is one row inserted, whatever the list's length); limited it shows
 * the first rows and reports no more than those; and a list view's mirror of it, kept
 * by its items-changed alone, always equals the store's first rows. */

typedef struct
{
  guint position, removed, added;
} Change;

typedef struct
{
  GListStore *store;
  LetterboxClipModel *clip;
  GArray *changes;       /* Change, as the clip reported them */
  GPtrArray *mirror;     /* what a view of the clip holds, from its items-changed */
} Fixture;

static void
clip_changed_cb (GListModel *model,
                 guint       position,
                 guint       removed,
                 guint       added,
                 Fixture    *f)
{
  Change c = { position, removed, added };

  g_array_append_val (f->changes, c);
  g_assert_cmpuint (position + removed, <=, f->mirror->len);
  g_ptr_array_remove_range (f->mirror, position, removed);
  for (guint i = 0; i < added; i++)
    {
      GObject *item = g_list_model_get_item (model, position + i);

      g_assert_nonnull (item);
      g_ptr_array_insert (f->mirror, (int) (position + i), item);
    }
  g_assert_cmpuint (f->mirror->len, ==, g_list_model_get_n_items (model));
}

static void
fill (Fixture *f,
      guint    position,
      guint    n)
{
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (items, g_object_new (G_TYPE_OBJECT, NULL));
  g_list_store_splice (f->store, position, 0, items->pdata, items->len);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  f->store = g_list_store_new (G_TYPE_OBJECT);
  fill (f, 0, 1000);
  f->clip = letterbox_clip_model_new (G_LIST_MODEL (f->store));
  f->changes = g_array_new (FALSE, FALSE, sizeof (Change));
  f->mirror = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (f->clip)); i++)
    g_ptr_array_add (f->mirror, g_list_model_get_item (G_LIST_MODEL (f->clip), i));
  g_signal_connect (f->clip, "items-changed", G_CALLBACK (clip_changed_cb), f);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_object_unref (f->clip);
  g_object_unref (f->store);
  g_array_unref (f->changes);
  g_ptr_array_unref (f->mirror);
}

/* The mirror holds the store's first rows, as many as the limit lets through. */
static void
assert_mirror (Fixture *f)
{
  guint n = MIN (g_list_model_get_n_items (G_LIST_MODEL (f->store)),
                 letterbox_clip_model_get_limit (f->clip));

  g_assert_cmpuint (f->mirror->len, ==, n);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->clip)), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GObject) item = g_list_model_get_item (G_LIST_MODEL (f->store), i);

      g_assert_true (g_ptr_array_index (f->mirror, i) == item);
    }
  g_assert_null (g_list_model_get_item (G_LIST_MODEL (f->clip), n));
}

static void
assert_changes (Fixture *f,
                guint    n,
                ...)
{
  va_list args;

  g_assert_cmpuint (f->changes->len, ==, n);
  va_start (args, n);
  for (guint i = 0; i < n; i++)
    {
      Change *c = &g_array_index (f->changes, Change, i);

      g_assert_cmpuint (c->position, ==, va_arg (args, guint));
      g_assert_cmpuint (c->removed, ==, va_arg (args, guint));
      g_assert_cmpuint (c->added, ==, va_arg (args, guint));
    }
  va_end (args);
  g_array_set_size (f->changes, 0);
  assert_mirror (f);
}

static void
test_unlimited (Fixture       *f,
                gconstpointer  data)
{
  assert_mirror (f);
  g_assert_cmpuint (letterbox_clip_model_get_limit (f->clip), ==, G_MAXUINT);
  g_assert_true (g_list_model_get_item_type (G_LIST_MODEL (f->clip)) == G_TYPE_OBJECT);

  /* New mail on top, a deletion, a change in the middle: each exactly as it came. */
  fill (f, 0, 1);
  assert_changes (f, 1, 0u, 0u, 1u);
  g_list_store_remove (f->store, 10);
  assert_changes (f, 1, 10u, 1u, 0u);
  g_list_store_splice (f->store, 5, 3, NULL, 0);
  fill (f, 5, 2);
  assert_changes (f, 2, 5u, 3u, 0u, 5u, 0u, 2u);
  g_list_store_remove_all (f->store);
  assert_changes (f, 1, 0u, 999u, 0u);
}

static void
test_limited (Fixture       *f,
              gconstpointer  data)
{
  letterbox_clip_model_set_limit (f->clip, 20);
  assert_changes (f, 1, 20u, 980u, 0u);

  /* On top: the first twenty rows are others now (one in, one out at the end). */
  fill (f, 0, 1);
  assert_changes (f, 1, 0u, 20u, 20u);
  /* Beyond the limit: nothing shown changes. */
  fill (f, 500, 3);
  g_list_store_remove (f->store, 20);
  assert_changes (f, 0);
  /* The last row shown. */
  g_list_store_remove (f->store, 19);
  assert_changes (f, 1, 19u, 1u, 1u);
  /* Shrinking below the limit, then growing past it again. */
  g_list_store_splice (f->store, 5, g_list_model_get_n_items (G_LIST_MODEL (f->store)) - 5,
                       NULL, 0);
  assert_changes (f, 1, 5u, 15u, 0u);
  fill (f, 5, 100);
  assert_changes (f, 1, 5u, 0u, 15u);

  /* The limit lifted: the rest added at the end, and changes exact again. */
  letterbox_clip_model_set_limit (f->clip, G_MAXUINT);
  assert_changes (f, 1, 20u, 0u, 85u);
  fill (f, 0, 1);
  assert_changes (f, 1, 0u, 0u, 1u);
  letterbox_clip_model_set_limit (f->clip, G_MAXUINT);
  assert_changes (f, 0);
}

static void
test_empty_then_filled (Fixture       *f,
                        gconstpointer  data)
{
  g_list_store_remove_all (f->store);
  letterbox_clip_model_set_limit (f->clip, 20);
  assert_changes (f, 1, 0u, 1000u, 0u);
  fill (f, 0, 3);
  assert_changes (f, 1, 0u, 0u, 3u);
  fill (f, 3, 30);
  assert_changes (f, 1, 3u, 0u, 17u);
  letterbox_clip_model_set_limit (f->clip, 0);
  assert_changes (f, 1, 0u, 20u, 0u);
  fill (f, 0, 1);
  assert_changes (f, 0);
}

/* Random splices and limits: the mirror kept from the clip's changes always matches. */
static void
test_random (Fixture       *f,
             gconstpointer  data)
{
  for (guint round = 0; round < 2000; round++)
    {
      guint n = g_list_model_get_n_items (G_LIST_MODEL (f->store));
      guint op = (guint) g_test_rand_int_range (0, 10);

      if (op == 0)
        letterbox_clip_model_set_limit (f->clip, g_test_rand_bit () ? G_MAXUINT
                                                                    : (guint) g_test_rand_int_range (0, 60));
      else
        {
          guint position = (guint) g_test_rand_int_range (0, (int) n + 1);
          guint removed = (guint) g_test_rand_int_range (0, (int) MIN (n - position, 40u) + 1);

          g_list_store_splice (f->store, position, removed, NULL, 0);
          fill (f, position, (guint) g_test_rand_int_range (0, 40));
        }
      assert_mirror (f);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/clip-model/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("unlimited", test_unlimited);
  ADD ("limited", test_limited);
  ADD ("empty-then-filled", test_empty_then_filled);
  ADD ("random", test_random);
#undef ADD

  return g_test_run ();
}
