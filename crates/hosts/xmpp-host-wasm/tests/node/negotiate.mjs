// Drives the xmpp-stream machines inside a WebAssembly module by hand, from plain Node.js
// (no npm packages, no generated glue): a ClientStream and a ServerStream live in one
// instance of xmpp_host_wasm.wasm and this script carries every byte between them.
//
//   node negotiate.mjs <path/to/xmpp_host_wasm.wasm> [transcript.client.txt|transcript.server.txt ...]
//
// Sessions, each through STARTTLS (fake TLS: the script calls tls_established with 32 bytes
// of 0x5a, as the Rust Pair harness does), SASL, bind, one message each way and the closing
// handshake: SCRAM-SHA-256 (full transcript printed), PLAIN over TLS, SCRAM-SHA-256-PLUS over
// the fake tls-exporter binding, and SCRAM-SHA-256 again fed in 3-byte chunks (same events);
// and one on direct TLS (no STARTTLS; the default offer, which settles on SCRAM-SHA-512-PLUS).
// Then a negotiation deadline fired through xw_timeout, a wrong password that must end in
// not-authorized, and garbage input that must be a protocol error, not a trap.
// Transcript files given after the module are replayed inside the module too (role from the
// file name). Prints PASS and exits 0, or prints FAIL and exits 1.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function fail(message) {
  throw new Error(message);
}

function expect(condition, message) {
  if (!condition) fail(message);
}

/** A thin, typed layer over the xw_* exports. */
class Module {
  constructor(instance) {
    this.x = instance.exports;
    for (const name of ['memory', 'xw_input', 'xw_output', 'xw_client_new', 'xw_feed', 'xw_take_events']) {
      expect(name in this.x, `the module does not export ${name}`);
    }
  }

  /** Copy bytes into the module's input buffer; returns their length for the next call. */
  put(bytes) {
    const ptr = this.x.xw_input(bytes.length);
    expect(ptr !== 0, `input of ${bytes.length} bytes refused`);
    // Views must be made after each call: a call may grow memory and detach older views.
    new Uint8Array(this.x.memory.buffer, ptr, bytes.length).set(bytes);
    return bytes.length;
  }

  putText(text) {
    return this.put(encoder.encode(text));
  }

  /** The first `len` bytes of the output buffer, copied out. */
  output(len) {
    const ptr = this.x.xw_output();
    return new Uint8Array(this.x.memory.buffer, ptr, len).slice();
  }

  lastError() {
    return decoder.decode(this.output(this.x.xw_last_error()));
  }

  /** Throws with the module's error text when a call returned a negative code. */
  check(rc, what) {
    if (rc < 0) fail(`${what} failed (${rc}): ${this.lastError()}`);
    return rc;
  }

  client(seed, setup) {
    return this.check(this.x.xw_client_new(BigInt(seed), this.putText(setup)), 'client_new');
  }

  server(seed, setup) {
    return this.check(this.x.xw_server_new(BigInt(seed), this.putText(setup)), 'server_new');
  }

  takeBytes(h) {
    return this.output(this.check(this.x.xw_take_bytes(h), 'take_bytes'));
  }

  takeEvents(h) {
    return JSON.parse(decoder.decode(this.output(this.check(this.x.xw_take_events(h), 'take_events'))));
  }
}

const FAKE_TLS_EXPORTER = new Uint8Array(32).fill(0x5a);
const KIND_TLS_EXPORTER = 1;

/**
 * One client/server session. `print` receives the readable transcript lines. Returns the
 * events each side emitted.
 */
