/* Cases against the loopback test server (the harness in tests/capi/main.rs starts it,
 * passes its port, and acts on it when a MARK line says so). */
#include "check.h"

#include <poll.h>

/* One event through the application's own poll(2) loop: wait on the client's fd for at most
 * its next timeout, then take what is due with a zero timeout. */
static void next_event_own_loop(wsbeat_client *c, int timeout_ms, wsbeat_event *ev) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        CHECK_OK(wsbeat_client_poll(c, 0, ev));
        if (ev->type != WSBEAT_EVENT_NONE) {
            return;
        }
        int64_t left = deadline - now_ms();
        CHECK(left > 0);
        int t = wsbeat_client_next_timeout_ms(c);
        CHECK(t >= -1);
        if (t < 0 || t > left) t = (int)left;
        struct pollfd p = {.fd = wsbeat_client_fd(c), .events = POLLIN};
        CHECK(poll(&p, 1, t) >= 0);
    }
}

/* Waits (own loop) for a message and checks its type and bytes. */
static void expect_message(wsbeat_client *c, wsbeat_message_type t, const void *data, size_t len) {
    wsbeat_event ev;
    do {
        next_event_own_loop(c, 5000, &ev);
    } while (ev.type != WSBEAT_EVENT_MESSAGE);
    CHECK(ev.message_type == t);
    CHECK(ev.len == len && memcmp(ev.data, data, len) == 0);
}

int case_echo(const char *port) {
    static const uint8_t bin[] = {0, 1, 2, 255};
    wsbeat_config *cfg = test_config(port);
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    wsbeat_stats st;
    CHECK_OK(wsbeat_config_add_protocol(cfg, "chat"));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg); /* the client keeps its own copy */
    CHECK(wsbeat_client_ready_state(c) == WSBEAT_STATE_CONNECTING);
    /* Queued before the link exists: sent once it opens. */
    CHECK_OK(wsbeat_client_send_text(c, "queued", 6));
    CHECK(wsbeat_client_buffered_messages(c) == 1);
    do {
        next_event_own_loop(c, 5000, &ev);
    } while (ev.type != WSBEAT_EVENT_CONNECTED);
    CHECK(ev.attempt == 1);
    CHECK(strcmp(ev.detail, "") == 0); /* the test server picks no subprotocol */
    CHECK(wsbeat_client_ready_state(c) == WSBEAT_STATE_OPEN);
    expect_message(c, WSBEAT_MESSAGE_TEXT, "queued", 6);
    CHECK_OK(wsbeat_client_send_text(c, "hello", 5));
    expect_message(c, WSBEAT_MESSAGE_TEXT, "hello", 5);
    CHECK_OK(wsbeat_client_send_binary(c, bin, sizeof bin));
    expect_message(c, WSBEAT_MESSAGE_BINARY, bin, sizeof bin);
    CHECK(!wsbeat_client_wants_write(c));
    CHECK(wsbeat_client_buffered_amount(c) == 0);
    CHECK_OK(wsbeat_client_stats(c, &st));
    CHECK(st.attempts == 1 && st.connects == 1);
    CHECK(st.messages_in == 3 && st.messages_out == 3);
    CHECK(st.bytes_in > 0 && st.bytes_out > 0 && st.uptime_us >= 0);
    CHECK_OK(wsbeat_client_close(c));
    do {
        next_event_own_loop(c, 5000, &ev);
    } while (ev.type != WSBEAT_EVENT_CLOSED);
    CHECK(ev.close_code == 1000);
    CHECK_OK(wsbeat_client_stats(c, &st));
    CHECK(st.local_closes == 1 && st.uptime_us == -1);
    wsbeat_client_free(c);
    printf("echo: ok\n");
    return 0;
}

