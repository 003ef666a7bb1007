/* Delivery: the delivery mode, the outbox file, drop-oldest, the hello, and the events they
 * bring (OUTBOX_RESTORED, DROPPED, DISCONNECTED's requeued, CONNECTING/RECONNECTING's at_ms). */
#include "check.h"

#include <errno.h>
#include <unistd.h>

static void noop_hello(void *userdata, wsbeat_hello *hello) {
    (void)userdata, (void)hello;
}

/* The hello: one text message naming how many links it has opened so far. */
static void count_hello(void *userdata, wsbeat_hello *hello) {
    int *opened = userdata;
    (*opened)++;
    CHECK_OK(wsbeat_hello_add(hello, WSBEAT_MESSAGE_TEXT, (const uint8_t *)"hello", 5));
    CHECK_STATUS(wsbeat_hello_add(hello, 9, (const uint8_t *)"x", 1), WSBEAT_INVALID_ARGUMENT);
    CHECK_STATUS(wsbeat_hello_add(hello, WSBEAT_MESSAGE_BINARY, NULL, 0), WSBEAT_NULL_ARGUMENT);
}

int case_delivery_arguments(void) {
    const wsbeat_status NUL = WSBEAT_NULL_ARGUMENT, BAD = WSBEAT_INVALID_ARGUMENT;
    wsbeat_config *cfg = NULL;
    wsbeat_client *c = NULL;

    /* NULL handles. */
    CHECK_STATUS(wsbeat_config_set_delivery(NULL, WSBEAT_DELIVERY_AT_LEAST_ONCE), NUL);
    CHECK_STATUS(wsbeat_config_set_outbox_when_full(NULL, WSBEAT_WHEN_FULL_DROP_OLDEST), NUL);
    CHECK_STATUS(wsbeat_config_set_outbox_file(NULL, "/tmp/x"), NUL);
    CHECK_STATUS(wsbeat_config_set_outbox_sync(NULL, WSBEAT_OUTBOX_SYNC_NEVER, 0), NUL);
    CHECK_STATUS(wsbeat_config_set_backoff_first_spread_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_config_set_backoff_strategy(NULL, WSBEAT_JITTER_FULL), NUL);
    CHECK_STATUS(wsbeat_client_set_hello(NULL, noop_hello, NULL), NUL);
    CHECK_STATUS(wsbeat_config_set_network_watch(NULL, true), NUL);
    CHECK_STATUS(wsbeat_config_set_network_probe_timeout_ms(NULL, 1000), NUL);
    CHECK_STATUS(wsbeat_config_set_coalesce_window_ms(NULL, 1), NUL);
    CHECK_STATUS(wsbeat_hello_add(NULL, WSBEAT_MESSAGE_TEXT, (const uint8_t *)"x", 1), NUL);

    /* Values out of range, a NULL path; the last error names the setter. */
    CHECK_OK(wsbeat_config_new("ws://127.0.0.1:9/", &cfg));
    CHECK_STATUS(wsbeat_config_set_delivery(cfg, 2), BAD);
    check_config_error(cfg, "wsbeat_config_set_delivery: invalid argument");
    CHECK_STATUS(wsbeat_config_set_outbox_when_full(cfg, 2), BAD);
    check_config_error(cfg, "wsbeat_config_set_outbox_when_full");
    CHECK_STATUS(wsbeat_config_set_outbox_sync(cfg, 3, 1000), BAD);
    check_config_error(cfg, "wsbeat_config_set_outbox_sync");
    CHECK_STATUS(wsbeat_config_set_backoff_strategy(cfg, 3), BAD);
    check_config_error(cfg, "wsbeat_config_set_backoff_strategy");
    CHECK_STATUS(wsbeat_config_set_outbox_file(cfg, NULL), NUL);
    check_config_error(cfg, "wsbeat_config_set_outbox_file: a pointer argument was null");

    /* Every valid value is taken. */
    CHECK_OK(wsbeat_config_set_delivery(cfg, WSBEAT_DELIVERY_AT_MOST_ONCE));
    CHECK_OK(wsbeat_config_set_delivery(cfg, WSBEAT_DELIVERY_AT_LEAST_ONCE));
    CHECK_OK(wsbeat_config_set_outbox_when_full(cfg, WSBEAT_WHEN_FULL_REFUSE));
    CHECK_OK(wsbeat_config_set_outbox_when_full(cfg, WSBEAT_WHEN_FULL_DROP_OLDEST));
    CHECK_OK(wsbeat_config_set_outbox_sync(cfg, WSBEAT_OUTBOX_SYNC_ALWAYS, 0));
    CHECK_OK(wsbeat_config_set_outbox_sync(cfg, WSBEAT_OUTBOX_SYNC_NEVER, 0));
    CHECK_OK(wsbeat_config_set_backoff_strategy(cfg, WSBEAT_JITTER_PROPORTIONAL));
    CHECK_OK(wsbeat_config_set_backoff_strategy(cfg, WSBEAT_JITTER_DECORRELATED));
    CHECK_OK(wsbeat_config_set_backoff_strategy(cfg, WSBEAT_JITTER_FULL));
    CHECK_OK(wsbeat_config_set_backoff_first_spread_ms(cfg, 0));
    CHECK_OK(wsbeat_config_set_network_watch(cfg, true));
    CHECK_OK(wsbeat_config_set_network_probe_timeout_ms(cfg, 500));
    CHECK_OK(wsbeat_config_set_coalesce_window_ms(cfg, 0));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    CHECK_STATUS(wsbeat_client_set_hello(c, NULL, NULL), NUL);
    CHECK_OK(wsbeat_client_set_hello(c, noop_hello, NULL));
    wsbeat_client_free(c);
    c = NULL;

    /* Checked when the client is made: the field is named, nothing is written. */
    CHECK_OK(wsbeat_config_set_network_probe_timeout_ms(cfg, 0));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "network.probe_timeout");
    CHECK(c == NULL);
    CHECK_OK(wsbeat_config_set_network_probe_timeout_ms(cfg, 500));
    CHECK_OK(wsbeat_config_set_coalesce_window_ms(cfg, 1001));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "coalesce_window");
    CHECK(c == NULL);
    CHECK_OK(wsbeat_config_set_coalesce_window_ms(cfg, 1));
    CHECK_OK(wsbeat_config_set_outbox_sync(cfg, WSBEAT_OUTBOX_SYNC_EVERY, 0));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "outbox.sync");
    CHECK(c == NULL);
    CHECK_OK(wsbeat_config_set_outbox_sync(cfg, WSBEAT_OUTBOX_SYNC_EVERY, 1000));
    CHECK_OK(wsbeat_config_set_outbox_file(cfg, "/nonexistent-wsbeat-dir/outbox"));
    CHECK_STATUS(wsbeat_client_new(cfg, &c), WSBEAT_INVALID_CONFIG);
    check_config_error(cfg, "outbox.file");
    CHECK(c == NULL);
    CHECK_OK(wsbeat_config_set_outbox_file(cfg, "")); /* back to the in-memory outbox */
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_client_free(c);
    wsbeat_config_free(cfg);
    printf("delivery_arguments: ok\n");
    return 0;
}

