/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * What the IMAP parser produces: one LbImapResponse per server response (RFC 9051 §7,
 * RFC 3501 §7), with the data a client acts on decoded into plain structures. Anything
 * the parser does not know is kept as a generic value tree, never dropped and never an
 * error, so a newer server's extensions pass through.
 */

typedef enum
{
  LB_IMAP_VALUE_NIL,
  LB_IMAP_VALUE_ATOM,
  LB_IMAP_VALUE_NUMBER,
  LB_IMAP_VALUE_STRING,
  LB_IMAP_VALUE_LIST,
  /* A literal handed to the parser's literal sink instead of kept in memory. */
  LB_IMAP_VALUE_STREAMED,
} LbImapValueKind;

typedef struct _LbImapValue LbImapValue;
struct _LbImapValue
{
  LbImapValueKind kind;
  /* NUMBER: the number; STREAMED: the literal's size. */
  guint64 number;
  /* ATOM and STRING: the bytes, NUL-terminated (a literal may also contain NULs). */
  char *str;
  gsize len;
  gboolean literal;
  /* LIST: LbImapValue* elements. */
  GPtrArray *list;
};

void         lb_imap_value_free      (LbImapValue *value);
LbImapValue *lb_imap_value_list_get  (const LbImapValue *list,
                                      guint              index);
const char  *lb_imap_value_nstring   (const LbImapValue *value);

typedef struct
{
  guint32 first;
  guint32 last;
} LbImapRange;

/* A sequence or UID set (RFC 9051 §9 sequence-set, without "*"), as sorted-as-sent ranges. */
typedef struct
{
  GArray *ranges; /* LbImapRange */
} LbImapSet;

LbImapSet *lb_imap_set_new       (void);
void       lb_imap_set_free      (LbImapSet *set);
guint64    lb_imap_set_count     (const LbImapSet *set);
gboolean   lb_imap_set_contains  (const LbImapSet *set,
                                  guint32          n);
guint32    lb_imap_set_max       (const LbImapSet *set);
char      *lb_imap_set_to_string (const LbImapSet *set);

typedef struct
{
  char *name;    /* phrase, RFC 2047-encoded as sent, or NULL */
  char *adl;     /* source route, obsolete */
  char *mailbox; /* local part; NULL host marks a group (RFC 9051 §7.5.2) */
  char *host;
} LbImapAddress;

typedef struct
{
  char *date;
  char *subject;
  GPtrArray *from; /* LbImapAddress* each */
  GPtrArray *sender;
  GPtrArray *reply_to;
  GPtrArray *to;
  GPtrArray *cc;
  GPtrArray *bcc;
  char *in_reply_to;
  char *message_id;
} LbImapEnvelope;

void lb_imap_envelope_free (LbImapEnvelope *envelope);

typedef struct _LbImapBody LbImapBody;
struct _LbImapBody
{
  char *type;     /* lower case: "text", "multipart", … */
  char *subtype;  /* lower case */
  GPtrArray *params; /* alternating name, value (char*) */
  char *id;
  char *description;
  char *encoding;
  guint64 size;
  guint64 lines;
  char *md5;
  char *disposition;          /* lower case, or NULL */
  GPtrArray *disposition_params;
  char *language;             /* first language, or NULL */
  char *location;
  GPtrArray *children;        /* multipart: LbImapBody* */
  LbImapEnvelope *envelope;   /* message/rfc822 */
  LbImapBody *message;        /* message/rfc822 */
};

void        lb_imap_body_free        (LbImapBody *body);
const char *lb_imap_body_get_param   (const LbImapBody *body,
                                      const char       *name);