function session(m, { mechanism, password = 'r0m30myr0m30', print, exchange = true, chunk = 0, direct = false }) {
  let now = 0n;
  const client = m.client(1, `jid=juliet@im.example.com\npassword=${password}\nresource=balcony`);
  const offer = mechanism ? `\nmechanisms=${mechanism}` : '';
  const server = m.server(2, `domain=im.example.com\nuser=juliet r0m30myr0m30${offer}`);
  const sides = [
    { name: 'C', handle: client, events: [], wire: [] },
    { name: 'S', handle: server, events: [], wire: [] },
  ];
  const [c, s] = sides;
  const stamp = () => `${String(now).padStart(4)}ms`;

  // Service one side as a real host would: write its pending bytes first (a transmission
  // queued before StartTls, like <proceed/>, must reach the wire before the handshake), then
  // act on its events. The machine emits nothing after StartTls until tls_established, so
  // taking bytes and events separately never moves a transmission across the TLS switch.
  const service = (side) => {
    let moved = false;
    const bytes = m.takeBytes(side.handle);
    if (bytes.length > 0) {
      moved = true;
      print(`${stamp()} ${side.name}: ${decoder.decode(bytes)}`);
      side.wire.push(bytes);
    }
    for (const event of m.takeEvents(side.handle)) {
      moved = true;
      side.events.push(event);
      print(`${stamp()} ${side.name} event: ${event.summary}`);
      if (event.type === 'StartTls') {
        print(`${stamp()} ${side.name}: [TLS handshake (fake): tls-exporter = 32 x 0x5a]`);
        m.check(
          m.x.xw_tls_established(side.handle, now, KIND_TLS_EXPORTER, m.put(FAKE_TLS_EXPORTER)),
          'tls_established',
        );
        service(side);
      }
    }
    return moved;
  };

  // Deliver what each side wrote to the other, servicing the receiver right away so the
  // printout reads in causal order, until neither side has anything pending.
  const pump = () => {
    for (let round = 0; round < 1000; round++) {
      let moved = false;
      for (const side of sides) {
        moved = service(side) || moved;
        const peer = side === c ? s : c;
        while (side.wire.length > 0) {
          moved = true;
          // Whole transmissions, or `chunk`-byte pieces: the machines must not care.
          const bytes = side.wire.shift();
          const step = chunk > 0 ? chunk : bytes.length;
          for (let at = 0; at < bytes.length; at += step) {
            const rc = m.x.xw_feed(peer.handle, now, m.put(bytes.subarray(at, at + step)));
            if (rc === -4) {
              // The receiver found a protocol error: its stream error and Closed follow.
              print(`${stamp()} ${peer.name} protocol error: ${m.lastError()}`);
            } else {
              m.check(rc, 'feed');
            }
            service(peer);
          }
        }
      }
      if (!moved) return;
      now += 10n;
    }
    fail('the session did not settle in 1000 rounds');
  };

  for (const handle of [server, client]) {
    const rc = direct
      ? m.x.xw_start_direct_tls(handle, now, KIND_TLS_EXPORTER, m.put(FAKE_TLS_EXPORTER))
      : m.x.xw_start(handle, now);
    m.check(rc, 'start');
  }
  const deadline = m.x.xw_poll_timeout(client);
  expect(deadline > 0n, `the client has no negotiation deadline (${deadline})`);
  pump();

  if (exchange) {
    const negotiated = c.events.find((e) => e.type === 'Negotiated');
    expect(negotiated, 'the client never reported Negotiated');
    expect(
      negotiated.jid === 'juliet@im.example.com/balcony',
      `the client bound ${negotiated.jid}`,
    );
    expect(s.events.some((e) => e.type === 'Negotiated'), 'the server never reported Negotiated');

    print(`${stamp()} C host: send a message`);
    m.check(
      m.x.xw_send(client, now, m.putText(
        "<message xmlns='jabber:client' to='im.example.com' id='c1' type='chat'><body>Wherefore art thou?</body></message>",
      )),
      'client send',
    );
    pump();
    const got = s.events.find((e) => e.type === 'Stanza');
    expect(got && got.xml.includes('Wherefore art thou?'), 'the server did not receive the message');

    print(`${stamp()} S host: send a message`);
    m.check(
      m.x.xw_send(server, now, m.putText(
        "<message xmlns='jabber:client' from='im.example.com' to='juliet@im.example.com/balcony' id='s1' type='chat'><body>Here, fair saint.</body></message>",
      )),
      'server send',
    );
    pump();
    const back = c.events.find((e) => e.type === 'Stanza');
    expect(back && back.xml.includes('Here, fair saint.'), 'the client did not receive the message');

    print(`${stamp()} C host: close`);
    m.check(m.x.xw_close(client, now), 'client close');
    pump();
    for (const side of sides) {
      const closed = side.events.find((e) => e.type === 'Closed');
      expect(closed, `${side.name} never reported Closed`);
      expect(closed.reason === 'Graceful', `${side.name} closed with ${closed.reason}`);
      expect(m.check(m.x.xw_is_closed(side.handle), 'is_closed') === 1, `${side.name} is not closed`);
    }
  }

  m.check(m.x.xw_destroy(client), 'destroy');
  m.check(m.x.xw_destroy(server), 'destroy');
  return { client: c.events, server: s.events };
}

function authenticatedWith(events) {
  const auth = events.find((e) => e.type === 'Authenticated');
  return auth && auth.mechanism;
}