/* A taken message, for wsbeat_client_take_unsent: appends "text," to the buffer. */
static void collect(void *userdata, wsbeat_message_type t, const uint8_t *d, size_t n) {
    char *buf = userdata;
    CHECK(t == WSBEAT_MESSAGE_TEXT);
    strncat(buf, (const char *)d, n);
    strcat(buf, ",");
}

int case_dropped(const char *port) {
    wsbeat_config *cfg = test_config(port); /* nothing listens there */
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    char unsent[64] = "";
    CHECK_OK(wsbeat_config_set_outbox_max_messages(cfg, 2));
    CHECK_OK(wsbeat_config_set_outbox_when_full(cfg, WSBEAT_WHEN_FULL_DROP_OLDEST));
    CHECK_OK(wsbeat_config_set_max_retries(cfg, 2));
    int64_t before = now_ms();
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    CHECK_OK(wsbeat_client_send_text(c, "one", 3));
    CHECK_OK(wsbeat_client_send_text(c, "two", 3));
    CHECK_OK(wsbeat_client_send_text(c, "three", 5)); /* takes the room of "one" */
    CHECK(wsbeat_client_buffered_messages(c) == 2);

    /* at_ms: CONNECTING's is in the past, RECONNECTING's is its delay ahead, and the next
     * CONNECTING is not before the RECONNECTING that scheduled it. */
    uint64_t dropped = 0, due = 0;
    int connecting = 0, reconnecting = 0;
    for (;;) {
        CHECK_OK(wsbeat_client_poll(c, 5000, &ev));
        int64_t since = now_ms() - before;
        CHECK(ev.type != WSBEAT_EVENT_NONE);
        if (ev.type == WSBEAT_EVENT_DROPPED) {
            dropped += ev.messages;
        } else if (ev.type == WSBEAT_EVENT_CONNECTING) {
            CHECK((int64_t)ev.at_ms <= since && ev.at_ms >= due);
            connecting++;
        } else if (ev.type == WSBEAT_EVENT_RECONNECTING) {
            CHECK(ev.at_ms + 1 >= ev.delay_ms && (int64_t)ev.at_ms <= since + (int64_t)ev.delay_ms + 1);
            due = ev.at_ms;
            reconnecting++;
        } else if (ev.type == WSBEAT_EVENT_GAVE_UP) {
            break;
        }
    }
    CHECK(dropped == 1);
    CHECK(connecting == 3 && reconnecting == 2);
    CHECK_OK(wsbeat_client_take_unsent(c, collect, unsent));
    CHECK(strcmp(unsent, "two,three,") == 0);
    wsbeat_client_free(c);
    printf("dropped: ok\n");
    return 0;
}

