/*
 * Directory listings for edgeftp's local storage: names and their lstat facts read in batches on
 * libuv's thread pool, with fstatat(2) relative to the open directory (no path built or resolved
 * per entry), so a listing costs the main thread one callback per batch instead of a system call
 * and a Stats object per entry. This is what lets LIST of a large directory keep up with the C
 * servers without blocking the event loop. A large batch's fstatat calls (most of a listing's
 * time: ~1.2 us each on tmpfs against ~0.3 us per readdir entry) are shared with one helper
 * thread, started on first use and kept for the process's life; a batch that finds it busy with
 * another listing's half does them all itself.
 *
 * Exports:
 *   openDirectory(path: Buffer) -> reader      (nothing is opened until the first batch)
 *   readBatch(reader, max, withFacts, cb(errno, names, ends, facts, done))
 *     names: Buffer of the raw names one after another; ends: Uint32Array, where each name ends;
 *     facts (withFacts): Float64Array, 3 per entry: st_mode, st_size, mtime in ms. "." and ".."
 *     are skipped, and so is an entry gone between readdir and fstatat.
 *   readBatchNow(reader, max <= 256, withFacts, budgetMs) -> [errno, names, ends, facts, done]
 *     the same batch read on the calling thread (a small directory's listing without a pool trip);
 *     ETIMEDOUT, with the directory rewound, when it takes longer than budgetMs
 *   closeDirectory(reader)                      (not while a batch is being read)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "addon.h"

/* Batches with more entries than this share their fstatat calls with the helper thread. */
#define SPLIT_FROM 256

typedef struct reader {
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  uv_work_t work;
  char *path;
  DIR *dir;
  int busy;
  int closed;
  int orphaned;     /* collected while a batch was being read: freed when the batch returns */
  /* one batch */
  uint32_t max;
  int with_facts;
  char *names;
  size_t names_length, names_capacity;
  uint32_t *ends;
  double *facts;
  uint32_t count;
  int error;
  int done;
  uint64_t deadline; /* uv_hrtime() past which a batch read at once gives up (0: none) */
} reader_t;

static int append_name(reader_t *r, const char *name, size_t length) {
  if (r->names_length + length > r->names_capacity) {
    size_t capacity = r->names_capacity * 2 + length + 4096;
    char *grown = realloc(r->names, capacity);
    if (grown == NULL) return ENOMEM;
    r->names = grown;
    r->names_capacity = capacity;
  }
  memcpy(r->names + r->names_length, name, length);
  r->names_length += length;
  return 0;
}

/* Entry whose fstatat found nothing (removed since readdir) or whose name is too long to reach: left out of the batch by compact(). */
#define GONE (-1.0)

/*
 * fstatat of entries [from, to), relative to the open directory, into their facts; an entry
 * removed since readdir, or with a name too long to stat, is marked GONE. Two of these may run at once on one batch (disjoint
 * entries, the directory only read).
 */
static int stat_entries(reader_t *r, uint32_t from, uint32_t to) {
  int dir_fd = dirfd(r->dir);
  /* Not NAME_MAX + 1: readdir puts no bound on a name (FUSE allows 1024 bytes, some file systems
   * more), and an entry whose name does not fit here is one that cannot be reached anyway. */
  char name[PATH_MAX];
  for (uint32_t i = from; i < to; i++) {
    if (r->deadline != 0 && uv_hrtime() > r->deadline) return ETIMEDOUT;
    uint32_t start = i == 0 ? 0 : r->ends[i - 1], length = r->ends[i] - start;
    double *facts = r->facts + 3 * (size_t)i;
    if (length >= sizeof name) {
      facts[0] = GONE;
      continue;
    }
    memcpy(name, r->names + start, length);
    name[length] = '\0';
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT && errno != ENAMETOOLONG) return errno;
      facts[0] = GONE;
      continue;
    }
    facts[0] = (double)st.st_mode;
    facts[1] = (double)st.st_size;
    facts[2] = (double)st.st_mtim.tv_sec * 1000.0 + (double)st.st_mtim.tv_nsec / 1e6; /* as Node's mtimeMs */
  }
  return 0;
}

