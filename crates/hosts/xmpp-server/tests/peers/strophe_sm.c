/* XEP-0198 resumption of a libstrophe client against the xmpp-server example server.
 *
 * usage: strophe_sm HOST PORT DOMAIN CAFILE
 *
 * alice (libstrophe's stream management, on by default in 0.12) and bob (XMPP_CONN_FLAG_DISABLE_SM)
 * log in over mandatory STARTTLS. bob sends alice three messages; alice's TCP socket is then
 * shut down under libstrophe (no </stream>) while bob sends three more; alice's saved state
 * (xmpp_conn_get_sm_state) is given to a new connection (xmpp_conn_set_sm_state), which
 * resumes; bob sends a seventh. alice must receive all seven exactly once, in order, and the
 * new connection must have been resumed (<resumed/>), not bound afresh.
 *
 * Prints "RESULT <feature> pass|fail" lines (login, enabled, resume, exactly-once); exits 0
 * only if all passed. Written for this repository's interop tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include <strophe.h>

static const char *domain;
static xmpp_ctx_t *ctx;
static xmpp_conn_t *alice, *bob;
static int alice_fd = -1, connected, enabled, resumed, bound_again, alice_down, failed;
static char alice_jid[256], got[7][16];
static int ngot, duplicates;

static int on_sockopt(xmpp_conn_t *conn, void *sock) {
    (void)conn;
    alice_fd = *(int *)sock;
    return 0;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata) {
    const char *id = xmpp_stanza_get_id(stanza);
    (void)conn;
    (void)userdata;
    if (id && strncmp(id, "sm-", 3) == 0) {
        if (ngot < 7)
            snprintf(got[ngot], sizeof got[ngot], "%s", id);
        else
            duplicates = 1;
        ngot++;
    }
    return 1;
}

static int on_sm(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata) {
    const char *name = xmpp_stanza_get_name(stanza);
    (void)conn;
    (void)userdata;
    if (strcmp(name, "enabled") == 0)
        enabled = 1;
    return 1;
}

/* libstrophe handles <resumed/> and the bind result itself, without user handlers: its own
 * debug log says which happened ("Session resumed successfully.", "Bind successful."). */
static int second_connection;

static void on_log(void *userdata, xmpp_log_level_t level, const char *area, const char *msg) {
    (void)userdata;
    if (getenv("STROPHE_DEBUG"))
        fprintf(stderr, "%s %s\n", area, msg);
    (void)level;
    if (!second_connection)
        return;
    if (strstr(msg, "Session resumed successfully"))
        resumed = 1;
    if (strstr(msg, "Bind successful"))
        bound_again = 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                    xmpp_stream_error_t *stream_error, void *userdata) {
    const char *who = userdata;
    (void)error;
    (void)stream_error;
    if (status == XMPP_CONN_CONNECT) {
        if (!xmpp_conn_is_secured(conn)) {
            fprintf(stderr, "%s: connected without TLS\n", who);
            failed = 1;
        }
        connected++;
        if (conn == alice && connected <= 2) {
            xmpp_stanza_t *pres = xmpp_presence_new(ctx);
            xmpp_send(conn, pres);
            xmpp_stanza_release(pres);
        }
    } else if (conn == alice) {
        alice_down = 1;
    }
}

static xmpp_conn_t *make(const char *user, const char *cafile, long flags) {
    char jid[256], pass[64];
    xmpp_conn_t *conn = xmpp_conn_new(ctx);
    snprintf(jid, sizeof jid, "%s@%s/strophe", user, domain);
    snprintf(pass, sizeof pass, "%s-pw", user);
    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, pass);
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_MANDATORY_TLS | flags);
    xmpp_conn_set_cafile(conn, cafile);
    return conn;
}

static void start(xmpp_conn_t *conn, const char *who, const char *host, unsigned short port) {
    if (xmpp_connect_client(conn, host, port, on_conn, (void *)who) != XMPP_EOK) {
        fprintf(stderr, "%s: connect failed\n", who);
        failed = 1;
    }
}

static void alice_handlers(xmpp_conn_t *conn) {
    xmpp_handler_add(conn, on_message, NULL, "message", NULL, NULL);
    xmpp_handler_add(conn, on_sm, XMPP_NS_SM, NULL, NULL, NULL);
    xmpp_conn_set_sockopt_callback(conn, on_sockopt);
}