typedef enum
{
  LB_IMAP_CODE_NONE,
  LB_IMAP_CODE_ALERT,
  LB_IMAP_CODE_BADCHARSET,
  LB_IMAP_CODE_CAPABILITY,
  LB_IMAP_CODE_PARSE,
  LB_IMAP_CODE_PERMANENTFLAGS,
  LB_IMAP_CODE_READ_ONLY,
  LB_IMAP_CODE_READ_WRITE,
  LB_IMAP_CODE_TRYCREATE,
  LB_IMAP_CODE_UIDNEXT,
  LB_IMAP_CODE_UIDVALIDITY,
  LB_IMAP_CODE_UNSEEN,
  LB_IMAP_CODE_HIGHESTMODSEQ,
  LB_IMAP_CODE_NOMODSEQ,
  LB_IMAP_CODE_MODIFIED,
  LB_IMAP_CODE_APPENDUID,
  LB_IMAP_CODE_COPYUID,
  LB_IMAP_CODE_UIDNOTSTICKY,
  LB_IMAP_CODE_CLOSED,
  LB_IMAP_CODE_AUTHENTICATIONFAILED,
  LB_IMAP_CODE_AUTHORIZATIONFAILED,
  LB_IMAP_CODE_UNAVAILABLE,
  LB_IMAP_CODE_NONEXISTENT,
  LB_IMAP_CODE_ALREADYEXISTS,
  LB_IMAP_CODE_OVERQUOTA,
  LB_IMAP_CODE_OTHER,
} LbImapCodeKind;

typedef struct
{
  LbImapCodeKind kind;
  char *name;          /* as sent, upper case */
  char *raw;           /* the arguments as sent, or NULL */
  guint64 number;      /* UIDNEXT, UIDVALIDITY, UNSEEN, HIGHESTMODSEQ; APPENDUID/COPYUID: uidvalidity */
  GPtrArray *atoms;    /* CAPABILITY, PERMANENTFLAGS, BADCHARSET: char* */
  LbImapSet *set;      /* MODIFIED; APPENDUID: appended UIDs; COPYUID: source UIDs */
  LbImapSet *set2;     /* COPYUID: destination UIDs */
} LbImapCode;

typedef enum
{
  LB_IMAP_STATUS_NONE,
  LB_IMAP_STATUS_OK,
  LB_IMAP_STATUS_NO,
  LB_IMAP_STATUS_BAD,
  LB_IMAP_STATUS_PREAUTH,
  LB_IMAP_STATUS_BYE,
} LbImapStatus;

typedef enum
{
  LB_IMAP_RESPONSE_TAGGED,
  LB_IMAP_RESPONSE_UNTAGGED,
  LB_IMAP_RESPONSE_CONTINUATION,
} LbImapResponseKind;

typedef enum
{
  LB_IMAP_DATA_STATUS,      /* OK/NO/BAD/PREAUTH/BYE: see status, code, text */
  LB_IMAP_DATA_CAPABILITY,
  LB_IMAP_DATA_ENABLED,
  LB_IMAP_DATA_LIST,
  LB_IMAP_DATA_LSUB,
  LB_IMAP_DATA_MAILBOX_STATUS,
  LB_IMAP_DATA_SEARCH,
  LB_IMAP_DATA_ESEARCH,
  LB_IMAP_DATA_FLAGS,
  LB_IMAP_DATA_EXISTS,
  LB_IMAP_DATA_RECENT,
  LB_IMAP_DATA_EXPUNGE,
  LB_IMAP_DATA_FETCH,
  LB_IMAP_DATA_VANISHED,
  LB_IMAP_DATA_NAMESPACE,
  LB_IMAP_DATA_ID,
  LB_IMAP_DATA_OTHER,
} LbImapDataKind;

typedef struct
{
  GPtrArray *flags;   /* "\HasNoChildren", "\Sent", … as sent */
  char delimiter;     /* 0 for NIL */
  char *mailbox;      /* raw: modified UTF-7, or UTF-8 once UTF8=ACCEPT is on */
  gsize mailbox_len;
  char *old_name;     /* LIST-EXTENDED OLDNAME, or NULL */
  gboolean has_childinfo_subscribed;
} LbImapList;

typedef struct
{
  char *mailbox;
  guint64 messages, recent, uidnext, uidvalidity, unseen, deleted, size, highestmodseq;
  guint present; /* LbImapStatusItem bits: which of the above the server sent */
} LbImapMailboxStatus;

