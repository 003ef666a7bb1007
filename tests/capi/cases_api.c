/* Argument checks and status codes: every function given NULL for each pointer, and every
 * status a C caller can provoke (WSBEAT_PANIC and WSBEAT_LOGGER_IN_USE need Rust code to
 * provoke; src/capi/ unit tests cover them). No server is needed. */
#include "check.h"

#include <sys/resource.h>

static const char BAD_UTF8[] = {(char)0xff, (char)0xfe, 0};

static void noop_hook(void *userdata, wsbeat_request *request) {
    (void)userdata;
    (void)request;
}
static void noop_message(void *userdata, wsbeat_message_type t, const uint8_t *d, size_t n) {
    (void)userdata, (void)t, (void)d, (void)n;
}
static void noop_log(void *userdata, wsbeat_log_level l, const char *t, const char *m) {
    (void)userdata, (void)l, (void)t, (void)m;
}

/* The last error names the function that failed. */
static void check_client_error(wsbeat_client *c, const char *needle) {
    const char *e = wsbeat_client_last_error(c);
    if (strstr(e, needle) == NULL) {
        fprintf(stderr, "client last error '%s' lacks '%s'\n", e, needle);
        exit(1);
    }
}

int case_null_arguments(void) {
    const wsbeat_status NUL = WSBEAT_NULL_ARGUMENT;
    wsbeat_config *cfg = NULL;
    wsbeat_client *c = NULL;
    wsbeat_waker *w = NULL;
    wsbeat_event ev;
    wsbeat_stats st;
    const uint8_t b[1] = {0};

    /* Config: creation and every setter with a NULL handle, then NULL strings/buffers. */
    CHECK_STATUS(wsbeat_config_new(NULL, &cfg), NUL);
    CHECK(cfg == NULL); /* out-parameters are written only on success */
    CHECK_STATUS(wsbeat_config_new("ws://h/", NULL), NUL);
    CHECK(strcmp(wsbeat_config_last_error(NULL), "") == 0);
    wsbeat_config_free(NULL);
    CHECK_STATUS(wsbeat_config_set_ping_interval_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_pong_timeout_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_max_missed_pongs(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_backoff_initial_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_backoff_max_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_backoff_factor(NULL, 2.0), NUL);
    CHECK_STATUS(wsbeat_config_set_backoff_jitter(NULL, 0.1), NUL);
    CHECK_STATUS(wsbeat_config_set_min_uptime_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_seed(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_connect_timeout_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_close_timeout_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_write_timeout_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_max_message_size(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_max_frame_size(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_read_buffer_size(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_outbox_max_messages(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_outbox_max_bytes(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_add_final_close_code(NULL, 4000), NUL);
    CHECK_STATUS(wsbeat_config_add_final_http_status(NULL, 401), NUL);
    CHECK_STATUS(wsbeat_config_set_max_retries(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_proxy_from_env(NULL), NUL);
    CHECK_STATUS(wsbeat_config_add_protocol(NULL, "p"), NUL);
    CHECK_STATUS(wsbeat_config_set_origin(NULL, "o"), NUL);
    CHECK_STATUS(wsbeat_config_set_proxy(NULL, "http://p:1"), NUL);
    CHECK_STATUS(wsbeat_config_add_header(NULL, "a", "b"), NUL);
    CHECK_STATUS(wsbeat_config_clear_headers(NULL), NUL);
    CHECK_STATUS(wsbeat_config_set_app_heartbeat(NULL, WSBEAT_MESSAGE_TEXT, b, 1, b, 1), NUL);
#ifdef WSBEAT_FEATURE_TLS
    CHECK_STATUS(wsbeat_config_add_root_pem(NULL, b, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_identity_pem(NULL, b, 1, b, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_identity_pkcs12(NULL, b, 1, "pw"), NUL);
    CHECK_STATUS(wsbeat_config_set_disable_system_roots(NULL, true), NUL);
    CHECK_STATUS(wsbeat_config_set_insecure(NULL, true), NUL);
#endif

    CHECK_OK(wsbeat_config_new("ws://127.0.0.1:9/", &cfg));
    CHECK_STATUS(wsbeat_config_add_protocol(cfg, NULL), NUL);
    check_config_error(cfg, "wsbeat_config_add_protocol");
    CHECK_STATUS(wsbeat_config_set_origin(cfg, NULL), NUL);
    CHECK_STATUS(wsbeat_config_set_proxy(cfg, NULL), NUL);
    CHECK_STATUS(wsbeat_config_add_header(cfg, NULL, "v"), NUL);
    CHECK_STATUS(wsbeat_config_add_header(cfg, "n", NULL), NUL);
    check_config_error(cfg, "wsbeat_config_add_header: a pointer argument was null");
    CHECK_STATUS(wsbeat_config_set_app_heartbeat(cfg, WSBEAT_MESSAGE_TEXT, NULL, 0, b, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_app_heartbeat(cfg, WSBEAT_MESSAGE_TEXT, b, 1, NULL, 0), NUL);
#ifdef WSBEAT_FEATURE_TLS
    CHECK_STATUS(wsbeat_config_add_root_pem(cfg, NULL, 0), NUL);
    CHECK_STATUS(wsbeat_config_set_identity_pem(cfg, NULL, 0, b, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_identity_pem(cfg, b, 1, NULL, 0), NUL);
    CHECK_STATUS(wsbeat_config_set_identity_pkcs12(cfg, NULL, 0, "pw"), NUL);
    CHECK_STATUS(wsbeat_config_set_identity_pkcs12(cfg, b, 1, NULL), NUL);
#endif

    /* Client: creation, then every function with a NULL handle (getters: their defaults). */
    CHECK_STATUS(wsbeat_client_new(NULL, &c), NUL);
    CHECK_STATUS(wsbeat_client_new(cfg, NULL), NUL);
    CHECK(c == NULL);
    wsbeat_client_free(NULL);
    CHECK(strcmp(wsbeat_client_last_error(NULL), "") == 0);
    CHECK_STATUS(wsbeat_client_send_text(NULL, "x", 1), NUL);
    CHECK_STATUS(wsbeat_client_send_binary(NULL, b, 1), NUL);
    CHECK_STATUS(wsbeat_client_close(NULL), NUL);
    CHECK_STATUS(wsbeat_client_close_with(NULL, 1000, ""), NUL);
    CHECK_STATUS(wsbeat_client_take_unsent(NULL, noop_message, NULL), NUL);
    CHECK_STATUS(wsbeat_client_poll(NULL, 0, &ev), NUL);
    CHECK_STATUS(wsbeat_client_stats(NULL, &st), NUL);
    CHECK_STATUS(wsbeat_client_waker(NULL, &w), NUL);
    CHECK_STATUS(wsbeat_client_set_request_hook(NULL, noop_hook, NULL), NUL);
    CHECK(wsbeat_client_fd(NULL) == -1);
    CHECK(wsbeat_client_next_timeout_ms(NULL) == -1);
    CHECK(!wsbeat_client_wants_write(NULL));
    CHECK(wsbeat_client_ready_state(NULL) == WSBEAT_STATE_CLOSED);
    CHECK(wsbeat_client_is_stopped(NULL));
    CHECK(wsbeat_client_buffered_amount(NULL) == 0);
    CHECK(wsbeat_client_buffered_messages(NULL) == 0);
    CHECK_STATUS(wsbeat_waker_wake(NULL), NUL);
    wsbeat_waker_free(NULL);

    /* A live client with NULL in each other pointer. */
    CHECK_OK(wsbeat_client_new(cfg, &c));
    CHECK(c != NULL);
    CHECK_STATUS(wsbeat_client_send_text(c, NULL, 0), NUL);
    check_client_error(c, "wsbeat_client_send_text: a pointer argument was null");
    CHECK_STATUS(wsbeat_client_send_binary(c, NULL, 0), NUL);
    CHECK_STATUS(wsbeat_client_close_with(c, 1000, NULL), NUL);
    CHECK_STATUS(wsbeat_client_take_unsent(c, NULL, NULL), NUL);
    CHECK_STATUS(wsbeat_client_poll(c, 0, NULL), NUL);
    CHECK_STATUS(wsbeat_client_stats(c, NULL), NUL);
    CHECK_STATUS(wsbeat_client_waker(c, NULL), NUL);
    CHECK_STATUS(wsbeat_client_set_request_hook(c, NULL, NULL), NUL);
    CHECK(wsbeat_client_fd(c) >= 0);

    /* The request functions (normally called inside a hook) with NULL. */
    CHECK(wsbeat_request_attempt(NULL) == 0);
    CHECK(strcmp(wsbeat_request_url(NULL), "") == 0);
    CHECK_STATUS(wsbeat_request_set_url(NULL, "ws://h/"), NUL);
    CHECK_STATUS(wsbeat_request_set_header(NULL, "a", "b"), NUL);
    CHECK_STATUS(wsbeat_request_remove_header(NULL, "a"), NUL);

    /* Logging. */
    CHECK_STATUS(wsbeat_log_set(NULL, NULL, WSBEAT_LOG_INFO), NUL);
    CHECK_STATUS(wsbeat_log_set(noop_log, NULL, 6), WSBEAT_INVALID_ARGUMENT);

    wsbeat_client_free(c);
    wsbeat_config_free(cfg);
    printf("null_arguments: ok\n");
    return 0;
}

/* A callback that calls back into its own client: refused with WSBEAT_BUSY. */
static void reentrant_message(void *userdata, wsbeat_message_type t, const uint8_t *d, size_t n) {
    wsbeat_client *c = userdata;
    (void)t;
    CHECK_STATUS(wsbeat_client_send_binary(c, d, n), WSBEAT_BUSY);
    CHECK(wsbeat_client_fd(c) == -1);
    wsbeat_client_free(c); /* refused: the client stays alive (Valgrind would see a reuse) */
}

int case_status_codes(void) {
    wsbeat_config *cfg = NULL;
    wsbeat_client *c = NULL;
    wsbeat_event ev;

    /* Every status has its own static message; an unknown value is safe to pass. */
    for (unsigned s = 0; s <= WSBEAT_PANIC; s++) {
        CHECK(wsbeat_status_str(s) != NULL && strlen(wsbeat_status_str(s)) > 0);
        for (unsigned t = 0; t < s; t++) CHECK(strcmp(wsbeat_status_str(s), wsbeat_status_str(t)) != 0);
    }
    CHECK(strcmp(wsbeat_status_str(12345), "unknown status") == 0);

    /* WSBEAT_INVALID_ARGUMENT: not UTF-8, out of range, unknown enum values. */
    CHECK_STATUS(wsbeat_config_new(BAD_UTF8, &cfg), WSBEAT_INVALID_ARGUMENT);
    CHECK_OK(wsbeat_config_new("ws://127.0.0.1:9/", &cfg));
    CHECK_STATUS(wsbeat_config_add_header(cfg, "X-A", BAD_UTF8), WSBEAT_INVALID_ARGUMENT);
    check_config_error(cfg, "wsbeat_config_add_header: invalid argument");
    CHECK_STATUS(wsbeat_config_set_max_retries(cfg, 5000000000LL), WSBEAT_INVALID_ARGUMENT);
    CHECK_STATUS(wsbeat_config_set_app_heartbeat(cfg, 7, (const uint8_t *)"p", 1, (const uint8_t *)"q", 1),
                 WSBEAT_INVALID_ARGUMENT);
    CHECK_STATUS(wsbeat_config_set_app_heartbeat(cfg, WSBEAT_MESSAGE_TEXT, (const uint8_t *)BAD_UTF8, 2,
                                                 (const uint8_t *)"q", 1),
                 WSBEAT_INVALID_ARGUMENT);
    CHECK_OK(wsbeat_config_set_max_retries(cfg, -1));

    /* WSBEAT_INVALID_CONFIG: the config's last error names the field. */
    CHECK_OK(wsbeat_config_set_ping_interval_ms(cfg, 0));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "heartbeat.ping_interval");
    CHECK(c == NULL);
    wsbeat_config_free(cfg);
    CHECK_OK(wsbeat_config_new("http://127.0.0.1:9/", &cfg));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "`url`");
    wsbeat_config_free(cfg);
    CHECK_OK(wsbeat_config_new("ws://127.0.0.1:9/", &cfg));
    CHECK_OK(wsbeat_config_add_header(cfg, "Bad Name", "v"));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "headers");
    wsbeat_config_free(cfg);
#ifdef WSBEAT_FEATURE_TLS
    CHECK_OK(wsbeat_config_new("wss://127.0.0.1:9/", &cfg));
    CHECK_OK(wsbeat_config_add_root_pem(cfg, (const uint8_t *)"not a pem", 9));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "tls.extra_roots_pem");
    wsbeat_config_free(cfg);
#endif

    /* WSBEAT_IO: no descriptor left for the epoll set (not under Valgrind, which keeps
     * descriptors of its own above the limit). */
    if (!under_valgrind()) {
        struct rlimit old, low;
        CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
        CHECK_OK(wsbeat_config_new("ws://127.0.0.1:9/", &cfg));
        low = old;
        low.rlim_cur = 3; /* stdin, stdout, stderr */
        CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
        wsbeat_status s = wsbeat_client_new(cfg, &c);
        CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
        CHECK_STATUS(s, WSBEAT_IO);
        CHECK(strlen(wsbeat_config_last_error(cfg)) > 0);
        wsbeat_config_free(cfg);
    }

    /* WSBEAT_OUTBOX_FULL and WSBEAT_TOO_LARGE: the message is not taken. */
    CHECK_OK(wsbeat_config_new("ws://127.0.0.1:9/", &cfg));
    CHECK_OK(wsbeat_config_set_outbox_max_messages(cfg, 1));
    CHECK_OK(wsbeat_config_set_max_message_size(cfg, 4));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    CHECK_OK(wsbeat_client_send_text(c, "one", 3));
    CHECK_STATUS(wsbeat_client_send_text(c, "two", 3), WSBEAT_OUTBOX_FULL);
    check_client_error(c, "outbox full");
    CHECK_STATUS(wsbeat_client_send_binary(c, (const uint8_t *)"large", 5), WSBEAT_TOO_LARGE);
    CHECK_STATUS(wsbeat_client_send_text(c, BAD_UTF8, 2), WSBEAT_INVALID_ARGUMENT);
    CHECK(wsbeat_client_buffered_messages(c) == 1 && wsbeat_client_buffered_amount(c) == 3);
    CHECK_STATUS(wsbeat_client_close_with(c, 1005, ""), WSBEAT_INVALID_ARGUMENT);
    CHECK_STATUS(wsbeat_client_close_with(c, 2999, ""), WSBEAT_INVALID_ARGUMENT);
    {
        char reason[125];
        memset(reason, 'r', 124);
        reason[124] = 0;
        CHECK_STATUS(wsbeat_client_close_with(c, 1000, reason), WSBEAT_INVALID_ARGUMENT);
        CHECK_STATUS(wsbeat_client_close_with(c, 1000, BAD_UTF8), WSBEAT_INVALID_ARGUMENT);
    }

    /* WSBEAT_BUSY: a callback calling back into its client (and a refused free). */
    CHECK_OK(wsbeat_client_take_unsent(c, reentrant_message, c));
    CHECK(wsbeat_client_buffered_messages(c) == 0);
    check_client_error(c, "called from inside a callback");

    /* WSBEAT_CLOSED: a closed client takes nothing more. */
    CHECK_OK(wsbeat_client_close(c));
    wait_for(c, WSBEAT_EVENT_CLOSED, 2000, &ev);
    CHECK(ev.close_code == 0); /* no link was open */
    CHECK(wsbeat_client_is_stopped(c));
    CHECK(wsbeat_client_ready_state(c) == WSBEAT_STATE_CLOSED);
    CHECK(wsbeat_client_next_timeout_ms(c) == -1);
    CHECK_OK(wsbeat_client_poll(c, 10000, &ev)); /* stopped: returns at once */
    CHECK(ev.type == WSBEAT_EVENT_NONE && ev.data == NULL && strcmp(ev.detail, "") == 0);
    CHECK_STATUS(wsbeat_client_send_text(c, "late", 4), WSBEAT_CLOSED);
    wsbeat_client_free(c);
    wsbeat_config_free(cfg);
    printf("status_codes: ok\n");
    return 0;
}
