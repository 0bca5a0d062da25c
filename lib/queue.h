/* queue.h: the on-disk queue of messages waiting to be relayed: one file per message, fsync'ed, recipients marked in place */
#ifndef ST_QUEUE_H
#define ST_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "util.h"

/*
 * A queue file DIR/ID holds a header, then the message as it came (CRLF
 * line ends):
 *
 *   smtptls-queue 1
 *   arrival 1764355200
 *   from sender@example.org      ("from " alone for the null sender)
 *   rcpt W rcpt@example.com      (W waiting, D delivered, B bounced)
 *   (blank line)
 *
 * A recipient's state byte is rewritten in place and the file synced, so a
 * crash leaves every recipient either still waiting (sent again: at least
 * once, as Postfix) or finished. The file's modification time is the time
 * of its next attempt. Every call here blocks on the disk (fsync): call
 * them from a worker thread, never from an event loop's.
 */

#define ST_QUEUE_ID_MAX 64

enum st_queue_state { ST_QUEUE_WAITING = 'W', ST_QUEUE_DELIVERED = 'D', ST_QUEUE_BOUNCED = 'B' };

struct st_queue_msg {
	char id[ST_QUEUE_ID_MAX];
	time_t arrival;
	time_t next_try;  /* the file's modification time */
	char *sender;     /* owned */
	char **rcpt;      /* owned */
	char *state;      /* one enum st_queue_state per recipient */
	off_t *state_off; /* where each state byte is in the file */
	size_t n_rcpt;
	off_t body_off;     /* where the message starts */
	struct st_buf body; /* the message, when read */
};

/* Is name a queue file's name (an id: letters, digits, '.', '-', '_'; no dot first)? */
bool st_queue_id_is_valid(const char *name);

/*
 * Write a message to DIR/tmp/ID, fsync it, rename it to DIR/ID and fsync
 * DIR: when this returns 0, the message survives a crash. DIR/tmp is made
 * when missing. err (class output) names the file and the reason.
 */
int st_queue_write(const char *dir, const char *id, time_t arrival, const char *sender,
                   const char *const *rcpt, size_t n_rcpt, const void *msg, size_t len,
                   struct st_error *err);

/* The same, in steps: st_queue_create writes the envelope to DIR/tmp/ID (DIR/tmp made
 * when missing), st_queue_append the message as it comes, st_queue_commit does the rest
 * (fsync, rename, fsync DIR; a failure of the last takes DIR/ID back) and frees f;
 * st_queue_abort (NULL: a no-op) removes DIR/tmp/ID and frees f. Any failure leaves f to
 * abort, except commit's, which has freed it. err (class output) names file and reason. */
struct st_queue_file;
int st_queue_create(const char *dir, const char *id, time_t arrival, const char *sender,
                    const char *const *rcpt, size_t n_rcpt, struct st_queue_file **f,
                    struct st_error *err);
int st_queue_append(struct st_queue_file *f, const void *p, size_t len, struct st_error *err);
int st_queue_commit(struct st_queue_file *f, struct st_error *err);
void st_queue_abort(struct st_queue_file *f);

/*
 * Read DIR/ID into m (release with st_queue_msg_release, also after a
 * failure); the message too when with_body (capped at max bytes). A file
 * that is not a queue file is ST_E_PARSE with err (class input) naming it.
 */
int st_queue_read(const char *dir, const char *id, bool with_body, size_t max,
                  struct st_queue_msg *m, struct st_error *err);

void st_queue_msg_release(struct st_queue_msg *m);

/* Set recipient i's state in the file (and in m), and sync the file. */
int st_queue_mark(const char *dir, struct st_queue_msg *m, size_t i, enum st_queue_state s,
                  struct st_error *err);

/* Set the time of the next attempt (the file's modification time). */
int st_queue_set_next(const char *dir, const char *id, time_t when, struct st_error *err);

/* Remove a message (every recipient finished) and sync the directory. */
int st_queue_remove(const char *dir, const char *id, struct st_error *err);

/* The ids of the messages in DIR (its queue files, in no order), owned by the caller
 * (free each, then the array). DIR and DIR/tmp are made when missing; files in DIR/tmp
 * (writes a crash cut short: never acknowledged) are removed, so call it at start only. */
int st_queue_list(const char *dir, char ***ids, size_t *n, struct st_error *err);

#endif
