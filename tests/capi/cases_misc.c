/* The wake handle (from a signal handler and from another thread) and log routing. */
#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

static wsbeat_waker *g_waker; /* set before the handler is installed, freed after */
static volatile sig_atomic_t g_signalled;

static void on_alarm(int sig) {
    (void)sig;
    g_signalled = 1;
    wsbeat_waker_wake(g_waker); /* async-signal-safe: an atomic store and a write(2) */
}

static void *wake_later(void *arg) {
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK_OK(wsbeat_waker_wake(arg));
    return NULL;
}

int case_waker(const char *port) {
    wsbeat_config *cfg = test_config(port); /* nothing listens: the client waits to retry */
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    struct sigaction sa;
    struct itimerval t;
    pthread_t thread;
    CHECK_OK(wsbeat_config_set_backoff_initial_ms(cfg, 60000));
    CHECK_OK(wsbeat_config_set_backoff_max_ms(cfg, 60000));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wsbeat_config_free(cfg);
    wait_for(c, WSBEAT_EVENT_RECONNECTING, 5000, &ev); /* now idle for a minute */
    CHECK(wsbeat_client_ready_state(c) == WSBEAT_STATE_WAITING_TO_RECONNECT);
    CHECK(wsbeat_client_next_timeout_ms(c) > 1000);

    /* 1. From a signal handler: SIGALRM after 200 ms ends a 5 s poll. */
    CHECK_OK(wsbeat_client_waker(c, &g_waker));
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    memset(&t, 0, sizeof t);
    t.it_value.tv_usec = 200 * 1000;
    CHECK(setitimer(ITIMER_REAL, &t, NULL) == 0);
    int64_t start = now_ms();
    do {
        CHECK_OK(wsbeat_client_poll(c, 5000, &ev));
    } while (!g_signalled && ev.type == WSBEAT_EVENT_NONE && now_ms() - start < 5000);
    int64_t took = now_ms() - start;
    CHECK(g_signalled && ev.type == WSBEAT_EVENT_NONE);
    CHECK(took >= 150 && took < 200 + slack_ms());

    /* 2. From another thread, through a second waker. */
    wsbeat_waker *w2 = NULL;
    CHECK_OK(wsbeat_client_waker(c, &w2));
    start = now_ms();
    CHECK(pthread_create(&thread, NULL, wake_later, w2) == 0);
    CHECK_OK(wsbeat_client_poll(c, 5000, &ev));
    took = now_ms() - start;
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(ev.type == WSBEAT_EVENT_NONE && took < 100 + slack_ms());

    /* 3. A wake while not polling makes the next poll return at once. */
    CHECK_OK(wsbeat_waker_wake(w2));
    start = now_ms();
    CHECK_OK(wsbeat_client_poll(c, 5000, &ev));
    CHECK(now_ms() - start < slack_ms());

    /* A waker may outlive its client. */
    sa.sa_handler = SIG_DFL;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    wsbeat_client_free(c);
    CHECK_OK(wsbeat_waker_wake(w2));
    wsbeat_waker_free(w2);
    wsbeat_waker_free(g_waker);
    printf("waker: ok\n");
    return 0;
}

struct log_state {
    int records;
    int info_from_wsbeat;
    int busy_seen;
};

static void on_log(void *userdata, wsbeat_log_level level, const char *target, const char *message) {
    struct log_state *s = userdata;
    CHECK(level >= WSBEAT_LOG_ERROR && level <= WSBEAT_LOG_INFO); /* max_level was INFO */
    CHECK(target != NULL && message != NULL && strlen(message) > 0);
    s->records++;
    if (level == WSBEAT_LOG_INFO && strncmp(target, "wsbeat", 6) == 0) s->info_from_wsbeat++;
    /* Changing the logger from inside it is refused rather than deadlocking. */
    if (wsbeat_log_set(on_log, s, WSBEAT_LOG_DEBUG) == WSBEAT_BUSY) s->busy_seen++;
    if (wsbeat_log_clear() == WSBEAT_BUSY) s->busy_seen++;
}

int case_log(const char *port) {
    wsbeat_config *cfg = test_config(port); /* nothing listens: connect failures get logged */
    wsbeat_client *c = NULL;
    wsbeat_event ev;
    struct log_state s = {0, 0, 0};
    CHECK_OK(wsbeat_config_set_max_retries(cfg, 1));
    CHECK_OK(wsbeat_log_set(on_log, &s, WSBEAT_LOG_INFO));
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wait_for(c, WSBEAT_EVENT_GAVE_UP, 5000, &ev);
    wsbeat_client_free(c);
    fprintf(stderr, "log: %d records, %d info from wsbeat\n", s.records, s.info_from_wsbeat);
    CHECK(s.records > 0 && s.info_from_wsbeat > 0);
    CHECK(s.busy_seen == 2 * s.records);

    /* Cleared: nothing more arrives. */
    CHECK_OK(wsbeat_log_clear());
    int before = s.records;
    CHECK_OK(wsbeat_client_new(cfg, &c));
    wait_for(c, WSBEAT_EVENT_GAVE_UP, 5000, &ev);
    wsbeat_client_free(c);
    wsbeat_config_free(cfg);
    CHECK(s.records == before);
    printf("log: ok\n");
    return 0;
}
