#!/usr/bin/env python3
"""Writes the small seed corpora for the stateful stream targets (run from fuzz/).

Input format of client_stream / server_stream: byte 0 picks the negotiation state (low
nibble) and options; then chunks of `len` (low 7 bits; top bit: advance the clock a minute
first) followed by that many bytes. Each seed is the next message a real peer would send
in that state, cut into chunks of at most 127 bytes, so mutations start from valid traffic.
Sources: the RFC 6120 §9.1 example (testdata/transcripts/rfc6120-9.1-c2s.txt).
"""
import os

def chunks(data):
    out = bytearray()
    for i in range(0, len(data), 127):
        piece = data[i:i + 127]
        out.append(len(piece))
        out += piece
    return bytes(out)

def write(target, name, state, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(bytes([state]) + chunks(data))

SERVER_NEXT = {
    0: b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='im.example.com' version='1.0'>",
    1: b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    2: b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1meXprbytkMmxiYkZnT05Sdjlxa3hkYXdM</auth>",
    3: b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdldWczdqLHA9djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ==</response><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    4: b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>",
    5: b"<message to='romeo@example.net' type='chat'><body>Art thou not Romeo?</body></message><iq type='result' id='x'/></stream:stream>",
}
for state, data in SERVER_NEXT.items():
    write("server_stream", f"state{state}", state, data)

HDR = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='im.example.com' id='s1' version='1.0'>"
CLIENT_NEXT = {
    0: HDR + b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    1: b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    2: b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    3: b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    4: b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
    5: b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>",
    6: b"<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@im.example.com/balcony</jid></bind></iq>",
    7: b"<message from='romeo@example.net/orchard' type='chat'><body>Neither, fair saint</body></message><stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example:5222</see-other-host></stream:error>",
}
for state, data in CLIENT_NEXT.items():
    write("client_stream", f"state{state}", state, data)

# jid_parse: a few addresses, valid and invalid (RFC 7622 examples).
for i, jid in enumerate([b"juliet@example.com/balcony", b"example.com", b"\xe2\x99\x9a@example.com/foo@bar",
                         b"juliet@[::1]/r", b"@example.com", b"a@b@c/d"]):
    os.makedirs("corpus/jid_parse", exist_ok=True)
    open(f"corpus/jid_parse/seed{i}", "wb").write(jid)

# xml_stream: the RFC 6120 §9.1 client stream, with and without the built-in header.
body = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='set' id='tn281v37'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><message to='romeo@example.net' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message></stream:stream>"
os.makedirs("corpus/xml_stream", exist_ok=True)
open("corpus/xml_stream/with-header", "wb").write(b"\x00" + body)
open("corpus/xml_stream/own-header", "wb").write(b"\x01" + SERVER_NEXT[0] + body)

# sasl_*: a selector byte, then messages (RFC 5802 §5 SCRAM-SHA-1 exchange, PLAIN).
os.makedirs("corpus/sasl_server", exist_ok=True)
os.makedirs("corpus/sasl_client", exist_ok=True)
for sel in range(4):
    open(f"corpus/sasl_server/scram{sel}", "wb").write(bytes([sel]) + b"n,,n=juliet,r=fyko+d2lbbFgONRv9qkxdawL")
    open(f"corpus/sasl_client/scram{sel}", "wb").write(bytes([sel]) + b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
open("corpus/sasl_server/plain", "wb").write(b"\x07\x00juliet\x00pencil")

# im_server: a short program of arbitrary operations.
os.makedirs("corpus/im_server", exist_ok=True)
for i in range(3):
    open(f"corpus/im_server/seed{i}", "wb").write(bytes(range(i, 64 + i)))

# component_server: byte 0 = state (low 2 bits: fresh, header received, handshake done) and
# options (0x04 the backend reports the component connected: conflict; 0x08 a 1 KiB output
# bound; 0x10 the host stops polling after inputs); then chunks as above, at most 126 bytes
# (a length of 0x7f has the host send the component a stanza first). The server's entropy
# seed is fixed at 2, so its stream id is always the same: SplitMix64(2), 20 bytes, base64,
# recomputed here, and the handshake is hex SHA-1(id + secret) (XEP-0114 §3).
import base64, hashlib

def splitmix64(seed, n):
    mask, out, state = (1 << 64) - 1, b"", seed
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return out[:n]

STREAM_ID = base64.b64encode(splitmix64(2, 20)).decode()

def handshake(secret, upper=False):
    digest = hashlib.sha1((STREAM_ID + secret).encode()).hexdigest()
    return f"<handshake>{digest.upper() if upper else digest}</handshake>".encode()

def comp_chunks(data, size=126):
    out = bytearray()
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out.append(len(piece))
        out += piece
    return bytes(out)

def comp(name, selector, data, raw=b""):
    os.makedirs("corpus/component_server", exist_ok=True)
    with open(f"corpus/component_server/{name}", "wb") as f:
        f.write(bytes([selector]) + comp_chunks(data) + raw)

C_HDR = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' to='comp.example.com'>"
C_STANZAS = (b"<message from='bot@comp.example.com' to='juliet@example.com' type='chat'><body>hi</body></message>"
             b"<presence from='rooms.comp.example.com' to='juliet@example.com/balcony'/>"
             b"<iq from='comp.example.com' to='example.com' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
C_BAD = {
    "bad-invalid-to": b"<message from='bot@comp.example.com' to='a@b@c'><body>x</body></message>",
    "bad-invalid-from": b"<message from='romeo@example.com' to='juliet@example.com'/>",
    "bad-missing-to": b"<presence from='comp.example.com'/>",
    "bad-second-handshake": handshake("s3cr3t"),
    "bad-nonza": b"<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='1'/>",
}
comp("session", 0, C_HDR + handshake("s3cr3t") + C_STANZAS + b"</stream:stream>")
comp("session-upper", 0, C_HDR + handshake("s3cr3t", upper=True) + C_STANZAS)
comp("session-empty-secret", 0, C_HDR.replace(b"comp.example.com", b"empty.example.com") + handshake(""))
comp("conflict", 0x04, C_HDR + handshake("s3cr3t"))
comp("bad-secret", 0, C_HDR + handshake("not the secret"))
comp("bad-empty-handshake", 0, C_HDR + b"<handshake/>")
comp("bad-long-handshake", 0, C_HDR + b"<handshake>" + b"a" * 300 + b"</handshake>")
comp("bad-handshake-first", 0, b"<handshake>00</handshake>" + C_HDR)
comp("bad-unknown-domain", 0, C_HDR.replace(b"comp.example.com", b"other.example.com"))
comp("bad-full-jid-to", 0, C_HDR.replace(b"comp.example.com", b"bot@comp.example.com/r"))
comp("bad-client-namespace", 0, C_HDR.replace(b"jabber:component:accept", b"jabber:client"))
comp("bad-stanza-first", 1, C_STANZAS)
comp("state1-handshake", 1, handshake("s3cr3t") + C_STANZAS)
comp("state2-stanzas", 2, C_STANZAS + b"</stream:stream>")
for name, data in C_BAD.items():
    comp(f"state2-{name}", 2, data + C_STANZAS)
# A host that stops polling, a small output bound and a flood of stanzas the server answers
# with an error: the output bound closes the stream (resource-constraint).
comp("state2-flood-unpolled", 2 | 0x08 | 0x10, C_BAD["bad-invalid-to"] * 40)
# The host sends the component stanzas (0x7f markers) and time passes (0x80: keepalives,
# the negotiation deadline before the handshake).
comp("state2-host-sends", 2, b"", bytes([0x7f]) + C_STANZAS[:127] + bytes([0xff, 0x7f, 0x81, 0x20]))
comp("timeout-before-handshake", 1, b"", bytes([0x80, 0x81, 0x20]))
comp("transport-closed", 2, C_STANZAS[:60], b"\x00")
