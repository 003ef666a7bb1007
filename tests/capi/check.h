/* Helpers shared by the C tests of wsbeat's C API (run by tests/capi/main.rs).
 *
 * A case prints marker lines on stdout ("MARK CONNECTED 1") that the Rust harness waits for
 * before it acts on the server (freeze it, restart it, close with a code); a failed CHECK
 * prints the expression and exits 1, so the harness sees which assertion broke. */
#ifndef WSBEAT_CAPI_CHECK_H
#define WSBEAT_CAPI_CHECK_H

#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: clock_gettime, setitimer, sigaction */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wsbeat.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* A call that must return `want`; on failure prints both statuses and the last error. */
#define CHECK_STATUS(call, want)                                                       \
    do {                                                                               \
        wsbeat_status got_ = (call);                                                   \
        if (got_ != (want)) {                                                          \
            fprintf(stderr, "%s:%d: %s returned %u (%s), wanted %u (%s)\n", __FILE__,  \
                    __LINE__, #call, (unsigned)got_, wsbeat_status_str(got_),          \
                    (unsigned)(want), wsbeat_status_str(want));                        \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, WSBEAT_OK)

/* Milliseconds on the monotonic clock. */
static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A marker line for the harness, flushed at once (stdout is a pipe). */
static inline void mark(const char *what, long long n) {
    printf("MARK %s %lld\n", what, n);
    fflush(stdout);
}

/* Extra milliseconds allowed on timing checks: more under Valgrind (WSBEAT_CAPI_SLACK_MS). */
static inline int64_t slack_ms(void) {
    const char *s = getenv("WSBEAT_CAPI_SLACK_MS");
    return s ? atoll(s) : 300;
}

/* A factor for the heartbeat timings of a case: 1 natively, more under Valgrind or qemu
 * (WSBEAT_CAPI_SCALE), where the first pass through the code takes long enough (a second
 * for the first handshake under Valgrind) to outlast a 700 ms detection bound by itself. */
static inline uint32_t time_scale(void) {
    const char *s = getenv("WSBEAT_CAPI_SCALE");
    return s && atoi(s) > 0 ? (uint32_t)atoi(s) : 1;
}

/* Whether the run is under Valgrind (some resource-limit checks do not apply there). */
static inline int under_valgrind(void) {
    return getenv("WSBEAT_CAPI_VALGRIND") != NULL;
}

/* ws://127.0.0.1:PORT/ into buf. */
static inline const char *url_for(char *buf, size_t len, const char *port) {
    snprintf(buf, len, "ws://127.0.0.1:%s/", port);
    return buf;
}

/* A config with short, test-sized timings. */
wsbeat_config *test_config(const char *port);

/* Polls until an event of `type` arrives (returned in *ev) or `timeout_ms` passes (exit 1).
 * Every event on the way is printed to stderr. */
void wait_for(wsbeat_client *c, wsbeat_event_type type, int timeout_ms, wsbeat_event *ev);

/* Exits 1 unless the config's last error contains `needle` (e.g. the failing function). */
void check_config_error(wsbeat_config *cfg, const char *needle);

/* The event type's name, for messages. */
const char *event_name(wsbeat_event_type t);

/* The cases (cases_api.c, cases_net.c, cases_misc.c, cases_delivery.c). */
int case_null_arguments(void);
int case_status_codes(void);
int case_echo(const char *port);
int case_frozen(const char *port);
int case_restart(const char *port);
int case_give_up(const char *port);
int case_close_code(const char *port);
int case_hook(const char *port);
int case_waker(const char *port);
int case_log(const char *port);
int case_delivery_arguments(void);
int case_dropped(const char *port);
int case_requeue(const char *port);
int case_outbox_file(const char *port);

#endif
