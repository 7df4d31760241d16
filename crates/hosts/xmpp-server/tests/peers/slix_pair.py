"""Two slixmpp clients through the xmpp-server example server.

usage: slix_pair.py HOST PORT DOMAIN CAFILE MECHANISM|AUTO [direct]

alice and bob (passwords alice-pw, bob-pw) log in with MECHANISM only (slixmpp's
`sasl_mech` restriction; AUTO lets slixmpp choose), over STARTTLS, trusting exactly our self-signed certificate.
Then: roster get on both, alice adds bob (roster set + push), alice subscribes to bob and bob
approves, bob's presence reaches alice, a message each way, clean disconnect.

Prints one "RESULT <feature> pass|fail" line per feature and exits 0 only if all passed.
Written for this repository's interop tests.
"""

import asyncio
import logging
import sys

import slixmpp

HOST, PORT, DOMAIN, CAFILE, MECH = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
DIRECT_TLS = len(sys.argv) > 6 and sys.argv[6] == "direct"  # XEP-0368: TLS first, no STARTTLS
FEATURES = ["login", "roster", "subscription", "presence", "message", "close"]
results = {}


def result(feature, ok, detail=""):
    if feature not in results:
        results[feature] = ok
        print(f"RESULT {feature} {'pass' if ok else 'fail'} {detail}".rstrip(), flush=True)


def client(user):
    mech = None if MECH == "AUTO" else MECH
    xmpp = slixmpp.ClientXMPP(f"{user}@{DOMAIN}/slix", f"{user}-pw", sasl_mech=mech)
    xmpp.ca_certs = CAFILE
    xmpp.auto_authorize = None  # we answer subscription requests ourselves
    xmpp.auto_subscribe = False
    xmpp.register_plugin("xep_0199")
    return xmpp


async def wait_for(future, what, timeout=10):
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"timed out waiting for {what}")


async def main():
    loop = asyncio.get_running_loop()
    alice, bob = client("alice"), client("bob")
    started = {"alice": loop.create_future(), "bob": loop.create_future()}
    failed = loop.create_future()
    bob_request = loop.create_future()
    alice_subscribed = loop.create_future()
    alice_sees_bob = loop.create_future()
    bob_got_message = loop.create_future()
    alice_got_reply = loop.create_future()
    alice_push = loop.create_future()

    def done(fut, value=True):
        if not fut.done():
            fut.set_result(value)

    for name, xmpp in (("alice", alice), ("bob", bob)):
        xmpp.add_event_handler("session_bind", lambda _jid, n=name: done(started[n]))
        xmpp.add_event_handler(
            "failed_auth",
            lambda e, n=name: failed.done() or failed.set_result(f"{n}: auth failed ({e['condition']})"),
        )

    def on_bob_subscribe(pres):
        if pres["from"].bare == f"alice@{DOMAIN}":
            done(bob_request, str(pres["from"]))
            bob.send_presence(pto=pres["from"].bare, ptype="subscribed")

    bob.add_event_handler("presence_subscribe", on_bob_subscribe)
    alice.add_event_handler(
        "presence_subscribed", lambda pres: done(alice_subscribed, str(pres["from"]))
    )

    def on_alice_available(pres):
        if pres["from"].bare == f"bob@{DOMAIN}":
            done(alice_sees_bob, (str(pres["from"]), pres["show"], pres["status"]))

    alice.add_event_handler("got_online", on_alice_available)
    alice.add_event_handler("changed_status", on_alice_available)

    def on_roster_push(iq):
        # Also fired for the roster get result: wait for the push that carries bob.
        items = {str(k): v["subscription"] for k, v in iq["roster"]["items"].items()}
        if f"bob@{DOMAIN}" in items and iq["type"] == "set":
            done(alice_push, items)

    alice.add_event_handler("roster_update", on_roster_push)

    def on_bob_message(msg):
        if msg["type"] in ("chat", "normal"):
            done(bob_got_message, (str(msg["from"]), msg["body"]))
            bob.send_message(mto=msg["from"], mbody="hello alice", mtype="chat")

    def on_alice_message(msg):
        if msg["type"] in ("chat", "normal"):
            done(alice_got_reply, (str(msg["from"]), msg["body"]))

    bob.add_event_handler("message", on_bob_message)
    alice.add_event_handler("message", on_alice_message)

    for xmpp in (alice, bob):
        if DIRECT_TLS:
            xmpp.connect((HOST, PORT), use_ssl=True, force_starttls=False, disable_starttls=True)
        else:
            xmpp.connect((HOST, PORT))

    try:
        waiting = asyncio.gather(started["alice"], started["bob"])
        first = await wait_for(
            asyncio.wait([waiting, failed], return_when=asyncio.FIRST_COMPLETED), "login", 20
        )
        if failed.done():
            raise RuntimeError(failed.result())
        used = {x.boundjid.bare: x["feature_mechanisms"].mech.name for x in (alice, bob)}
        ok = MECH == "AUTO" or all(m == MECH for m in used.values())
        result("login", ok, f"{used}")

        # Roster: both fetch, alice adds bob.
        for xmpp in (alice, bob):
            await wait_for(xmpp.get_roster(), "roster get")
        await wait_for(alice.update_roster(f"bob@{DOMAIN}", name="Bob", groups=["Friends"]), "roster set")
        push = await wait_for(alice_push, "roster push")
        result("roster", push.get(f"bob@{DOMAIN}") == "none", f"push={push}")

        # Presence on, then the subscription handshake.
        bob.send_presence(pshow="away", pstatus="interop")
        alice.send_presence()
        alice.send_presence(pto=f"bob@{DOMAIN}", ptype="subscribe")
        asker = await wait_for(bob_request, "subscribe at bob")
        approver = await wait_for(alice_subscribed, "subscribed at alice")
        sub = alice.client_roster[f"bob@{DOMAIN}"]["subscription"]
        result(
            "subscription",
            asker == f"alice@{DOMAIN}" and approver == f"bob@{DOMAIN}",
            f"request from {asker}, approved by {approver}, roster says {sub}",
        )
        seen = await wait_for(alice_sees_bob, "bob's presence at alice")
        result("presence", seen[0] == f"bob@{DOMAIN}/slix" and seen[1] == "away", f"{seen}")

        alice.send_message(mto=f"bob@{DOMAIN}", mbody="hello bob", mtype="chat")
        got = await wait_for(bob_got_message, "message at bob")
        reply = await wait_for(alice_got_reply, "reply at alice")
        result(
            "message",
            got == (f"alice@{DOMAIN}/slix", "hello bob") and reply == (f"bob@{DOMAIN}/slix", "hello alice"),
            f"{got} / {reply}",
        )

        closed = [x.disconnect(wait=2) for x in (alice, bob)]
        await wait_for(asyncio.gather(*closed), "disconnect")
        result("close", True)
    except Exception as error:  # report which step failed
        print(f"ERROR {error}", flush=True)
    for feature in FEATURES:
        result(feature, False, "not reached")
    return all(results.values())


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    ok = asyncio.run(main())
    sys.exit(0 if ok else 1)
