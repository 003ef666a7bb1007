/* The C test runner for wsbeat's C API: `capi_test CASE [PORT]`, exit 0 when the case
 * passes. tests/capi/main.rs builds it (plain, AddressSanitizer) and runs each case against
 * the loopback test server, also under Valgrind. */
#include "check.h"

wsbeat_config *test_config(const char *port) {
    char url[64];
    wsbeat_config *cfg = NULL;
    CHECK_OK(wsbeat_config_new(url_for(url, sizeof url, port), &cfg));
    CHECK_OK(wsbeat_config_set_connect_timeout_ms(cfg, 3000));
    CHECK_OK(wsbeat_config_set_close_timeout_ms(cfg, 1000));
    CHECK_OK(wsbeat_config_set_backoff_initial_ms(cfg, 100));
    CHECK_OK(wsbeat_config_set_backoff_max_ms(cfg, 200));
    CHECK_OK(wsbeat_config_set_seed(cfg, 7));
    return cfg;
}

void check_config_error(wsbeat_config *cfg, const char *needle) {
    const char *e = wsbeat_config_last_error(cfg);
    if (strstr(e, needle) == NULL) {
        fprintf(stderr, "config last error '%s' lacks '%s'\n", e, needle);
        exit(1);
    }
}

const char *event_name(wsbeat_event_type t) {
    static const char *const names[] = {
        "none",         "connecting",     "connected",   "message",
        "ping",         "pong",           "pong_missed", "disconnected",
        "connect_failed", "reconnecting", "gave_up",     "closed",
        "outbox_restored", "dropped",
    };
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

void wait_for(wsbeat_client *c, wsbeat_event_type type, int timeout_ms, wsbeat_event *ev) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "timed out after %d ms waiting for %s\n", timeout_ms,
                    event_name(type));
            exit(1);
        }
        CHECK_OK(wsbeat_client_poll(c, (int32_t)left, ev));
        if (ev->type != WSBEAT_EVENT_NONE) {
            fprintf(stderr, "event %s attempt=%llu code=%u detail=%s\n", event_name(ev->type),
                    (unsigned long long)ev->attempt, (unsigned)ev->close_code, ev->detail);
        }
        if (ev->type == type) {
            return;
        }
    }
}

/* WSBEAT_CAPI_LOG=1: wsbeat's own log records on stderr, to diagnose a failing case. */
static void log_to_stderr(void *userdata, wsbeat_log_level level, const char *target, const char *msg) {
    (void)userdata;
    fprintf(stderr, "[%lld %u %s] %s\n", (long long)now_ms(), (unsigned)level, target, msg);
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "";
    const char *port = argc > 2 ? argv[2] : "9";
    /* The header this was compiled against is the library's. */
    CHECK(strcmp(wsbeat_version(), WSBEAT_VERSION) == 0);
    if (getenv("WSBEAT_CAPI_LOG") != NULL && strcmp(name, "log") != 0) {
        CHECK_OK(wsbeat_log_set(log_to_stderr, NULL, WSBEAT_LOG_TRACE));
    }
    if (strcmp(name, "null_arguments") == 0) return case_null_arguments();
    if (strcmp(name, "status_codes") == 0) return case_status_codes();
    if (strcmp(name, "echo") == 0) return case_echo(port);
    if (strcmp(name, "frozen") == 0) return case_frozen(port);
    if (strcmp(name, "restart") == 0) return case_restart(port);
    if (strcmp(name, "give_up") == 0) return case_give_up(port);
    if (strcmp(name, "close_code") == 0) return case_close_code(port);
    if (strcmp(name, "hook") == 0) return case_hook(port);
    if (strcmp(name, "waker") == 0) return case_waker(port);
    if (strcmp(name, "log") == 0) return case_log(port);
    if (strcmp(name, "delivery_arguments") == 0) return case_delivery_arguments();
    if (strcmp(name, "dropped") == 0) return case_dropped(port);
    if (strcmp(name, "requeue") == 0) return case_requeue(port);
    if (strcmp(name, "outbox_file") == 0) return case_outbox_file(port);
    fprintf(stderr, "usage: capi_test CASE [PORT] (unknown case '%s')\n", name);
    return 2;
}
