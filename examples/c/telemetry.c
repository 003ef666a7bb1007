/* A small telemetry daemon in C on wsbeat: one reading per period from a "sensor" (a
 * timerfd standing in for a real sensor's descriptor), sent over a WebSocket that wsbeat
 * keeps alive. The daemon owns the loop: poll(2) over the sensor fd and wsbeat's fd, with
 * wsbeat's next timeout. Readings taken while offline wait in wsbeat's outbox and go out in
 * order on the next link. SIGTERM/SIGINT wake the loop through the wake handle (the one
 * async-signal-safe call), then the daemon closes gracefully and exits 0.
 *
 *   cc -std=c99 telemetry.c -o telemetry $(pkg-config --cflags --libs wsbeat)
 *   ./telemetry ws://127.0.0.1:9001/ [period_ms]
 *
 * wsbeat's log records go to syslog (and stderr: LOG_PERROR). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <unistd.h>

#include <wsbeat.h>

static wsbeat_waker *waker;      /* made before the handlers are installed */
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
    wsbeat_waker_wake(waker); /* ends a blocked wait at once */
}

static void to_syslog(void *userdata, wsbeat_log_level level, const char *target, const char *msg) {
    static const int prio[] = {LOG_DEBUG, LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG};
    (void)userdata;
    syslog(prio[level <= WSBEAT_LOG_TRACE ? level : 0], "%s: %s", target, msg);
}

static int fail(const char *what, wsbeat_status s, const char *detail) {
    fprintf(stderr, "telemetry: %s: %s (%s)\n", what, wsbeat_status_str(s), detail);
    return 1;
}

/* Handles what wsbeat has to say; returns 1 once the client has stopped. */
static int drain_events(wsbeat_client *c) {
    wsbeat_event ev;
    while (wsbeat_client_poll(c, 0, &ev) == WSBEAT_OK && ev.type != WSBEAT_EVENT_NONE) {
        switch (ev.type) {
        case WSBEAT_EVENT_CONNECTED:
            syslog(LOG_INFO, "online (attempt %" PRIu64 "), %zu readings queued", ev.attempt,
                   wsbeat_client_buffered_messages(c));
            break;
        case WSBEAT_EVENT_DISCONNECTED:
            syslog(LOG_WARNING, "offline: %s (%" PRIu64 " unconfirmed)", ev.detail, ev.unconfirmed);
            break;
        case WSBEAT_EVENT_MESSAGE: /* a command from the server; not NUL-terminated */
            syslog(LOG_INFO, "server says: %.*s", (int)ev.len, (const char *)ev.data);
            break;
        case WSBEAT_EVENT_GAVE_UP:
        case WSBEAT_EVENT_CLOSED:
            return 1;
        default:
            break;
        }
    }
    return wsbeat_client_is_stopped(c);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: telemetry URL [period_ms]\n");
        return 2;
    }
    long period_ms = argc > 2 ? atol(argv[2]) : 1000;
    openlog("telemetry", LOG_PID | LOG_PERROR, LOG_DAEMON);
    wsbeat_log_set(to_syslog, NULL, WSBEAT_LOG_INFO);

    wsbeat_config *cfg = NULL;
    wsbeat_client *c = NULL;
    wsbeat_status s = wsbeat_config_new(argv[1], &cfg);
    if (s != WSBEAT_OK) return fail("config", s, "");
    wsbeat_config_set_ping_interval_ms(cfg, 10000);
    wsbeat_config_set_pong_timeout_ms(cfg, 5000);
    wsbeat_config_set_outbox_max_messages(cfg, 10000); /* hours of readings while offline */
    wsbeat_config_add_header(cfg, "X-Device-Id", "gw-0042");
    s = wsbeat_client_new(cfg, &c);
    if (s != WSBEAT_OK) return fail("client", s, wsbeat_config_last_error(cfg));
    wsbeat_config_free(cfg); /* the client keeps a copy */

    if (wsbeat_client_waker(c, &waker) != WSBEAT_OK) return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int sensor = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec every = {{period_ms / 1000, (period_ms % 1000) * 1000000L},
                               {period_ms / 1000, (period_ms % 1000) * 1000000L}};
    if (sensor < 0 || timerfd_settime(sensor, 0, &every, NULL) < 0) return 1;

    uint64_t seq = 0, refused = 0;
    int closing = 0;
    for (;;) {
        if (stop && !closing) {
            wsbeat_client_close(c); /* queued readings first, then Close 1000 */
            closing = 1;
        }
        struct pollfd fds[2] = {{.fd = wsbeat_client_fd(c), .events = POLLIN},
                                {.fd = sensor, .events = POLLIN}};
        int n = poll(fds, closing ? 1 : 2, wsbeat_client_next_timeout_ms(c));
        if (n < 0 && errno != EINTR) break;
        if (n > 0 && !closing && (fds[1].revents & POLLIN)) {
            uint64_t ticks;
            if (read(sensor, &ticks, sizeof ticks) == sizeof ticks) {
                char reading[96];
                seq++;
                int len = snprintf(reading, sizeof reading, "{\"seq\":%" PRIu64 ",\"temp_mc\":%d}",
                                   seq, 21000 + (int)(seq % 7) * 100);
                if (wsbeat_client_send_text(c, reading, (size_t)len) != WSBEAT_OK) refused++;
            }
        }
        if (drain_events(c)) break; /* also runs on timeouts and wakes */
    }

    /* Readings never handed to the kernel could be kept on flash here. */
    syslog(LOG_INFO, "stopped: %" PRIu64 " readings, %zu unsent, %" PRIu64 " refused", seq,
           wsbeat_client_buffered_messages(c), refused);
    wsbeat_client_free(c);
    wsbeat_waker_free(waker);
    close(sensor);
    return 0;
}
