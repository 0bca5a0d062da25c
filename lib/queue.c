/* queue.c: queue files for onward relay: written with fsync before the 250, recipients marked in place */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"

#define HEADER_MAX (1 << 20) /* the envelope: 1,000 recipients of 512 bytes fit */

bool st_queue_id_is_valid(const char *name)
{
	size_t i;

	if (!name[0] || name[0] == '.' || strlen(name) >= ST_QUEUE_ID_MAX)
		return false;
	for (i = 0; name[i]; i++)
		if (!((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '.' || name[i] == '-' ||
		      name[i] == '_'))
			return false;
	return true;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int make_dirs(const char *dir, struct st_error *err)
{
	char tmp[4200];

	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	if ((mkdir(dir, 0700) && errno != EEXIST) || (mkdir(tmp, 0700) && errno != EEXIST)) {
		st_error_set(err, ST_ERR_OUTPUT, "cannot make the queue directory '%s': %s", tmp,
		             strerror(errno));
		return ST_E_IO;
	}
	return 0;
}

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n, len -= (size_t)n;
	}
	return 0;
}

/* A queue file being written: DIR/tmp/ID, renamed to DIR/ID by st_queue_commit. */
struct st_queue_file {
	int fd;
	char tmp[4300], path[4300], dir[4200];
};

int st_queue_create(const char *dir, const char *id, time_t arrival, const char *sender,
                    const char *const *rcpt, size_t n_rcpt, struct st_queue_file **out,
                    struct st_error *err)
{
	struct st_queue_file *f;
	struct st_buf h;
	size_t i;
	int rc;

	*out = NULL;
	if (!st_queue_id_is_valid(id)) {
		st_error_set(err, ST_ERR_INTERNAL, "'%s' is not a queue id", id);
		return ST_E_INVALID;
	}
	for (i = 0; i < n_rcpt; i++)
		if (strpbrk(rcpt[i], "\r\n")) {
			st_error_set(err, ST_ERR_INTERNAL, "a recipient with a line end");
			return ST_E_INVALID;
		}
	if (strpbrk(sender, "\r\n")) {
		st_error_set(err, ST_ERR_INTERNAL, "a sender with a line end");
		return ST_E_INVALID;
	}
	if (make_dirs(dir, err))
		return ST_E_IO;
	if (!(f = calloc(1, sizeof(*f)))) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		return ST_E_NOMEM;
	}
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	snprintf(f->tmp, sizeof(f->tmp), "%s/tmp/%s", dir, id);
	snprintf(f->path, sizeof(f->path), "%s/%s", dir, id);
	st_buf_init(&h, HEADER_MAX);
	st_buf_addf(&h, "smtptls-queue 1\narrival %lld\nfrom %s\n", (long long)arrival, sender);
	for (i = 0; i < n_rcpt; i++)
		if (st_buf_addf(&h, "rcpt W %s\n", rcpt[i]) < 0) {
			st_error_set(err, ST_ERR_INTERNAL, "the envelope is too big");
			st_buf_release(&h);
			free(f);
			return ST_E_TOOBIG;
		}
	if (st_buf_add(&h, "\n", 1) < 0) {
		st_error_set(err, ST_ERR_INTERNAL, "out of memory");
		st_buf_release(&h);
		free(f);
		return ST_E_NOMEM;
	}
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f->fd < 0) {
		st_error_set(err, ST_ERR_OUTPUT, "cannot create the queue file '%s': %s", f->tmp,
		             strerror(errno));
		st_buf_release(&h);
		free(f);
		return ST_E_IO;
	}
	rc = st_queue_append(f, h.data, h.len, err);
	st_buf_release(&h);
	if (rc) {
		st_queue_abort(f);
		return rc;
	}
	*out = f;
	return 0;
}

int st_queue_append(struct st_queue_file *f, const void *p, size_t len, struct st_error *err)
{
	if (write_all(f->fd, p, len)) {
		st_error_set(err, ST_ERR_OUTPUT, "cannot write the queue file '%s': %s", f->tmp,
		             strerror(errno ? errno : EIO));
		return ST_E_IO;
	}
	return 0;
}