int case_frozen(const char *port) {
    /* Bound: 300 + 2 x 200 = 700 ms after the last inbound byte (times the scale). */
    const uint32_t k = time_scale();
    const int64_t bound = 700 * (int64_t)k;
    wsbeat_config *cfg = test_config(port);
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    CHECK_OK(wsbeat_config_set_ping_interval_ms(cfg, 300 * k));
    CHECK_OK(wsbeat_config_set_pong_timeout_ms(cfg, 200 * k));
    CHECK_OK(wsbeat_config_set_max_missed_pongs(cfg, 2));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    /* The last inbound byte is the echo of "x": after we sent it, before we saw it. The
     * library's clock is exact; ours brackets it (the first event after a slow start under
     * Valgrind can be seen well after its byte arrived). */
    int64_t sent = now_ms();
    CHECK_OK(wsbeat_client_send_text(c, "x", 1));
    wait_for(c, WSBEAT_EVENT_MESSAGE, 5000, &ev);
    int64_t seen = now_ms();
    mark("CONNECTED", 1); /* the harness freezes the server now */
    int pongs = 0, missed = 0;
    for (;;) {
        CHECK_OK(wsbeat_client_poll(c, 5000, &ev));
        CHECK(ev.type != WSBEAT_EVENT_NONE);
        if (ev.type == WSBEAT_EVENT_PONG) {
            /* A pong before the freeze took effect: inbound bytes, the silence restarts
             * (and only the upper side of the bracket stays known). */
            CHECK(ev.rtt_us >= 0);
            sent = -1;
            seen = now_ms();
            pongs++;
        } else if (ev.type == WSBEAT_EVENT_PONG_MISSED) {
            CHECK(ev.max_missed == 2);
            missed++;
        } else if (ev.type == WSBEAT_EVENT_DISCONNECTED) {
            break;
        }
    }
    int64_t at = now_ms();
    fprintf(stderr, "frozen: detected %lld ms after the echo was seen (bound %lld, %d pongs)\n",
            (long long)(at - seen), (long long)bound, pongs);
    CHECK(ev.reason == WSBEAT_REASON_HEARTBEAT_TIMEOUT && ev.missed == 2);
    CHECK(strstr(ev.detail, "no reply to 2 pings") != NULL);
    CHECK(sent < 0 || at - sent >= bound - 5); /* never before the bound */
    CHECK(at - seen <= bound + slack_ms());    /* and at it, give or take the scheduler */
    CHECK(missed == 2);                        /* each miss is reported; the second is the verdict */
    wsbeat_client_free(c);
    printf("frozen: ok\n");
    return 0;
}

int case_restart(const char *port) {
    wsbeat_config *cfg = test_config(port);
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    mark("CONNECTED", (long long)ev.attempt); /* the harness restarts the server now */
    wait_for(c, WSBEAT_EVENT_DISCONNECTED, 5000, &ev);
    CHECK(ev.reason == WSBEAT_REASON_IO_ERROR || ev.reason == WSBEAT_REASON_CLOSED_BY_SERVER);
    wait_for(c, WSBEAT_EVENT_RECONNECTING, 5000, &ev);
    CHECK(ev.attempt >= 2 && ev.delay_ms <= 200);
    /* Sent while offline: delivered on the new link. */
    CHECK_OK(wsbeat_client_send_text(c, "after restart", 13));
    wait_for(c, WSBEAT_EVENT_CONNECTED, 10000, &ev);
    CHECK(ev.attempt >= 2);
    mark("CONNECTED", (long long)ev.attempt);
    wait_for(c, WSBEAT_EVENT_MESSAGE, 5000, &ev);
    CHECK(ev.len == 13 && memcmp(ev.data, "after restart", 13) == 0);
    wsbeat_client_free(c);
    printf("restart: ok\n");
    return 0;
}

/* Collects what take_unsent hands back. */
struct unsent {
    int count;
    char text[64];
};
static void collect(void *userdata, wsbeat_message_type t, const uint8_t *d, size_t n) {
    struct unsent *u = userdata;
    CHECK(t == WSBEAT_MESSAGE_TEXT);
    strncat(u->text, (const char *)d, n);
    u->count++;
}

