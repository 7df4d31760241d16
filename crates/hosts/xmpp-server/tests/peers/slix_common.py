"""What the slixmpp peer scripts of this directory share: the RESULT lines, bounded waits,
login, and the run wrapper. Written for this repository's interop tests."""

import asyncio
import logging
import sys

import slixmpp

HOST, PORT, DOMAIN, CAFILE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
results = {}


def result(feature, ok, detail=""):
    """Print one `RESULT <feature> pass|fail` line, once per feature."""
    if feature not in results:
        results[feature] = ok
        print(f"RESULT {feature} {'pass' if ok else 'fail'} {detail}".rstrip(), flush=True)


def client(user, resource, plugins=()):
    """A client for USER (password USER-pw) that trusts exactly our certificate."""
    xmpp = slixmpp.ClientXMPP(f"{user}@{DOMAIN}/{resource}", f"{user}-pw")
    xmpp.ca_certs = CAFILE
    xmpp.auto_authorize = None
    xmpp.auto_subscribe = False
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    return xmpp


async def wait_for(future, what, timeout=10):
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"timed out waiting for {what}")


async def login(xmpp):
    """Connect over STARTTLS and wait for the bound JID."""
    loop = asyncio.get_running_loop()
    bound = loop.create_future()
    xmpp.add_event_handler("session_bind", lambda _jid: bound.done() or bound.set_result(True))
    xmpp.connect((HOST, PORT))
    await wait_for(bound, f"login of {xmpp.boundjid}", 20)


def run(steps, features):
    """Run the coroutine function STEPS, report the step that failed, mark every feature not
    reached as failed, and exit 0 only if all passed."""

    async def main():
        try:
            await steps()
        except Exception as error:  # report which step failed
            print(f"ERROR {error!r}", flush=True)
        for feature in features:
            result(feature, False, "not reached")
        return all(results.values())

    logging.basicConfig(level=logging.ERROR)
    sys.exit(0 if asyncio.run(main()) else 1)