int st_queue_commit(struct st_queue_file *f, struct st_error *err)
{
	const char *what = "fsync";
	int fd = f->fd;

	f->fd = -1;
	if (fsync(fd)) {
		close(fd);
		goto fail;
	}
	if (close(fd))
		goto fail;
	what = "rename";
	if (rename(f->tmp, f->path))
		goto fail;
	what = "fsync the directory of";
	if (sync_dir(f->dir)) {
		/* a retry must not find it twice: taken back, as any failure */
		int e = errno;
		if (unlink(f->path) == 0)
			(void)sync_dir(f->dir); /* best effort: a crash must not bring it back */
		errno = e;
		goto fail;
	}
	free(f);
	return 0;
fail:
	st_error_set(err, ST_ERR_OUTPUT, "cannot %s the queue file '%s': %s", what, f->tmp,
	             strerror(errno ? errno : EIO));
	st_queue_abort(f);
	return ST_E_IO;
}

void st_queue_abort(struct st_queue_file *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	unlink(f->tmp);
	free(f);
}

int st_queue_write(const char *dir, const char *id, time_t arrival, const char *sender,
                   const char *const *rcpt, size_t n_rcpt, const void *msg, size_t len,
                   struct st_error *err)
{
	struct st_queue_file *f;
	int rc = st_queue_create(dir, id, arrival, sender, rcpt, n_rcpt, &f, err);

	if (rc)
		return rc;
	if ((rc = st_queue_append(f, msg, len, err)) != 0) {
		st_queue_abort(f);
		return rc;
	}
	return st_queue_commit(f, err);
}

void st_queue_msg_release(struct st_queue_msg *m)
{
	size_t i;

	free(m->sender);
	for (i = 0; i < m->n_rcpt; i++)
		free(m->rcpt[i]);
	free(m->rcpt);
	free(m->state);
	free(m->state_off);
	st_buf_release(&m->body);
	memset(m, 0, sizeof(*m));
}

static int add_rcpt(struct st_queue_msg *m, char state, const char *addr, off_t off)
{
	char **r = realloc(m->rcpt, (m->n_rcpt + 1) * sizeof(*r));
	char *s;
	off_t *o;

	if (!r)
		return -1;
	m->rcpt = r;
	s = realloc(m->state, m->n_rcpt + 1);
	if (!s)
		return -1;
	m->state = s;
	o = realloc(m->state_off, (m->n_rcpt + 1) * sizeof(*o));
	if (!o)
		return -1;
	m->state_off = o;
	m->rcpt[m->n_rcpt] = strdup(addr);
	if (!m->rcpt[m->n_rcpt])
		return -1;
	m->state[m->n_rcpt] = state;
	m->state_off[m->n_rcpt] = off;
	m->n_rcpt++;
	return 0;
}

int st_queue_read(const char *dir, const char *id, bool with_body, size_t max,
                  struct st_queue_msg *m, struct st_error *err)
{
	char path[4300], line[1200];
	FILE *f;
	struct stat st;
	off_t off = 0;
	int n = 0, rc = ST_E_PARSE;
	bool end = false;

	memset(m, 0, sizeof(*m));
	st_buf_init(&m->body, max);
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(path, sizeof(path), "%s/%s", dir, id);
	f = fopen(path, "re");
	if (!f) {
		st_error_set(err, ST_ERR_INPUT, "cannot read the queue file '%s': %s", path,
		             strerror(errno));
		return ST_E_IO;
	}
	if (fstat(fileno(f), &st) == 0)
		m->next_try = st.st_mtime;
	while (!end && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		off_t at = off;
		off += (off_t)len;
		if (!len || line[len - 1] != '\n')
			goto bad;
		line[--len] = '\0';
		if (n == 0) {
			if (strcmp(line, "smtptls-queue 1"))
				goto bad;
		} else if (strncmp(line, "arrival ", 8) == 0) {
			m->arrival = (time_t)strtoll(line + 8, NULL, 10);
		} else if (strncmp(line, "from ", 5) == 0 && !m->sender) {
			m->sender = strdup(line + 5);
			if (!m->sender)
				goto nomem;
		} else if (strncmp(line, "rcpt ", 5) == 0 && len > 7 && line[6] == ' ' &&
		           strchr("WDB", line[5])) {
			if (add_rcpt(m, line[5], line + 7, at + 5))
				goto nomem;
		} else if (!len) {
			end = true;
		} else
			goto bad;
		n++;
	}
	if (!end || !m->sender || !m->n_rcpt)
		goto bad;
	m->body_off = off;
	if (with_body) {
		char buf[65536];
		size_t got;
		while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
			if (st_buf_add(&m->body, buf, got) < 0) {
				st_error_set(err, ST_ERR_INPUT, "the queue file '%s' is too big",
				             path);
				rc = ST_E_TOOBIG;
				goto out;
			}
		if (ferror(f)) {
			st_error_set(err, ST_ERR_INPUT, "cannot read the queue file '%s': %s", path,
			             strerror(errno));
			rc = ST_E_IO;
			goto out;
		}
	}
	fclose(f);
	return 0;
bad:
	st_error_set(err, ST_ERR_INPUT, "'%s' is not a queue file (line %d)", path, n + 1);
	goto out;
nomem:
	st_error_set(err, ST_ERR_INTERNAL, "out of memory");
	rc = ST_E_NOMEM;
out:
	fclose(f);
	return rc;
}