/* Leaves the GONE entries out of the batch (rare: an entry removed while the directory was read). */
static void compact(reader_t *r) {
  uint32_t kept = 0;
  size_t length = 0;
  for (uint32_t i = 0; i < r->count; i++) {
    uint32_t start = i == 0 ? 0 : r->ends[i - 1], size = r->ends[i] - start;
    if (r->facts[3 * (size_t)i] == GONE) continue;
    memmove(r->names + length, r->names + start, size);
    length += size;
    memmove(r->facts + 3 * (size_t)kept, r->facts + 3 * (size_t)i, 3 * sizeof(double));
    r->ends[kept++] = (uint32_t)length;
  }
  r->count = kept;
  r->names_length = length;
}

/*
 * The helper thread: reads the facts of the second half of one batch at a time while the pool
 * thread that read the names does the first. States: IDLE -> POSTED (by a pool thread) -> RUNNING
 * -> FINISHED -> IDLE (taken back by the same pool thread).
 */
enum { IDLE, POSTED, RUNNING, FINISHED, UNAVAILABLE };
static struct {
  uv_once_t once;
  uv_mutex_t lock;
  uv_cond_t posted, finished;
  int state;
  reader_t *reader;
  uint32_t from, to;
  int error;
} helper = {.once = UV_ONCE_INIT};

static void helper_main(void *arg) {
  (void)arg;
  uv_mutex_lock(&helper.lock);
  for (;;) {
    while (helper.state != POSTED) uv_cond_wait(&helper.posted, &helper.lock);
    helper.state = RUNNING;
    uv_mutex_unlock(&helper.lock);
    int error = stat_entries(helper.reader, helper.from, helper.to);
    uv_mutex_lock(&helper.lock);
    helper.error = error;
    helper.state = FINISHED;
    uv_cond_signal(&helper.finished);
  }
}

static void helper_start(void) {
  uv_thread_t thread;
  helper.state = IDLE;
  if (uv_mutex_init(&helper.lock) != 0 || uv_cond_init(&helper.posted) != 0 || uv_cond_init(&helper.finished) != 0 ||
      uv_thread_create(&thread, helper_main, NULL) != 0)
    helper.state = UNAVAILABLE;
}

/* Hands entries [from, to) to the helper; 0 when it is busy (or could not start). */
static int helper_post(reader_t *r, uint32_t from, uint32_t to) {
  uv_once(&helper.once, helper_start);
  if (helper.state == UNAVAILABLE) return 0;
  uv_mutex_lock(&helper.lock);
  int taken = helper.state == IDLE;
  if (taken) {
    helper.reader = r;
    helper.from = from;
    helper.to = to;
    helper.state = POSTED;
    uv_cond_signal(&helper.posted);
  }
  uv_mutex_unlock(&helper.lock);
  return taken;
}

/* Waits for the half posted by this thread; returns its error (0 or an errno). */
static int helper_wait(void) {
  uv_mutex_lock(&helper.lock);
  while (helper.state != FINISHED) uv_cond_wait(&helper.finished, &helper.lock);
  int error = helper.error;
  helper.state = IDLE;
  uv_mutex_unlock(&helper.lock);
  return error;
}

static void read_batch(uv_work_t *req) {
  reader_t *r = req->data;
  r->count = 0;
  r->names_length = 0;
  r->error = 0;
  if (r->dir == NULL) {
    int fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (r->dir = fdopendir(fd)) == NULL) {
      r->error = errno;
      if (fd >= 0) close(fd);
      return;
    }
  }
  while (r->count < r->max) {
    errno = 0;
    struct dirent *entry = readdir(r->dir);
    if (entry == NULL) {
      if (errno != 0) r->error = errno;
      else r->done = 1;
      break;
    }
    const char *name = entry->d_name;
    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
    int err = append_name(r, name, strlen(name));
    if (err != 0) {
      r->error = err;
      return;
    }
    r->ends[r->count++] = (uint32_t)r->names_length;
  }
  if (r->error == 0 && r->deadline != 0 && uv_hrtime() > r->deadline) r->error = ETIMEDOUT;
  if (!r->with_facts || r->error != 0) return;
  uint32_t half = r->count / 2;
  if (r->count > SPLIT_FROM && helper_post(r, half, r->count)) {
    int mine = stat_entries(r, 0, half), theirs = helper_wait();
    r->error = mine != 0 ? mine : theirs;
  } else {
    r->error = stat_entries(r, 0, r->count);
  }
  if (r->error == 0) compact(r);
}

