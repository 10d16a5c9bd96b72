/* The static UI: from the copy built into the binary, or from SOLDR_UI_DIR
 * (development). Paths are matched against a whitelist of characters and may
 * not contain "..", so nothing outside the UI can be read. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgmt/mgmt_int.h"
#include "mgmt/ui_files.h"

#define UI_FILE_MAX (4u << 20)

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const char *const map[][2] = {{".html", "text/html; charset=utf-8"},
                                         {".js", "text/javascript; charset=utf-8"},
                                         {".mjs", "text/javascript; charset=utf-8"},
                                         {".css", "text/css; charset=utf-8"},
                                         {".svg", "image/svg+xml"},
                                         {".png", "image/png"},
                                         {".ico", "image/x-icon"},
                                         {".json", "application/json"},
                                         {".txt", "text/plain; charset=utf-8"}};
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

static int safe_path(const char *p)
{
    if (p[0] != '/' || strstr(p, "..") || strstr(p, "//"))
        return 0;
    return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") ==
           strlen(p);
}

const char mgmt_ui_headers[] =
    "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'\r\n";

int mgmt_ui_file(const char *dir, const char *path, char **data, size_t *len, const char **ctype)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    if (!safe_path(path))
        return 0;
    *ctype = content_type(path);
    if (!dir[0]) {
        for (const struct mgmt_ui_file *f = mgmt__ui_files; f->path; f++) {
            if (strcmp(f->path, path) != 0)
                continue;
            if (!(*data = malloc(f->len + 1)))
                return 0;
            memcpy(*data, f->data, f->len);
            *len = f->len;
            return 1;
        }
        return 0;
    }
    /* Development: read from disk (small files; never on ingest's loop). */
    char full[2200];
    snprintf(full, sizeof full, "%s%s", dir, path);
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > UI_FILE_MAX) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    *data = malloc((size_t)sb.st_size + 1);
    ssize_t n = *data ? read(fd, *data, (size_t)sb.st_size) : -1;
    close(fd);
    if (n != sb.st_size) {
        free(*data);
        return 0;
    }
    *len = (size_t)n;
    return 1;
}

int mgmt__static(struct mgmt_call *c)
{
    if (strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0)
        return 0;
    char *data;
    size_t len;
    const char *ctype;
    if (!mgmt_ui_file(c->m->cfg->ui_dir, c->path, &data, &len, &ctype))
        return 0;
    mgmt__reply(c, 200, ctype, mgmt_ui_headers, data, len);
    free(data);
    return 1;
}