int st_queue_mark(const char *dir, struct st_queue_msg *m, size_t i, enum st_queue_state s,
                  struct st_error *err)
{
	char path[4300], c = (char)s;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, m->id);
	if (i >= m->n_rcpt) {
		st_error_set(err, ST_ERR_INTERNAL, "no recipient %zu in '%s'", i, path);
		return ST_E_INVALID;
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, &c, 1, m->state_off[i]) != 1 || fdatasync(fd)) {
		st_error_set(err, ST_ERR_OUTPUT, "cannot update the queue file '%s': %s", path,
		             strerror(errno));
		if (fd >= 0)
			close(fd);
		return ST_E_IO;
	}
	close(fd);
	m->state[i] = c;
	return 0;
}

int st_queue_set_next(const char *dir, const char *id, time_t when, struct st_error *err)
{
	char path[4300];
	struct timespec ts[2] = {{when, 0}, {when, 0}};

	snprintf(path, sizeof(path), "%s/%s", dir, id);
	if (utimensat(AT_FDCWD, path, ts, 0)) {
		st_error_set(err, ST_ERR_OUTPUT, "cannot update the queue file '%s': %s", path,
		             strerror(errno));
		return ST_E_IO;
	}
	return 0;
}

int st_queue_remove(const char *dir, const char *id, struct st_error *err)
{
	char path[4300];

	snprintf(path, sizeof(path), "%s/%s", dir, id);
	if (unlink(path) && errno != ENOENT) {
		st_error_set(err, ST_ERR_OUTPUT, "cannot remove the queue file '%s': %s", path,
		             strerror(errno));
		return ST_E_IO;
	}
	sync_dir(dir);
	return 0;
}

int st_queue_list(const char *dir, char ***ids, size_t *n, struct st_error *err)
{
	DIR *d;
	struct dirent *de;
	char **out = NULL;
	size_t cnt = 0;

	*ids = NULL, *n = 0;
	if (make_dirs(dir, err))
		return ST_E_IO;
	d = opendir(dir);
	if (!d) {
		st_error_set(err, ST_ERR_INPUT, "cannot read the queue directory '%s': %s", dir,
		             strerror(errno));
		return ST_E_IO;
	}
	while ((de = readdir(d)) != NULL) {
		char **x;
		if (!st_queue_id_is_valid(de->d_name) || strcmp(de->d_name, "tmp") == 0)
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		x = realloc(out, (cnt + 1) * sizeof(*x));
		if (!x || !(x[cnt] = strdup(de->d_name))) {
			if (x)
				out = x;
			closedir(d);
			while (cnt)
				free(out[--cnt]);
			free(out);
			st_error_set(err, ST_ERR_INTERNAL, "out of memory");
			return ST_E_NOMEM;
		}
		out = x;
		cnt++;
	}
	closedir(d);
	*ids = out, *n = cnt;
	/* what a crash cut short was never acknowledged: it goes */
	{
		char tmp[4200], f[4500];
		snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
		d = opendir(tmp);
		while (d && (de = readdir(d)) != NULL)
			if (st_queue_id_is_valid(de->d_name)) {
				snprintf(f, sizeof(f), "%s/%s", tmp, de->d_name);
				unlink(f);
			}
		if (d)
			closedir(d);
	}
	return 0;
}