static void release(reader_t *r);

/* The batch as the callback's arguments: errno, names, ends, facts, done. */
static void batch_values(napi_env env, reader_t *r, int error, napi_value argv[5]) {
  napi_value array_buffer;
  napi_create_int32(env, error, &argv[0]);
  void *data;
  napi_create_buffer_copy(env, r->names_length, r->names_length ? r->names : "", &data, &argv[1]);
  napi_create_arraybuffer(env, r->count * sizeof(uint32_t), &data, &array_buffer);
  if (r->count) memcpy(data, r->ends, r->count * sizeof(uint32_t));
  napi_create_typedarray(env, napi_uint32_array, r->count, array_buffer, 0, &argv[2]);
  uint32_t facts = r->with_facts ? 3 * r->count : 0;
  napi_create_arraybuffer(env, facts * sizeof(double), &data, &array_buffer);
  if (facts) memcpy(data, r->facts, facts * sizeof(double));
  napi_create_typedarray(env, napi_float64_array, facts, array_buffer, 0, &argv[3]);
  napi_get_boolean(env, r->done != 0, &argv[4]);
}

static void after_batch(uv_work_t *req, int status) {
  reader_t *r = req->data;
  napi_env env = r->env;
  r->busy = 0;
  if (r->orphaned) {
    napi_delete_reference(env, r->callback);
    napi_async_destroy(env, r->async_context);
    release(r);
    return;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[5];
  batch_values(env, r, status != 0 ? ECANCELED : r->error, argv);
  /* The callback may read the next batch, which sets new ones: take these off the reader first. */
  napi_ref callback = r->callback;
  napi_async_context context = r->async_context;
  r->callback = NULL;
  call_javascript(env, context, callback, 5, argv);
  napi_delete_reference(env, callback);
  napi_async_destroy(env, context);
  napi_close_handle_scope(env, scope);
}

/* Closes the directory and frees the batch buffers (idempotent: each is NULL once let go). */
static void close_reader(reader_t *r) {
  if (r->dir != NULL) closedir(r->dir);
  free(r->path);
  free(r->names);
  free(r->ends);
  free(r->facts);
  r->dir = NULL;
  r->path = r->names = NULL;
  r->ends = NULL;
  r->facts = NULL;
}

static void release(reader_t *r) {
  close_reader(r);
  free(r);
}

/* The external's finalizer: a reader the garbage collector takes back is closed if it was not. */
static void finalize(napi_env env, void *data, void *hint) {
  reader_t *r = data;
  (void)env;
  (void)hint;
  if (r->busy) r->orphaned = 1; /* the pool thread still uses it */
  else release(r);
}

static reader_t *reader_of(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "expected a directory reader");
    return NULL;
  }
  return data;
}

static napi_value open_directory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_buffer = false;
  void *bytes;
  size_t length;
  if (argc < 1 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &bytes, &length) != napi_ok || memchr(bytes, 0, length) != NULL) {
    napi_throw_type_error(env, NULL, "expected a path as a Buffer without NUL bytes");
    return NULL;
  }
  reader_t *r = calloc(1, sizeof *r);
  if (r == NULL || (r->path = malloc(length + 1)) == NULL) {
    free(r);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  memcpy(r->path, bytes, length);
  r->path[length] = '\0';
  r->env = env;
  r->work.data = r;
  napi_create_external(env, r, finalize, NULL, &handle);
  return handle;
}

/*
 * The reader and batch size (at most `most`) of a readBatch/readBatchNow call (argv[0..2]), with the
 * batch buffers grown to it; NULL (an exception pending) on bad arguments, a busy or closed reader,
 * or no memory.
 */
