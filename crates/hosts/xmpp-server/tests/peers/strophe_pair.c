/* Two libstrophe clients through the xmpp-server example server, in one event loop.
 *
 * usage: strophe_pair HOST PORT DOMAIN CAFILE
 *
 * alice and bob (passwords alice-pw, bob-pw) connect with mandatory STARTTLS, trusting exactly
 * the server's self-signed certificate (CAFILE). alice gets her roster and adds bob (roster
 * get + set). Both send initial presence; alice subscribes to
 * bob, bob approves, alice sees bob's presence; alice messages bob, bob replies; both
 * disconnect. Prints "RESULT <feature> pass|fail" lines; exits 0 only if all passed.
 * Written for this repository's interop tests.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strophe.h>

static const char *domain;
static xmpp_ctx_t *ctx;
static xmpp_conn_t *alice, *bob;
static int connected, roster_get_ok, roster_set_ok, login_ok, subscribed, presence_ok, message_at_bob, reply_at_alice,
    disconnected, failed;
static char alice_jid[256], bob_jid[256], bob_bare[256], alice_bare[256];

static void send_presence(xmpp_conn_t *conn, const char *to, const char *type) {
    xmpp_stanza_t *pres = xmpp_presence_new(ctx);
    if (to)
        xmpp_stanza_set_to(pres, to);
    if (type)
        xmpp_stanza_set_type(pres, type);
    xmpp_send(conn, pres);
    xmpp_stanza_release(pres);
}

static xmpp_stanza_t *roster_iq(const char *type, const char *id, const char *item_jid) {
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, type, id);
    xmpp_stanza_t *query = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(query, "query");
    xmpp_stanza_set_ns(query, "jabber:iq:roster");
    if (item_jid) {
        xmpp_stanza_t *item = xmpp_stanza_new(ctx);
        xmpp_stanza_set_name(item, "item");
        xmpp_stanza_set_attribute(item, "jid", item_jid);
        xmpp_stanza_set_attribute(item, "name", "Bob");
        xmpp_stanza_add_child(query, item);
        xmpp_stanza_release(item);
    }
    xmpp_stanza_add_child(iq, query);
    xmpp_stanza_release(query);
    return iq;
}

static int on_roster_set(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata) {
    const char *type = xmpp_stanza_get_type(stanza);
    (void)conn;
    (void)userdata;
    roster_set_ok = type && strcmp(type, "result") == 0;
    return 0;
}

static int on_roster_get(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata) {
    const char *type = xmpp_stanza_get_type(stanza);
    (void)userdata;
    xmpp_stanza_t *query = xmpp_stanza_get_child_by_ns(stanza, "jabber:iq:roster");
    roster_get_ok = type && strcmp(type, "result") == 0 && query != NULL;
    if (roster_get_ok) {
        xmpp_stanza_t *set = roster_iq("set", "r2", bob_bare);
        xmpp_id_handler_add(conn, on_roster_set, "r2", NULL);
        xmpp_send(conn, set);
        xmpp_stanza_release(set);
    }
    return 0;
}

static int starts_with(const char *s, const char *prefix) {
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata) {
    const char *who = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    (void)conn;
    if (strcmp(who, "bob") == 0 && type && strcmp(type, "subscribe") == 0 &&
        from && strcmp(from, alice_bare) == 0) {
        send_presence(bob, alice_bare, "subscribed");
    }
    if (strcmp(who, "alice") == 0) {
        if (type && strcmp(type, "subscribed") == 0 && from && strcmp(from, bob_bare) == 0) {
            subscribed = 1;
        }
        if (!type && starts_with(from, bob_bare) && from[strlen(bob_bare)] == '/') {
            presence_ok = 1;
            /* bob is visible: now the messages */
            xmpp_stanza_t *msg = xmpp_message_new(ctx, "chat", bob_bare, "m1");
            xmpp_message_set_body(msg, "hello bob");
            xmpp_send(alice, msg);
            xmpp_stanza_release(msg);
        }
    }
    return 1;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata) {
    const char *who = userdata;
    const char *from = xmpp_stanza_get_from(stanza);
    char *body = xmpp_message_get_body(stanza);
    (void)conn;
    if (body && strcmp(who, "bob") == 0 && strcmp(body, "hello bob") == 0 && from &&
        strcmp(from, alice_jid) == 0) {
        message_at_bob = 1;
        xmpp_stanza_t *reply = xmpp_message_new(ctx, "chat", from, "m2");
        xmpp_message_set_body(reply, "hello alice");
        xmpp_send(bob, reply);
        xmpp_stanza_release(reply);
    }
    if (body && strcmp(who, "alice") == 0 && strcmp(body, "hello alice") == 0 && from &&
        strcmp(from, bob_jid) == 0) {
        reply_at_alice = 1;
        xmpp_disconnect(alice);
        xmpp_disconnect(bob);
    }
    if (body)
        xmpp_free(ctx, body);
    return 1;
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
        xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, userdata);
        xmpp_handler_add(conn, on_message, NULL, "message", NULL, userdata);
        send_presence(conn, NULL, NULL);
        if (strcmp(who, "alice") == 0) {
            xmpp_stanza_t *get = roster_iq("get", "r1", NULL);
            xmpp_id_handler_add(conn, on_roster_get, "r1", NULL);
            xmpp_send(conn, get);
            xmpp_stanza_release(get);
        }
        if (connected == 2) {
            login_ok = !failed;
            send_presence(alice, bob_bare, "subscribe");
        }
    } else {
        if (status != XMPP_CONN_DISCONNECT || connected < 2)
            failed = 1;
        disconnected++;
        if (disconnected == 2 || failed)
            xmpp_stop(ctx);
    }
}

