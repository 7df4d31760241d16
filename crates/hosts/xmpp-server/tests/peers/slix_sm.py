"""XEP-0198 resumption of a slixmpp client against the xmpp-server example server.

usage: slix_sm.py HOST PORT DOMAIN CAFILE

alice (stream management with resumption, slixmpp's xep_0198) and bob (without) log in over
STARTTLS. bob sends alice three messages; alice's TCP connection is then aborted without
</stream> while bob sends three more; alice reconnects and resumes; bob sends a seventh.
alice must receive all seven exactly once, in order.

Prints one "RESULT <feature> pass|fail" line per feature (login, enabled, resume,
exactly-once) and exits 0 only if all passed. Written for this repository's interop tests.
"""

import asyncio
import sys

import slixmpp

HOST, PORT, DOMAIN, CAFILE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
FEATURES = ["login", "enabled", "resume", "exactly-once"]
results = {}


def result(feature, ok, detail=""):
    if feature not in results:
        results[feature] = ok
        print(f"RESULT {feature} {'pass' if ok else 'fail'} {detail}".rstrip(), flush=True)


def client(user, sm):
    xmpp = slixmpp.ClientXMPP(f"{user}@{DOMAIN}/slix", f"{user}-pw")
    xmpp.ca_certs = CAFILE
    if sm:
        xmpp.register_plugin("xep_0198")
    return xmpp


async def wait_for(future, what, timeout=10):
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"timed out waiting for {what}")


async def main():
    loop = asyncio.get_running_loop()
    alice, bob = client("alice", True), client("bob", False)
    started = {"alice": loop.create_future(), "bob": loop.create_future()}
    enabled = loop.create_future()
    got = []
    counts = {}

    def done(fut, value=True):
        if not fut.done():
            fut.set_result(value)

    def count_reached(n):
        fut = loop.create_future()
        counts[n] = fut
        if len(got) >= n:
            done(fut)
        return fut

    def on_message(msg):
        if msg["id"].startswith("sm-"):
            got.append(msg["id"])
            for n, fut in counts.items():
                if len(got) >= n:
                    done(fut)

    alice.add_event_handler("message", on_message)
    alice.add_event_handler("sm_enabled", lambda _s: done(enabled))
    for name, xmpp in (("alice", alice), ("bob", bob)):
        xmpp.add_event_handler("session_start", lambda _e, n=name: done(started[n]))
        xmpp.connect((HOST, PORT))

    def send(n):
        msg = bob.make_message(mto=f"alice@{DOMAIN}/slix", mbody=str(n), mtype="chat")
        msg["id"] = f"sm-{n}"
        msg.send()

    try:
        await wait_for(asyncio.gather(started["alice"], started["bob"]), "login", 20)
        result("login", True)
        await wait_for(enabled, "sm_enabled")
        result("enabled", True)
        alice.send_presence()
        for n in range(3):
            send(n)
        await wait_for(count_reached(3), "the first three messages")

        # The connection dies without </stream>.
        gone = loop.create_future()
        alice.add_event_handler("disconnected", lambda _e: done(gone), disposable=True)
        alice.abort()
        await wait_for(gone, "disconnected")
        await asyncio.sleep(0.5)
        for n in range(3, 6):
            send(n)
        await asyncio.sleep(0.5)

        resumed = loop.create_future()
        alice.add_event_handler("session_resumed", lambda _s: done(resumed, True))
        alice.add_event_handler("session_start", lambda _e: done(resumed, False))
        alice.connect((HOST, PORT))
        ok = await wait_for(resumed, "resumption")
        result("resume", ok)
        await wait_for(count_reached(6), "the messages sent while away")
        send(6)
        await wait_for(count_reached(7), "the last message")
        await asyncio.sleep(0.3)
        want = [f"sm-{n}" for n in range(7)]
        result("exactly-once", got == want, f"{got}")
    except Exception as e:  # noqa: BLE001 - report, then fail below
        print(f"error: {e}; received {got}", file=sys.stderr, flush=True)
    finally:
        for xmpp in (alice, bob):
            await xmpp.disconnect(wait=2)
    for feature in FEATURES:
        result(feature, False, "not reached")
    sys.exit(0 if all(results.values()) else 1)


asyncio.run(main())
