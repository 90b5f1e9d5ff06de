/* respond.c: response-side helpers of the http module: reason phrases, the Date header, the
 * serialized status line + headers, response header validation, and logfmt quoting for the access
 * log. Writing to the socket lives in server.c. */
#include "http/http_int.h"

#include "common/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *st__http_reason(int status)
{
    /* Go's http.StatusText wording, which Loki clients see. */
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

size_t st__http_date(char *out)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    /* Formatted once per second per thread: responses are written on one loop thread. */
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_len;
    time_t now = time(NULL);
    if (now != cached_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        int n =
            snprintf(cached, sizeof cached, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                     tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_len = n > 0 && (size_t)n < sizeof cached ? (size_t)n : 0;
        cached_sec = now;
    }
    memcpy(out, cached, cached_len + 1);
    return cached_len;
}

void st__http_logfmt_quote(st_buf_t *out, st_str_t s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    st_buf_putc(out, '"');
    size_t n = s.n < max ? s.n : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\') {
            st_buf_putc(out, '\\');
            st_buf_putc(out, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            st_buf_append(out, e, 4);
        } else {
            st_buf_putc(out, (char)c);
        }
    }
    if (n < s.n) st_buf_puts(out, "...");
    st_buf_putc(out, '"');
}

/* RFC 7230 token characters. */
static bool is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int st_http_add_header(st_http_req_t *r, const char *name, const char *value)
{
    st__http_req_t *ri = (st__http_req_t *)r;
    if (ri->responded) return ST_EBADSTATE;
    if (name == NULL || value == NULL || name[0] == '\0') return -EINVAL;
    for (const char *p = name; *p; p++)
        if (!is_tchar((unsigned char)*p)) return -EINVAL;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n') return -EINVAL;
    static const char *const reserved[] = {"Content-Length", "Transfer-Encoding", "Connection", "Date"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0) return -EINVAL;
    size_t old = ri->resp_hdrs.len;
    int rc = st_buf_puts(&ri->resp_hdrs, name);
    if (rc == 0) rc = st_buf_puts(&ri->resp_hdrs, ": ");
    if (rc == 0) rc = st_buf_puts(&ri->resp_hdrs, value);
    if (rc == 0) rc = st_buf_puts(&ri->resp_hdrs, "\r\n");
    if (rc < 0) ri->resp_hdrs.len = old;
    return rc;
}

bool st_http_header(const st_http_req_t *r, const char *name, st_str_t *value)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const st_http_header_t *h = &r->headers[i];
        if (h->name.n == n && strncasecmp(h->name.p, name, n) == 0) {
            if (value) *value = h->value;
            return true;
        }
    }
    return false;
}

void st_http_respond_error(st_http_req_t *r, int status, const char *msg, bool newline)
{
    st_buf_t b = ST_BUF_INIT;
    if (msg) st_buf_puts(&b, msg);
    if (newline) st_buf_putc(&b, '\n');
    st_http_add_header(r, "X-Content-Type-Options", "nosniff");
    st_http_respond_buf(r, status, "text/plain; charset=utf-8", &b);
    st_buf_free(&b);
}

int st__http_build_head(st_buf_t *out, int status, const char *ct, const st_buf_t *extra, bool with_len,
                        size_t len, bool keep_alive)
{
    char date[40];
    st__http_date(date);
    size_t need = 128 + (ct ? strlen(ct) : 0) + extra->len;
    ST_TRY(st_buf_reserve(out, need));
    ST_TRY(st_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, st__http_reason(status)));
    if (ct) ST_TRY(st_buf_printf(out, "Content-Type: %s\r\n", ct));
    if (extra->len) ST_TRY(st_buf_append(out, extra->data, extra->len));
    if (with_len) ST_TRY(st_buf_printf(out, "Content-Length: %zu\r\n", len));
    ST_TRY(
        st_buf_printf(out, "Date: %s\r\nConnection: %s\r\n\r\n", date, keep_alive ? "keep-alive" : "close"));
    return 0;
}