static reader_t *prepare_batch(napi_env env, napi_value argv[3], uint32_t most) {
  reader_t *r = reader_of(env, argv[0]);
  if (r == NULL) return NULL;
  uint32_t max;
  bool with_facts;
  if (napi_get_value_uint32(env, argv[1], &max) != napi_ok || max == 0 || max > most ||
      napi_get_value_bool(env, argv[2], &with_facts) != napi_ok) {
    napi_throw_range_error(env, NULL, "expected (reader, a batch size from 1 to the most allowed, boolean)");
    return NULL;
  }
  if (r->busy || r->closed) {
    napi_throw_error(env, NULL, r->busy ? "a batch is already being read" : "the directory is closed");
    return NULL;
  }
  if (max > r->max) {
    uint32_t *ends = realloc(r->ends, max * sizeof *ends);
    double *facts = ends ? realloc(r->facts, 3 * (size_t)max * sizeof *facts) : NULL;
    if (ends) r->ends = ends;
    if (facts) r->facts = facts;
    if (!ends || !facts) {
      napi_throw_error(env, NULL, "out of memory");
      return NULL;
    }
  }
  r->max = max;
  r->with_facts = with_facts;
  return r;
}

static napi_value read_next(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype type;
  if (argc < 4 || napi_typeof(env, argv[3], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "expected (reader, max, withFacts, callback)");
    return NULL;
  }
  reader_t *r = prepare_batch(env, argv, 65536);
  if (r == NULL) return NULL;
  napi_value resource_name;
  napi_create_string_utf8(env, "edgeftp.listDirectory", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &r->async_context);
  napi_create_reference(env, argv[3], 1, &r->callback);
  int queued = uv_queue_work(uv_loop_of(env), &r->work, read_batch, after_batch);
  if (queued != 0) {
    napi_delete_reference(env, r->callback);
    napi_async_destroy(env, r->async_context);
    napi_throw_error(env, NULL, uv_strerror(queued));
    return NULL;
  }
  r->busy = 1;
  return NULL;
}

/*
 * The same batch read at once on the calling thread, for a directory expected to be small and in
 * the cache (a listing's first batch): no trip through the pool. Never splits the fstatat calls
 * with the helper thread (`max` up to SPLIT_FROM keeps it so). A batch that takes longer than
 * `budgetMs` (a cold directory on a slow disk) gives up with ETIMEDOUT and rewinds the directory,
 * so the next read (on the pool) starts from its first entry. Returns [errno, names, ends, facts, done].
 */
static napi_value read_now(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double budget_ms;
  if (argc < 4 || napi_get_value_double(env, argv[3], &budget_ms) != napi_ok || !(budget_ms > 0)) {
    napi_throw_type_error(env, NULL, "expected (reader, max, withFacts, budgetMs > 0)");
    return NULL;
  }
  reader_t *r = prepare_batch(env, argv, SPLIT_FROM);
  if (r == NULL) return NULL;
  r->deadline = uv_hrtime() + (uint64_t)(budget_ms * 1e6);
  read_batch(&r->work);
  r->deadline = 0;
  if (r->error == ETIMEDOUT) {
    if (r->dir != NULL) rewinddir(r->dir);
    r->count = 0;
    r->names_length = 0;
    r->done = 0;
  }
  napi_value values[5], result;
  batch_values(env, r, r->error, values);
  napi_create_array_with_length(env, 5, &result);
  for (uint32_t i = 0; i < 5; i++) napi_set_element(env, result, i, values[i]);
  return result;
}

static napi_value close_directory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  reader_t *r = argc < 1 ? NULL : reader_of(env, argv[0]);
  if (r == NULL) return NULL;
  if (r->busy) {
    napi_throw_error(env, NULL, "a batch is still being read");
    return NULL;
  }
  r->closed = 1;
  close_reader(r);
  return NULL;
}

void list_directory_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"openDirectory", NULL, open_directory, NULL, NULL, NULL, napi_default, NULL},
      {"readBatch", NULL, read_next, NULL, NULL, NULL, napi_default, NULL},
      {"readBatchNow", NULL, read_now, NULL, NULL, NULL, napi_default, NULL},
      {"closeDirectory", NULL, close_directory, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
}