typedef enum
{
  LB_IMAP_STATUS_ITEM_MESSAGES = 1 << 0,
  LB_IMAP_STATUS_ITEM_RECENT = 1 << 1,
  LB_IMAP_STATUS_ITEM_UIDNEXT = 1 << 2,
  LB_IMAP_STATUS_ITEM_UIDVALIDITY = 1 << 3,
  LB_IMAP_STATUS_ITEM_UNSEEN = 1 << 4,
  LB_IMAP_STATUS_ITEM_DELETED = 1 << 5,
  LB_IMAP_STATUS_ITEM_SIZE = 1 << 6,
  LB_IMAP_STATUS_ITEM_HIGHESTMODSEQ = 1 << 7,
} LbImapStatusItem;

typedef struct
{
  char *tag;          /* the command's tag, or NULL */
  gboolean uid;
  gboolean has_min, has_max, has_count, has_modseq;
  guint32 min, max;
  guint64 count, modseq;
  LbImapSet *all;     /* or NULL */
} LbImapEsearch;

/* One FETCH section: BODY[…] or BINARY[…] with its value. */
typedef struct
{
  char *name;          /* "BODY[]", "BODY[HEADER.FIELDS (SUBJECT)]", "BINARY[1]", "RFC822" … */
  guint64 origin;      /* <origin> of a partial fetch */
  gboolean has_origin;
  LbImapValue *value;  /* STRING, NIL or STREAMED */
} LbImapSection;

typedef enum
{
  LB_IMAP_FETCH_UID = 1 << 0,
  LB_IMAP_FETCH_FLAGS = 1 << 1,
  LB_IMAP_FETCH_INTERNALDATE = 1 << 2,
  LB_IMAP_FETCH_SIZE = 1 << 3,
  LB_IMAP_FETCH_ENVELOPE = 1 << 4,
  LB_IMAP_FETCH_BODYSTRUCTURE = 1 << 5,
  LB_IMAP_FETCH_MODSEQ = 1 << 6,
  LB_IMAP_FETCH_PREVIEW = 1 << 7,
} LbImapFetchItem;

typedef struct
{
  guint present;       /* LbImapFetchItem bits */
  guint32 uid;
  GPtrArray *flags;    /* char* */
  char *internaldate;
  guint64 size;
  LbImapEnvelope *envelope;
  LbImapBody *body;
  guint64 modseq;
  char *preview;
  GPtrArray *sections; /* LbImapSection* */
  GPtrArray *other;    /* unknown items: alternating LbImapValue* name atom, value */
} LbImapFetch;

typedef struct
{
  char *prefix;
  char delimiter;
} LbImapNamespaceEntry;

typedef struct _LbImapResponse LbImapResponse;
struct _LbImapResponse
{
  LbImapResponseKind kind;
  char *tag;                /* TAGGED only */
  LbImapDataKind data;      /* UNTAGGED only; TAGGED responses are always STATUS */
  LbImapStatus status;
  LbImapCode code;
  char *text;               /* human-readable text after the status (and code) */

  guint32 number;           /* EXISTS, RECENT, EXPUNGE, FETCH: the count or sequence number */
  GPtrArray *atoms;         /* CAPABILITY, ENABLED, FLAGS: char* */
  GArray *numbers;          /* SEARCH: guint32 */
  guint64 search_modseq;    /* SEARCH (… (MODSEQ n)) */
  LbImapList *list;
  LbImapMailboxStatus *mailbox_status;
  LbImapEsearch *esearch;
  LbImapFetch *fetch;
  LbImapSet *vanished;
  gboolean vanished_earlier;
  GPtrArray *namespaces[3]; /* personal, other users, shared: LbImapNamespaceEntry* or NULL */
  GPtrArray *id;            /* alternating key, value (value may be NULL) */
  LbImapValue *other;       /* OTHER: the rest as a value list */
  char *keyword;            /* OTHER: the response's keyword */
};

void  lb_imap_response_free      (LbImapResponse *response);
char *lb_imap_response_to_string (const LbImapResponse *response);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapResponse, lb_imap_response_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapValue, lb_imap_value_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapSet, lb_imap_set_free)

G_END_DECLS