int case_requeue(const char *port) {
    wsbeat_config *cfg = test_config(port);
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    /* No ping (so no proof of delivery) within the case. */
    CHECK_OK(wsbeat_config_set_ping_interval_ms(cfg, 60000));
    CHECK_OK(wsbeat_config_set_delivery(cfg, WSBEAT_DELIVERY_AT_LEAST_ONCE));
    CHECK_OK(wsbeat_config_set_backoff_first_spread_ms(cfg, 0));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    CHECK_OK(wsbeat_client_send_text(c, "r1", 2));
    wait_for(c, WSBEAT_EVENT_MESSAGE, 5000, &ev); /* the echo: read, but not proven */
    CHECK(wsbeat_client_buffered_messages(c) == 1);
    mark("SENT", 1); /* the harness drops the connection */
    wait_for(c, WSBEAT_EVENT_DISCONNECTED, 5000, &ev);
    CHECK(ev.unconfirmed == 1 && ev.requeued == 1);
    wait_for(c, WSBEAT_EVENT_CONNECTED, 5000, &ev);
    wait_for(c, WSBEAT_EVENT_MESSAGE, 5000, &ev); /* sent again */
    CHECK(ev.len == 2 && memcmp(ev.data, "r1", 2) == 0);
    CHECK_OK(wsbeat_client_close(c));
    wait_for(c, WSBEAT_EVENT_CLOSED, 5000, &ev);
    CHECK(wsbeat_client_buffered_messages(c) == 0); /* the Close reply proved it */
    wsbeat_client_free(c);
    printf("requeue: ok\n");
    return 0;
}

/* A client on the outbox file `path`; its first event is OUTBOX_RESTORED with `restored`
 * messages and `skipped` damaged bytes. */