async function main() {
  const [wasmPath, ...transcripts] = process.argv.slice(2);
  if (!wasmPath) fail('usage: node negotiate.mjs <xmpp_host_wasm.wasm> [transcripts...]');
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {});
  const m = new Module(instance);
  console.log(`loaded ${basename(wasmPath)} (${Object.keys(instance.exports).filter((k) => k.startsWith('xw_')).length} xw_ exports)`);

  // Full transcript for the first session.
  console.log('== session 1: STARTTLS, SCRAM-SHA-256, bind, a message each way, close');
  const first = session(m, { mechanism: 'SCRAM-SHA-256', print: (line) => console.log(line) });
  expect(authenticatedWith(first.client) === 'SCRAM-SHA-256', 'session 1 did not use SCRAM-SHA-256');
  expect(first.client.some((e) => e.type === 'Secured'), 'session 1 never secured the stream');
  console.log('OK session SCRAM-SHA-256');

  // The same flow with other mechanisms, summarised.
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-256-PLUS']) {
    const run = session(m, { mechanism, print: () => {} });
    const used = authenticatedWith(run.client);
    expect(used === mechanism, `session with ${mechanism} authenticated with ${used}`);
    console.log(`OK session ${mechanism}: ${run.client.map((e) => e.summary).join(' | ')}`);
  }

  // Direct TLS (XEP-0368): no STARTTLS, and with the binding from the start the default
  // offer and policy settle on channel-bound SCRAM.
  const direct = session(m, { mechanism: null, print: () => {}, direct: true });
  expect(!direct.client.some((e) => e.type === 'StartTls'), 'direct TLS still did STARTTLS');
  expect(authenticatedWith(direct.client) === 'SCRAM-SHA-512-PLUS',
    `direct TLS authenticated with ${authenticatedWith(direct.client)}`);
  console.log(`OK direct TLS: ${direct.client.map((e) => e.summary).join(' | ')}`);

  // The same session fed in 3-byte pieces gives the same events (seeded: byte-identical).
  const chunked = session(m, { mechanism: 'SCRAM-SHA-256', print: () => {}, chunk: 3 });
  for (const role of ['client', 'server']) {
    const whole = first[role].map((e) => e.summary).join(' | ');
    const pieces = chunked[role].map((e) => e.summary).join(' | ');
    expect(whole === pieces, `${role} events differ when fed in 3-byte chunks:\n${whole}\n${pieces}`);
  }
  console.log(`OK chunked: 3-byte pieces give the same ${chunked.client.length + chunked.server.length} events`);

  // Time is a number the host passes: a server that never answers trips the negotiation
  // deadline the client asked to be woken for.
  const lonely = m.client(4, 'jid=juliet@im.example.com\npassword=x');
  m.check(m.x.xw_start(lonely, 0n), 'start');
  m.takeBytes(lonely);
  m.takeEvents(lonely);
  const deadline = m.x.xw_poll_timeout(lonely);
  expect(deadline > 0n, `no deadline (${deadline})`);
  m.check(m.x.xw_timeout(lonely, deadline - 1n), 'timeout');
  expect(m.takeEvents(lonely).length === 0, 'a timer fired early');
  m.check(m.x.xw_timeout(lonely, deadline), 'timeout');
  const timedOut = m.takeEvents(lonely).find((e) => e.type === 'Closed');
  expect(timedOut && timedOut.reason === 'Timeout Negotiation',
    `at the deadline: ${timedOut ? timedOut.reason : 'no Closed event'}`);
  console.log(`OK timeout: Closed ${timedOut.reason} at ${deadline}ms`);
  m.check(m.x.xw_destroy(lonely), 'destroy');

  // A wrong password ends in not-authorized, not a hang.
  const wrong = session(m, { mechanism: 'SCRAM-SHA-256', password: 'wrong', print: () => {}, exchange: false });
  const closed = wrong.client.find((e) => e.type === 'Closed');
  expect(closed && closed.reason === 'AuthenticationFailed not-authorized',
    `wrong password: ${closed ? closed.reason : 'no Closed event'}`);
  expect(!wrong.client.some((e) => e.type === 'Negotiated'), 'wrong password negotiated');
  console.log(`OK wrong password: Closed ${closed.reason}`);

  // Garbage from the peer is a protocol error reported through the ABI, not a trap.
  const server = m.server(3, 'domain=im.example.com');
  m.check(m.x.xw_start(server, 0n), 'start');
  const rc = m.x.xw_feed(server, 0n, m.putText('<<<not xml'));
  expect(rc === -4, `garbage gave ${rc}`);
  const reply = decoder.decode(m.takeBytes(server));
  expect(reply.includes('stream:error'), 'no stream error sent for garbage');
  console.log(`OK garbage: ${m.lastError()}`);
  m.check(m.x.xw_destroy(server), 'destroy');

  for (const path of transcripts) {
    const name = basename(path);
    const roles = name.includes('.server.') ? [1] : name.includes('.client.') ? [0] : [0, 1];
    for (const role of roles) {
      const rc = m.x.xw_replay(role, m.putText(readFileSync(path, 'utf8')));
      const who = role === 0 ? 'client' : 'server';
      if (rc < 0) fail(`replay ${name} as ${who}: ${m.lastError()}`);
      console.log(`OK replay ${name} as ${who}`);
    }
  }
  console.log('PASS');
}

main().catch((error) => {
  console.log(`FAIL: ${error.message}`);
  process.exit(1);
});