static xmpp_conn_t *make(const char *user, const char *host, unsigned short port,
                         const char *cafile, char *jid_out) {
    char jid[256], pass[64];
    xmpp_conn_t *conn = xmpp_conn_new(ctx);
    snprintf(jid, sizeof jid, "%s@%s/strophe", user, domain);
    snprintf(jid_out, 256, "%s", jid);
    snprintf(pass, sizeof pass, "%s-pw", user);
    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, pass);
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_MANDATORY_TLS);
    xmpp_conn_set_cafile(conn, cafile);
    if (xmpp_connect_client(conn, host, port, on_conn, (void *)user) != XMPP_EOK) {
        fprintf(stderr, "%s: connect failed\n", user);
        failed = 1;
    }
    return conn;
}

static void result(const char *feature, int ok) {
    printf("RESULT %s %s\n", feature, ok ? "pass" : "fail");
}

int main(int argc, char **argv) {
    /* As any program using libstrophe must: a write to a connection the server already
     * closed (its TLS close_notify after the stream closed) is EPIPE, not death by SIGPIPE.
     * Line-buffered, so RESULT lines written before any crash still reach the test. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT DOMAIN CAFILE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    unsigned short port = (unsigned short)atoi(argv[2]);
    domain = argv[3];
    snprintf(alice_bare, sizeof alice_bare, "alice@%s", domain);
    snprintf(bob_bare, sizeof bob_bare, "bob@%s", domain);

    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    alice = make("alice", host, port, argv[4], alice_jid);
    bob = make("bob", host, port, argv[4], bob_jid);

    time_t deadline = time(NULL) + 20;
    while (!failed && disconnected < 2 && time(NULL) < deadline)
        xmpp_run_once(ctx, 100);

    result("login", login_ok);
    result("roster", roster_get_ok && roster_set_ok);
    result("subscription", subscribed);
    result("presence", presence_ok);
    result("message", message_at_bob && reply_at_alice);
    result("close", disconnected == 2 && !failed);
    int ok = login_ok && roster_get_ok && roster_set_ok && subscribed && presence_ok && message_at_bob && reply_at_alice &&
             disconnected == 2 && !failed;

    xmpp_conn_release(alice);
    xmpp_conn_release(bob);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return ok ? 0 : 1;
}