static wsbeat_client *file_client(const char *port, const char *path, uint64_t restored,
                                  uint64_t skipped) {
    wsbeat_config *cfg = test_config(port);
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    CHECK_OK(wsbeat_config_set_outbox_file(cfg, path));
    CHECK_OK(wsbeat_config_set_outbox_sync(cfg, WSBEAT_OUTBOX_SYNC_ALWAYS, 0));
    CHECK_OK(wsbeat_config_set_backoff_first_spread_ms(cfg, 0));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    CHECK_OK(wsbeat_client_poll(c, 0, &ev));
    CHECK(ev.type == WSBEAT_EVENT_OUTBOX_RESTORED);
    if (ev.messages != restored || ev.skipped_bytes != skipped) {
        fprintf(stderr, "restored %llu messages (%llu bytes skipped), wanted %llu (%llu)\n",
                (unsigned long long)ev.messages, (unsigned long long)ev.skipped_bytes,
                (unsigned long long)restored, (unsigned long long)skipped);
        exit(1);
    }
    CHECK(wsbeat_client_buffered_messages(c) == restored);
    return c;
}

/* Removes the outbox file `path`, its lock file (both must exist), a compaction's leftover
 * (need not) and their directory `dir`. Named, not listed: readdir(3) of a 32-bit guest under
 * qemu-user can stop early on a 64-bit host's directory offsets. */
static void remove_outbox(const char *dir, const char *path) {
    static const char *const suffixes[] = {"", ".lock", ".compact"};
    char p[256];
    for (int i = 0; i < 3; i++) {
        CHECK(snprintf(p, sizeof p, "%s%s", path, suffixes[i]) < (int)sizeof p);
        CHECK(unlink(p) == 0 || (i == 2 && errno == ENOENT));
    }
    CHECK(rmdir(dir) == 0);
}

int case_outbox_file(const char *port) {
    char dir[] = "/tmp/wsbeat-capi-XXXXXX", path[64];
    wsbeat_event ev;
    int opened = 0;
    CHECK(mkdtemp(dir) != NULL);
    CHECK(snprintf(path, sizeof path, "%s/outbox", dir) < (int)sizeof path);

    /* The server is down: three messages wait in the file, then the client goes. */
    wsbeat_client *c = file_client(port, path, 0, 0);
    CHECK_OK(wsbeat_client_send_text(c, "m1", 2));
    CHECK_OK(wsbeat_client_send_text(c, "m2", 2));
    CHECK_OK(wsbeat_client_send_text(c, "m3", 2));
    wait_for(c, WSBEAT_EVENT_CONNECT_FAILED, 5000, &ev);
    wsbeat_client_free(c);
    /* A torn record after them, as a power cut mid-append leaves one. */
    FILE *f = fopen(path, "ab");
    CHECK(f != NULL && fwrite("\x01\x02\x03\x04\x05", 1, 5, f) == 5 && fclose(f) == 0);

    /* A new client finds the three (and skips the torn bytes); once the server is back they
     * go after the hello. */
    c = file_client(port, path, 3, 5);
    CHECK_OK(wsbeat_client_set_hello(c, count_hello, &opened));
    mark("RESTORED", 3); /* the harness starts the server */
    wait_for(c, WSBEAT_EVENT_CONNECTED, 10000, &ev);
    CHECK(opened == 1);
    const char *want[] = {"hello", "m1", "m2", "m3"};
    for (int i = 0; i < 4; i++) {
        wait_for(c, WSBEAT_EVENT_MESSAGE, 5000, &ev);
        CHECK(ev.len == strlen(want[i]) && memcmp(ev.data, want[i], ev.len) == 0);
    }
    CHECK_OK(wsbeat_client_close(c));
    wait_for(c, WSBEAT_EVENT_CLOSED, 5000, &ev); /* the Close reply proves all four read */
    wsbeat_client_free(c);

    /* Delivered and proven: the file keeps nothing more. */
    c = file_client(port, path, 0, 0);
    wsbeat_client_free(c);
    remove_outbox(dir, path);
    printf("outbox_file: ok\n");
    return 0;
}