int case_give_up(const char *port) {
    wsbeat_config *cfg = test_config(port); /* nothing listens on this port */
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    struct unsent u = {0, ""};
    int failed = 0, scheduled = 0;
    CHECK_OK(wsbeat_config_set_max_retries(cfg, 2));
    CHECK_OK(wsbeat_config_set_backoff_initial_ms(cfg, 20));
    CHECK_OK(wsbeat_config_set_backoff_max_ms(cfg, 50));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    CHECK_OK(wsbeat_client_send_text(c, "a", 1));
    CHECK_OK(wsbeat_client_send_text(c, "b", 1));
    for (;;) {
        CHECK_OK(wsbeat_client_poll(c, 5000, &ev));
        CHECK(ev.type != WSBEAT_EVENT_NONE);
        if (ev.type == WSBEAT_EVENT_CONNECT_FAILED) {
            CHECK(ev.http_status == 0 && strstr(ev.detail, "refused") != NULL);
            failed++;
        }
        if (ev.type == WSBEAT_EVENT_RECONNECTING) scheduled++;
        if (ev.type == WSBEAT_EVENT_GAVE_UP) break;
    }
    /* max_retries 2 against a server dead from the start: 3 attempts. */
    CHECK(ev.attempt == 3 && failed == 3 && scheduled == 2);
    CHECK(wsbeat_client_is_stopped(c));
    CHECK(wsbeat_client_ready_state(c) == WSBEAT_STATE_CLOSED);
    CHECK_STATUS(wsbeat_client_send_text(c, "c", 1), WSBEAT_CLOSED);
    CHECK_OK(wsbeat_client_take_unsent(c, collect, &u));
    CHECK(u.count == 2 && strcmp(u.text, "ab") == 0); /* nothing lost, in order */
    CHECK(wsbeat_client_buffered_messages(c) == 0);
    wsbeat_client_free(c);
    printf("give_up: ok\n");
    return 0;
}

int case_close_code(const char *port) {
    wsbeat_config *cfg = test_config(port);
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    /* 1. The server closes with 4001, a final code: reported, then no reconnect. */
    CHECK_OK(wsbeat_config_add_final_close_code(cfg, 4001));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    mark("CONNECTED", 1); /* the harness closes every connection with 4001 "revoked" */
    wait_for(c, WSBEAT_EVENT_DISCONNECTED, 5000, &ev);
    CHECK(ev.reason == WSBEAT_REASON_CLOSED_BY_SERVER && ev.close_code == 4001);
    CHECK(strstr(ev.detail, "revoked") != NULL);
    wait_for(c, WSBEAT_EVENT_GAVE_UP, 5000, &ev);
    wsbeat_client_free(c);
    /* 2. We close with 4000 "bye": the code goes out and comes back in the events. */
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    CHECK_OK(wsbeat_client_close_with(c, 4000, "bye"));
    CHECK(wsbeat_client_ready_state(c) == WSBEAT_STATE_CLOSING);
    wait_for(c, WSBEAT_EVENT_DISCONNECTED, 5000, &ev);
    CHECK(ev.reason == WSBEAT_REASON_LOCAL_CLOSE && ev.close_code == 4000);
    wait_for(c, WSBEAT_EVENT_CLOSED, 5000, &ev);
    CHECK(ev.close_code == 4000);
    wsbeat_client_free(c);
    printf("close_code: ok\n");
    return 0;
}

/* The request hook: a token renewed per attempt, the URL read and set back. */
struct hook_state {
    int calls;
    wsbeat_client *client;
};
static void renew_token(void *userdata, wsbeat_request *req) {
    struct hook_state *h = userdata;
    char token[64];
    h->calls++;
    CHECK(strncmp(wsbeat_request_url(req), "ws://127.0.0.1:", 15) == 0);
    CHECK_OK(wsbeat_request_set_url(req, wsbeat_request_url(req)));
    snprintf(token, sizeof token, "Bearer token-%llu", (unsigned long long)wsbeat_request_attempt(req));
    CHECK_OK(wsbeat_request_set_header(req, "authorization", token));
    CHECK_OK(wsbeat_request_remove_header(req, "X-Stale"));
    /* The client is busy polling: calls into it are refused, not undefined. */
    CHECK_STATUS(wsbeat_client_send_text(h->client, "x", 1), WSBEAT_BUSY);
}

int case_hook(const char *port) {
    wsbeat_config *cfg = test_config(port);
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    struct hook_state h = {0, NULL};
    CHECK_OK(wsbeat_config_add_header(cfg, "Authorization", "Bearer expired"));
    CHECK_OK(wsbeat_config_add_header(cfg, "X-Stale", "1"));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    h.client = c;
    CHECK_OK(wsbeat_client_set_request_hook(c, renew_token, &h));
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    mark("CONNECTED", (long long)ev.attempt); /* the harness drops the connection now */
    wait_for(c, WSBEAT_EVENT_DISCONNECTED, 5000, &ev);
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    mark("CONNECTED", (long long)ev.attempt);
    CHECK(h.calls == (int)ev.attempt);
    wsbeat_client_free(c);
    printf("hook: ok\n");
    return 0;
}
