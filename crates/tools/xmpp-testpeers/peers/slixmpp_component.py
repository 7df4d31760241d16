"""An XEP-0114 component written with slixmpp's ComponentXMPP, for this repository's tests.

usage: slixmpp_component.py HOST PORT COMPONENT SECRET USER

Connects to HOST:PORT as the component COMPONENT (e.g. comp.localhost) with the shared SECRET
(plain TCP: the component protocol has no TLS). After the handshake it sends a chat message
from bot@COMPONENT to USER (a bare JID, e.g. alice@localhost) with the body
"hello from slixmpp". It then waits for a message from one of USER's resources, prints it as

    GOT from=<from> to=<to> body=<body>

and answers it from the address it was sent to, with the body "echo: <body>". Then it closes
the stream. Prints one "RESULT <feature> pass|fail" line per feature (handshake, message,
close) and exits 0 only if all passed. Every wait is bounded.
"""

import asyncio
import logging
import sys

from slixmpp import ComponentXMPP

HOST, PORT, COMPONENT, SECRET, USER = (
    sys.argv[1],
    int(sys.argv[2]),
    sys.argv[3],
    sys.argv[4],
    sys.argv[5],
)
FEATURES = ["handshake", "message", "close"]
results = {}


def result(feature, ok, detail=""):
    if feature not in results:
        results[feature] = ok
        print(f"RESULT {feature} {'pass' if ok else 'fail'} {detail}".rstrip(), flush=True)


async def wait_for(future, what, timeout=10):
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"timed out waiting for {what}")


async def main():
    loop = asyncio.get_running_loop()
    xmpp = ComponentXMPP(COMPONENT, SECRET, HOST, PORT)
    started = loop.create_future()
    got = loop.create_future()
    ended = loop.create_future()

    def done(fut, value=True):
        if not fut.done():
            fut.set_result(value)

    def on_message(msg):
        sender = msg["from"]
        if sender.bare == USER and sender.resource:
            done(got, msg)

    xmpp.add_event_handler("session_start", lambda _: done(started))
    xmpp.add_event_handler("message", on_message)
    xmpp.add_event_handler("disconnected", lambda _: done(ended))
    # A stream error (wrong secret, conflict, ...) ends the stream before session_start.
    xmpp.add_event_handler("stream_error", lambda e: print(f"stream error: {e}", flush=True))
    try:
        xmpp.connect()
        await wait_for(started, "the handshake")
        result("handshake", True)
        xmpp.send_message(
            mto=USER, mfrom=f"bot@{COMPONENT}", mbody="hello from slixmpp", mtype="chat"
        )
        msg = await wait_for(got, f"a message from {USER}")
        body = msg["body"]
        print(f"GOT from={msg['from']} to={msg['to']} body={body}", flush=True)
        xmpp.send_message(
            mto=msg["from"], mfrom=msg["to"], mbody=f"echo: {body}", mtype="chat"
        )
        result("message", True)
        xmpp.disconnect(wait=2)
        await wait_for(ended, "the end of the stream")
        result("close", True)
    except Exception as error:  # noqa: BLE001 - reported as the failing feature
        print(f"error: {error}", file=sys.stderr, flush=True)
    for feature in FEATURES:
        result(feature, False)
    sys.exit(0 if all(results.get(f) for f in FEATURES) else 1)


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main())