static void send_to_alice(int n) {
    char id[16], body[8];
    snprintf(id, sizeof id, "sm-%d", n);
    snprintf(body, sizeof body, "%d", n);
    xmpp_stanza_t *msg = xmpp_message_new(ctx, "chat", alice_jid, id);
    xmpp_message_set_body(msg, body);
    xmpp_send(bob, msg);
    xmpp_stanza_release(msg);
}

/* Run the loop until `done` holds or `seconds` pass; 0 on timeout. */
static int run_until(int (*done)(void), int seconds) {
    time_t deadline = time(NULL) + seconds;
    while (!failed && time(NULL) < deadline) {
        if (done && done())
            return 1;
        xmpp_run_once(ctx, 50);
    }
    return done ? done() : 1;
}

static int both_up(void) { return connected >= 2 && enabled; }
static int three(void) { return ngot >= 3; }
static int alice_is_down(void) { return alice_down; }
static int resumed_or_bound(void) { return connected >= 3; }
static int six(void) { return ngot >= 6; }
static int seven(void) { return ngot >= 7; }

static void result(const char *feature, int ok) {
    printf("RESULT %s %s\n", feature, ok ? "pass" : "fail");
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT DOMAIN CAFILE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    unsigned short port = (unsigned short)atoi(argv[2]);
    domain = argv[3];
    snprintf(alice_jid, sizeof alice_jid, "alice@%s/strophe", domain);

    setvbuf(stdout, NULL, _IONBF, 0);
    /* Writes to the cut socket must fail, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    xmpp_initialize();
    static xmpp_log_t log = {on_log, NULL};
    ctx = xmpp_ctx_new(NULL, &log);
    alice = make("alice", argv[4], 0);
    bob = make("bob", argv[4], XMPP_CONN_FLAG_DISABLE_SM);
    alice_handlers(alice);
    start(alice, "alice", host, port);
    start(bob, "bob", host, port);

    int login = run_until(both_up, 20);
    result("login", connected >= 2);
    result("enabled", enabled);
    int resume_ok = 0;
    if (login) {
        for (int n = 0; n < 3; n++)
            send_to_alice(n);
        run_until(three, 10);
        /* The connection dies without </stream>: the socket is shut down under libstrophe. */
        if (alice_fd >= 0)
            shutdown(alice_fd, SHUT_RDWR);
        run_until(alice_is_down, 10);
        xmpp_sm_state_t *state = xmpp_conn_get_sm_state(alice);
        run_until(NULL, 1);
        for (int n = 3; n < 6; n++)
            send_to_alice(n);
        run_until(NULL, 1);
        if (state) {
            xmpp_conn_t *again = make("alice", argv[4], 0);
            alice_handlers(again);
            if (xmpp_conn_set_sm_state(again, state) != XMPP_EOK) {
                fprintf(stderr, "xmpp_conn_set_sm_state failed\n");
                xmpp_free_sm_state(state);
            }
            xmpp_conn_release(alice);
            alice = again;
            second_connection = 1;
            start(alice, "alice", host, port);
            run_until(resumed_or_bound, 10);
            resume_ok = resumed && !bound_again;
            run_until(six, 10);
            send_to_alice(6);
            run_until(seven, 10);
            run_until(NULL, 1);
        } else {
            fprintf(stderr, "no stream-management state to resume\n");
        }
    }
    result("resume", resume_ok);
    int once = ngot == 7 && !duplicates;
    for (int n = 0; once && n < 7; n++) {
        char want[16];
        snprintf(want, sizeof want, "sm-%d", n);
        once = strcmp(got[n], want) == 0;
    }
    if (!once) {
        fprintf(stderr, "received %d:", ngot);
        for (int n = 0; n < ngot && n < 7; n++)
            fprintf(stderr, " %s", got[n]);
        fprintf(stderr, "\n");
    }
    result("exactly-once", once);

    xmpp_disconnect(alice);
    xmpp_disconnect(bob);
    run_until(NULL, 1);
    xmpp_conn_release(alice);
    xmpp_conn_release(bob);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return connected >= 2 && enabled && resume_ok && once && !failed ? 0 : 1;
}
