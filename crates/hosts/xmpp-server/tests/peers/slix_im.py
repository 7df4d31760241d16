"""slixmpp against the xmpp-server example server: what the server advertises and the IM
features behind it.

usage: slix_im.py HOST PORT DOMAIN CAFILE

alice and bob (passwords alice-pw, bob-pw) log in over STARTTLS, trusting exactly our
self-signed certificate. Then:
- features: the stream features list roster versioning and pre-approval (RFC 6121 §2.6,
  §3.4), and disco#info of the server lists jabber:iq:roster;
- rosterver: alice fetches the roster, adds an item; a second alice session that sends the
  version it knows gets an empty result (no <query/>), then the next change as a push only;
- preapproval: bob pre-approves alice (subscribed before any request); alice's subscribe is
  approved by the server without bob seeing a request.

Prints one "RESULT <feature> pass|fail" line per feature and exits 0 only if all passed.
Written for this repository's interop tests.
"""

import asyncio

from slix_common import DOMAIN, client, login, result, run, wait_for

FEATURES = ["features", "disco", "rosterver", "preapproval"]


async def steps():
    loop = asyncio.get_running_loop()
    alice, bob = client("alice", "one", ["xep_0030"]), client("bob", "slix", ["xep_0030"])
    await asyncio.gather(login(alice), login(bob))
    result("features", {"rosterver", "preapproval"} <= alice.features, f"{sorted(alice.features)}")
    info = await wait_for(alice["xep_0030"].get_info(jid=DOMAIN), "disco#info")
    features = info["disco_info"]["features"]
    result("disco", "jabber:iq:roster" in features, f"{features}")

    # Roster versioning.
    await wait_for(alice.get_roster(), "roster get")
    await wait_for(alice.update_roster(f"carol@{DOMAIN}", name="Carol"), "roster set")
    await asyncio.sleep(0.2)  # the push carries the new version
    known = alice.client_roster.version
    second = client("alice", "two", ["xep_0030"])
    second.client_roster.version = known
    pushes = []
    second.add_event_handler(
        "roster_update", lambda iq: iq["type"] == "set" and pushes.append(iq["roster"]["ver"])
    )
    await login(second)
    answer = await wait_for(second.get_roster(), "versioned roster get")
    # slixmpp creates an empty <query/> when it reads the answer: count the items (the
    # whole roster would carry carol).
    empty = len(answer["roster"]["items"]) == 0
    await wait_for(alice.update_roster(f"dave@{DOMAIN}", name="Dave"), "roster set 2")
    await asyncio.sleep(0.3)
    result(
        "rosterver",
        bool(known) and empty and len(pushes) == 1 and pushes[0] != known,
        f"known={known} empty_result={empty} pushes={pushes}",
    )

    # Pre-approval.
    bob_requests = []
    bob.add_event_handler("presence_subscribe", lambda p: bob_requests.append(str(p["from"])))
    approved = loop.create_future()
    alice.add_event_handler(
        "presence_subscribed", lambda p: approved.done() or approved.set_result(str(p["from"]))
    )
    bob_pushes = []

    def on_bob_push(iq):
        if iq["type"] == "set":
            for item in iq.xml.iter("{jabber:iq:roster}item"):
                bob_pushes.append(item.get("approved"))

    bob.add_event_handler("roster_update", on_bob_push)
    await wait_for(bob.get_roster(), "bob roster")
    bob.send_presence(pto=f"alice@{DOMAIN}", ptype="subscribed")
    await asyncio.sleep(0.3)
    flagged = bob_pushes[:1] == ["true"]
    alice.send_presence()  # available: the approval is delivered to available resources
    alice.send_presence(pto=f"bob@{DOMAIN}", ptype="subscribe")
    who = await wait_for(approved, "subscribed at alice")
    await asyncio.sleep(0.3)
    sub = alice.client_roster[f"bob@{DOMAIN}"]["subscription"]
    result(
        "preapproval",
        who == f"bob@{DOMAIN}" and not bob_requests and sub == "to" and flagged,
        f"approved by {who}, bob saw {bob_requests}, bob's item approved={flagged}, alice's subscription={sub}",
    )
    closed = [x.disconnect(wait=2) for x in (alice, bob, second)]
    await wait_for(asyncio.gather(*closed), "disconnect")


if __name__ == "__main__":
    run(steps, FEATURES)
