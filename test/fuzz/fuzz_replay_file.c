/* fuzz_replay_file: `soldr replay FILE` (cmd/soldr/replay_cmd.c, compiled
 * into this target) on arbitrary log text: raw stdout records, journalctl
 * output with other lines mixed in, records that journald split over
 * several lines, cut records, binary junk.
 *
 * cmd_open_store is the only piece of the soldr binary it needs besides
 * replay_cmd.c; the one below opens the fuzz database instead of the data
 * directory's. Per input the file is replayed twice. Checks:
 *  1. no database error (exit status 2) and the summary line is printed;
 *  2. replaying twice is safe (DESIGN.md): the second pass restores
 *     nothing, finds present every record the first pass restored or found
 *     present, and counts the same malformed records;
 *  3. the exit status is 1 exactly when something was malformed. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmd/soldr/cmd.h"
#include "fuzz_common.h"

#define RESET_EVERY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    int up;
    struct fuzz_dir dir;
    char input[320];
    int out; /* memfd standing in for stdout */
    struct soldr_config cfg;
} E;

int cmd_open_store(const struct soldr_config *cfg, struct store **st, int fallback_fd)
{
    (void)cfg, (void)fallback_fd;
    *st = fuzz_store_open(&E.dir);
    return 0;
}

static void env_up(void)
{
    fuzz_dir_make(&E.dir, "fuzz-replay");
    snprintf(E.input, sizeof E.input, "%s/in.log", E.dir.path);
    /* Creates the schema once so every pass finds it. */
    store_close(fuzz_store_open(&E.dir));
    E.up = 1;
}

static void env_down(void)
{
    if (!E.up)
        return;
    fuzz_dir_remove(&E.dir);
    E.up = 0;
}

struct summary {
    long restored, present, malformed;
    int status;
};

static void replay(struct summary *s)
{
    char arg0[] = "replay", *argv[] = {arg0, E.input, NULL};
    FUZZ_CHECK(ftruncate(E.out, 0) == 0 && lseek(E.out, 0, SEEK_SET) == 0, "memfd reset");
    s->status = cmd_replay(&E.cfg, 2, argv);
    fflush(stdout);
    char text[256] = "";
    ssize_t n = pread(E.out, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    FUZZ_CHECK(s->status != 2, "soldr replay failed with a database error: %s", text);
    FUZZ_CHECK(sscanf(text, "restored %ld, already present %ld, malformed %ld", &s->restored,
                      &s->present, &s->malformed) == 3,
               "no summary line: \"%s\"", text);
    FUZZ_CHECK(s->status == (s->malformed > 0), "exit status %d with %ld malformed", s->status,
               s->malformed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once++) {
        fuzz_process_init();
        E.out = memfd_create("fuzz-stdout", MFD_CLOEXEC);
        FUZZ_CHECK(E.out >= 0 && dup2(E.out, STDOUT_FILENO) == STDOUT_FILENO, "stdout to memfd");
        atexit(env_down);
    }
    if (!E.up)
        env_up();
    FILE *f = fopen(E.input, "w");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "writing %s", E.input);
    struct summary a, b;
    replay(&a);
    replay(&b);
    FUZZ_CHECK(b.restored == 0 && b.present == a.restored + a.present && b.malformed == a.malformed,
               "replaying twice is not safe: first restored %ld, present %ld, malformed %ld; "
               "then restored %ld, present %ld, malformed %ld",
               a.restored, a.present, a.malformed, b.restored, b.present, b.malformed);
    static unsigned inputs;
    if (++inputs % RESET_EVERY == 0)
        env_down();
    return 0;
}
