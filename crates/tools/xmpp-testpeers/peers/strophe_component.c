/* An XEP-0114 component written with libstrophe's xmpp_connect_component, for this
 * repository's tests.
 *
 * usage: strophe_component HOST PORT COMPONENT SECRET USER
 *
 * Connects to HOST:PORT as the component COMPONENT (e.g. comp.localhost) with the shared
 * SECRET (plain TCP: the component protocol has no TLS). After the handshake it sends a chat
 * message from bot@COMPONENT to USER (a bare JID, e.g. alice@localhost) with the body
 * "hello from libstrophe". It then waits for a message from one of USER's resources, prints
 * it as
 *
 *     GOT from=<from> to=<to> body=<body>
 *
 * and answers it from the address it was sent to, with the body "echo: <body>". Then it
 * closes the stream. Prints "RESULT <feature> pass|fail" lines (handshake, message, close) and
 * exits 0 only if all passed. Gives up after 20 seconds.
 *
 * Build: cc strophe_component.c $(pkg-config --cflags --libs libstrophe)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strophe.h>

static const char *component, *user;
static xmpp_ctx_t *ctx;
static int handshake_ok, message_ok, closed, failed;

static void send_message(xmpp_conn_t *conn, const char *from, const char *to, const char *body) {
    xmpp_stanza_t *msg = xmpp_message_new(ctx, "chat", to, NULL);
    xmpp_stanza_set_from(msg, from);
    xmpp_message_set_body(msg, body);
    xmpp_send(conn, msg);
    xmpp_stanza_release(msg);
}

/* Whether `from` is a full JID of USER: "USER/resource". */
static int from_user_resource(const char *from) {
    size_t n = strlen(user);
    return from && strncmp(from, user, n) == 0 && from[n] == '/' && from[n + 1] != '\0';
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata) {
    const char *from = xmpp_stanza_get_from(stanza);
    const char *to = xmpp_stanza_get_to(stanza);
    char *body = xmpp_message_get_body(stanza);
    (void)userdata;
    if (!message_ok && body && to && from_user_resource(from)) {
        char echo[1024];
        printf("GOT from=%s to=%s body=%s\n", from, to, body);
        fflush(stdout);
        snprintf(echo, sizeof echo, "echo: %s", body);
        send_message(conn, to, from, echo);
        message_ok = 1;
        xmpp_disconnect(conn);
    }
    if (body)
        xmpp_free(ctx, body);
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                    xmpp_stream_error_t *stream_error, void *userdata) {
    (void)userdata;
    if (status == XMPP_CONN_CONNECT) {
        char bot[512];
        handshake_ok = 1;
        xmpp_handler_add(conn, on_message, NULL, "message", NULL, NULL);
        snprintf(bot, sizeof bot, "bot@%s", component);
        send_message(conn, bot, user, "hello from libstrophe");
    } else {
        if (stream_error)
            fprintf(stderr, "stream error (type %d)\n", (int)stream_error->type);
        if (status != XMPP_CONN_DISCONNECT || error || !message_ok)
            failed = 1;
        closed = 1;
        xmpp_stop(ctx);
    }
}

static void result(const char *feature, int ok) {
    printf("RESULT %s %s\n", feature, ok ? "pass" : "fail");
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT COMPONENT SECRET USER\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    unsigned short port = (unsigned short)atoi(argv[2]);
    component = argv[3];
    user = argv[5];

    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    xmpp_conn_t *conn = xmpp_conn_new(ctx);
    xmpp_conn_set_jid(conn, component);
    xmpp_conn_set_pass(conn, argv[4]);
    if (xmpp_connect_component(conn, host, port, on_conn, NULL) != XMPP_EOK) {
        fprintf(stderr, "connect failed\n");
        failed = 1;
    }
    /* Work around a libstrophe 0.12 bug: only xmpp_connect_client allocates the
     * stream-management state, yet every xmpp_send and the disconnect path read it, so a
     * component connection crashes (SIGSEGV reading address 0xc) on its first stanza, against
     * Prosody as against our server. xmpp_connect_client allocates that state before it
     * checks the connection's state; on a connection already connecting it then returns
     * XMPP_EINVOP and does nothing else. */
    if (!failed && xmpp_connect_client(conn, host, port, on_conn, NULL) != XMPP_EINVOP) {
        fprintf(stderr, "the stream-management workaround did not apply\n");
        failed = 1;
    }

    time_t deadline = time(NULL) + 20;
    while (!failed && !closed && time(NULL) < deadline)
        xmpp_run_once(ctx, 100);

    result("handshake", handshake_ok);
    result("message", message_ok);
    result("close", closed && !failed);
    int ok = handshake_ok && message_ok && closed && !failed;

    xmpp_conn_release(conn);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return ok ? 0 : 1;
}
