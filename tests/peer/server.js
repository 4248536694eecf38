#!/usr/bin/env node
// An independent store server written from docs/protocol.md alone, on another runtime:
// Node.js, the `ws` package and JSON.parse. It shares no code with store-harness, so
// the harness's verdicts on it say whether the harness judges the spec or merely its
// own reference server (issue 11). Flags switch on legal but unusual behaviour:
//
//   node server.js --port 0                        the plain server
//   --observer-ids per-connection                  obs-1, obs-2... on every connection (R2.5)
//   --extra-fields                                 unknown members on every frame (R1.4)
//   --delay-replies MS                             every reply held MS ms, in order (R1.3)
//   --per-key-queues                               updates fanned out from per-key async queues
//   --error-texts alt                              other error messages (only codes are normative)
//   --token-secret SECRET                          HS256 join tokens (R2.4)
//
// Once ready it prints `listening ws://HOST:PORT/`; SIGTERM or SIGINT stop it, exit 0.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const { WebSocketServer } = require('ws');

const LIMITS = Object.freeze({ maxKeys: 100, maxValueBytes: 1024 });
const MAX_FRAME_BYTES = 64 * 1024; // R1.6: ws closes with 1009 beyond it
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024; // R4.7: a reader this far behind is cut off
const MAX_DELAYED_REPLIES = 10000; // the same bound for replies held by --delay-replies
const MAX_OBSERVERS_PER_CONNECTION = 1000;
const CLOCK_SKEW_S = 30; // R2.4 allows up to 60 s
const MIN_SECRET_BYTES = 32; // RFC 7518 section 3.2
const CLOSE_POLICY = 1008;
const CLOSE_INTERNAL_ERROR = 1011;
const REQUEST_TYPES = new Set(['join', 'set', 'get', 'observe', 'stopObserving']);

const USAGE =
  'usage: node server.js [--host H] [--port N] [--token-secret S] ' +
  '[--observer-ids global|per-connection] [--extra-fields] [--delay-replies MS] ' +
  '[--per-key-queues] [--error-texts default|alt]';

// Only the codes are normative (R5.1); --error-texts alt words every message differently.
const TEXTS = {
  default: {
    binary: () => 'binary frames are not allowed',
    notJson: () => 'frame is not valid JSON',
    notObject: () => 'frame is not a JSON object',
    badId: () => "'id' is missing or not an integer",
    unknownType: (t) => `unknown request type ${JSON.stringify(t) ?? 'undefined'}`,
    joinedTwice: () => 'this connection already joined',
    badSession: () => "'session' must be a non-empty string",
    badParticipant: () => "'participant' must be an object",
    badParticipantId: () => "'participant.id' must be a non-empty string",
    badName: () => "'participant.name' must be a string",
    badToken: () => "'token' must be a string when present",
    notJoined: () => 'join a session first',
    badObserverId: () => "'observerId' is missing or not a string",
    unknownObserver: (o) => `${JSON.stringify(o)} is not an active observer of this connection`,
    badKey: () => "'key' must be a non-empty string",
    noValue: () => "'value' is missing",
    badValue: () => "'value' must be a string or null",
    tooLarge: (n, max) => `value is ${n} bytes in UTF-8; the limit is ${max}`,
    keyLimit: (max) => `the session already holds ${max} keys`,
  },
  alt: {
    binary: () => 'Nope: this server only speaks text frames.',
    notJson: () => 'Could not parse that as JSON.',
    notObject: () => 'Expected a JSON object at the top level.',
    badId: () => 'Request id absent or not integral.',
    unknownType: () => 'No such operation.',
    joinedTwice: () => 'Already in a session on this socket.',
    badSession: () => 'Session name invalid.',
    badParticipant: () => 'Participant must be given as an object.',
    badParticipantId: () => 'Participant id invalid.',
    badName: () => 'Participant name invalid.',
    badToken: () => 'Token must be text.',
    notJoined: () => 'Not in a session yet.',
    badObserverId: () => 'Observer id absent or not text.',
    unknownObserver: () => 'No such observer here.',
    badKey: () => 'Key invalid.',
    noValue: () => 'Value absent.',
    badValue: () => 'Value must be text or null.',
    tooLarge: () => 'Value too big.',
    keyLimit: () => 'Session is full.',
  },
};

// --- options -----------------------------------------------------------------------

function usageError(message) {
  process.stderr.write(`server.js: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseOptions(argv) {
  const options = {
    host: '127.0.0.1',
    port: 8765,
    tokenSecret: process.env.STORE_HARNESS_TOKEN_SECRET || null,
    observerIds: 'global',
    extraFields: false,
    delayMs: 0,
    perKeyQueues: false,
    errorTexts: 'default',
  };
  const args = [...argv];
  const value = (flag) => {
    if (args.length === 0) usageError(`${flag} needs a value`);
    return args.shift();
  };
  while (args.length > 0) {
    const flag = args.shift();
    switch (flag) {
      case '--host':
        options.host = value(flag);
        break;
      case '--port': {
        const port = Number(value(flag));
        if (!Number.isInteger(port) || port < 0 || port > 65535) usageError('bad --port');
        options.port = port;
        break;
      }
      case '--token-secret':
        options.tokenSecret = value(flag);
        break;
      case '--observer-ids':
        options.observerIds = value(flag);
        if (!['global', 'per-connection'].includes(options.observerIds)) {
          usageError('--observer-ids is global or per-connection');
        }
        break;
      case '--extra-fields':
        options.extraFields = true;
        break;
      case '--delay-replies': {
        const ms = Number(value(flag));
        if (!Number.isFinite(ms) || ms < 0) usageError('bad --delay-replies');
        options.delayMs = ms;
        break;
      }
      case '--per-key-queues':
        options.perKeyQueues = true;
        break;
      case '--error-texts':
        options.errorTexts = value(flag);
        if (!(options.errorTexts in TEXTS)) usageError('--error-texts is default or alt');
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        usageError(`unknown option ${flag}`);
    }
  }
  if (options.tokenSecret !== null && Buffer.byteLength(options.tokenSecret) < MIN_SECRET_BYTES) {
    usageError(`a token secret must be at least ${MIN_SECRET_BYTES} bytes (RFC 7518 3.2)`);
  }
  return options;
}

const options = parseOptions(process.argv.slice(2));
const texts = TEXTS[options.errorTexts];

// --- small helpers ------------------------------------------------------------------

const hasOwn = (object, name) => Object.prototype.hasOwnProperty.call(object, name);
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonEmptyString = (v) => typeof v === 'string' && v.length > 0;

// Extra members a client must ignore (R1.4: the schema allows them), added to the frame
// and to each nested object, on a copy so stored state never carries them.
function decorate(message) {
  if (!options.extraFields) return message;
  const extra = { ts: Date.now(), server: 'peer' };
  const copy = { ...message, ...extra };
  for (const nested of ['participant', 'limits', 'updatedBy']) {
    if (isObject(copy[nested])) copy[nested] = { ...copy[nested], peer: true };
  }
  return copy;
}

// --- JWT (R2.4), with node's crypto only ----------------------------------------------

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function decodeJsonPart(part) {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}

// Why `token` does not admit `participantId` to `session`, or null when it does. The
// reason goes back to the client, so it names the fault and never the secret.
function refuseToken(secret, token, session, participantId) {
  if (token === undefined) return 'a token is required';
  const parts = token.split('.');
  if (parts.length !== 3 || !BASE64URL.test(parts[0]) || !BASE64URL.test(parts[1])) {
    return 'the token is not a well-formed JWT';
  }
  const header = decodeJsonPart(parts[0]);
  const claims = decodeJsonPart(parts[1]);
  if (header === null || claims === null) return 'the token is not a well-formed JWT';
  if (header.alg === 'none' || parts[2] === '') return 'the token is unsigned';
  if (header.alg !== 'HS256') return 'the token is not signed with HS256';
  const expected = Buffer.from(
    crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest('base64url'),
  );
  const given = Buffer.from(parts[2]);
  // Compared as canonical base64url text, so no second spelling of a signature passes.
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return "the token's signature is not valid";
  }
  for (const claim of ['session', 'participant', 'exp']) {
    if (!hasOwn(claims, claim)) return `the token has no '${claim}' claim`;
  }
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) {
    return "the token's 'exp' claim is not a number";
  }
  if (claims.exp + CLOCK_SKEW_S <= Date.now() / 1000) return 'the token has expired';
  if (claims.session !== session) return 'the token is for another session';
  if (claims.participant !== participantId) return 'the token is for another participant';
  return null;
}

// --- state ---------------------------------------------------------------------------

class Session {
  constructor(name) {
    this.name = name;
    this.values = new Map(); // Maps, not objects: keys like "__proto__" are plain keys
    this.observers = new Map(); // key -> Set<Observer>, in the order they began
    this.queues = new Map(); // key -> pending fan-outs (--per-key-queues)
    this.connections = 0;
  }
}

class Observer {
  constructor(conn, observerId, key) {
    this.conn = conn;
    this.observerId = observerId;
    this.key = key;
    this.active = true;
    // R4.8: updates wait here until the `observing` reply that announces the id is sent.
    this.announced = false;
    this.held = [];
  }
}

class Connection {
  constructor(ws) {
    this.ws = ws;
    this.session = null;
    this.participant = null;
    this.observers = new Map(); // observerId -> Observer, this connection's scope (R2.5)
    this.nextObserver = 1;
    this.closing = false;
    this.refused = false; // a refused join: nothing more is served (R2.4)
    this.delayed = []; // replies held by --delay-replies, in request order
    this.timer = null;
  }
}

const sessions = new Map();
const connections = new Set();
let nextGlobalObserver = 1;

// --- sending -------------------------------------------------------------------------

function send(conn, message) {
  if (conn.closing) return;
  conn.ws.send(JSON.stringify(decorate(message)));
  // The socket buffers what the peer does not read; past the bound, cut it off (R4.7)
  // rather than hold its backlog forever. Others never wait on it: writes are async.
  if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    closeConnection(conn, CLOSE_POLICY, 'too slow: outgoing buffer is full', true);
  }
}

// Replies leave in request order (R1.3). `after` runs once the reply is on its way, for
// what must follow it: an observer's first updates (R4.8), a close after UNAUTHORIZED.
function reply(conn, message, after) {
  if (options.delayMs <= 0) {
    send(conn, message);
    if (after) after();
    return;
  }
  if (conn.delayed.length >= MAX_DELAYED_REPLIES) {
    closeConnection(conn, CLOSE_POLICY, 'too many requests waiting for replies', true);
    return;
  }
  conn.delayed.push({ due: performance.now() + options.delayMs, message, after });
  if (conn.timer === null) scheduleDelayed(conn);
}

function scheduleDelayed(conn) {
  const wait = Math.max(0, conn.delayed[0].due - performance.now());
  conn.timer = setTimeout(() => {
    conn.timer = null;
    // Every reply got the same delay, so due times never decrease along the queue.
    while (conn.delayed.length > 0 && conn.delayed[0].due <= performance.now()) {
      const { message, after } = conn.delayed.shift();
      send(conn, message);
      if (after) after();
    }
    if (conn.delayed.length > 0 && !conn.closing) scheduleDelayed(conn);
  }, wait);
}

function error(conn, id, code, message) {
  reply(conn, { type: 'error', id, code, message });
}

function deliver(observer, update) {
  if (!observer.active || observer.conn.closing) return;
  const frame = { type: 'update', observerId: observer.observerId, ...update };
  if (observer.announced) send(observer.conn, frame);
  else observer.held.push(frame);
}

function announce(observer) {
  observer.announced = true;
  const held = observer.held;
  observer.held = [];
  for (const frame of held) send(observer.conn, frame);
}

// --- fan-out -------------------------------------------------------------------------

// R4.1: the observers active when the write is applied, in one order for all (R4.3).
function notify(session, key, value, writer) {
  const observers = session.observers.get(key);
  if (!observers || observers.size === 0) return;
  const update = { key, value, updatedBy: { id: writer.id, name: writer.name } };
  const targets = [...observers];
  if (!options.perKeyQueues) {
    for (const observer of targets) deliver(observer, update);
    return;
  }
  let queue = session.queues.get(key);
  if (!queue) {
    queue = [];
    session.queues.set(key, queue);
  }
  queue.push({ targets, update });
  if (queue.length === 1) setImmediate(() => drainOne(session, key));
}

// One fan-out per event-loop turn, so requests and other keys' updates interleave.
function drainOne(session, key) {
  const queue = session.queues.get(key);
  if (!queue || queue.length === 0) return;
  const { targets, update } = queue.shift();
  for (const observer of targets) deliver(observer, update);
  if (queue.length > 0) {
    // Alternate the two async primitives so both orders of tasks get exercised.
    if (queue.length % 2 === 0) setImmediate(() => drainOne(session, key));
    else queueMicrotask(() => setImmediate(() => drainOne(session, key)));
  } else {
    session.queues.delete(key);
  }
}

// Before an observer stops, the writes applied while it was active reach it (R4.1), so
// nothing is left to follow stop's ok (R4.5): drain its key's queue now, in order.
function flushKey(session, key) {
  const queue = session.queues.get(key);
  if (!queue) return;
  while (queue.length > 0) {
    const { targets, update } = queue.shift();
    for (const observer of targets) deliver(observer, update);
  }
  session.queues.delete(key);
}

// --- requests ------------------------------------------------------------------------

function handleFrame(conn, data, isBinary) {
  if (isBinary) return error(conn, null, 'BAD_REQUEST', texts.binary());
  let request;
  try {
    request = JSON.parse(data.toString('utf8'));
  } catch {
    return error(conn, null, 'BAD_REQUEST', texts.notJson());
  }
  if (!isObject(request)) return error(conn, null, 'BAD_REQUEST', texts.notObject());
  // R5.1: an id that is not an integer is no id; JSON.parse makes 1.0 the integer 1.
  const id = request.id;
  if (!Number.isInteger(id)) return error(conn, null, 'BAD_REQUEST', texts.badId());
  const type = request.type;
  if (typeof type !== 'string' || !REQUEST_TYPES.has(type)) {
    return error(conn, id, 'BAD_REQUEST', texts.unknownType(type));
  }
  if (type === 'join') return handleJoin(conn, id, request);
  if (conn.session === null) return error(conn, id, 'NOT_JOINED', texts.notJoined());
  switch (type) {
    case 'set':
      return handleSet(conn, id, request);
    case 'get':
      return handleGet(conn, id, request);
    case 'observe':
      return handleObserve(conn, id, request);
    default:
      return handleStop(conn, id, request);
  }
}

function handleJoin(conn, id, request) {
  if (conn.session !== null) return error(conn, id, 'BAD_REQUEST', texts.joinedTwice());
  const { session: name, participant } = request;
  if (!isNonEmptyString(name)) return error(conn, id, 'BAD_REQUEST', texts.badSession());
  if (!isObject(participant)) return error(conn, id, 'BAD_REQUEST', texts.badParticipant());
  if (!isNonEmptyString(participant.id)) {
    return error(conn, id, 'BAD_REQUEST', texts.badParticipantId());
  }
  if (typeof participant.name !== 'string') return error(conn, id, 'BAD_REQUEST', texts.badName());
  if (hasOwn(request, 'token') && typeof request.token !== 'string') {
    return error(conn, id, 'BAD_REQUEST', texts.badToken());
  }
  if (options.tokenSecret !== null) {
    const token = hasOwn(request, 'token') ? request.token : undefined;
    const refusal = refuseToken(options.tokenSecret, token, name, participant.id);
    if (refusal !== null) {
      // Nothing after a refused join is served; the close follows the reply (R2.4).
      conn.refused = true;
      reply(conn, { type: 'error', id, code: 'UNAUTHORIZED', message: refusal }, () =>
        closeConnection(conn, CLOSE_POLICY, 'unauthorized', false),
      );
      return undefined;
    }
  }
  let session = sessions.get(name);
  if (!session) {
    session = new Session(name);
    sessions.set(name, session);
  }
  session.connections += 1;
  conn.session = session;
  conn.participant = { id: participant.id, name: participant.name };
  return reply(conn, {
    type: 'joined',
    id,
    session: name,
    participant: { ...conn.participant },
    limits: { ...LIMITS },
  });
}

function checkKey(conn, id, request) {
  if (isNonEmptyString(request.key)) return true;
  error(conn, id, 'INVALID_KEY', texts.badKey());
  return false;
}

function handleSet(conn, id, request) {
  if (!checkKey(conn, id, request)) return undefined;
  if (!hasOwn(request, 'value')) return error(conn, id, 'INVALID_VALUE', texts.noValue());
  const { key, value } = request;
  if (value !== null && typeof value !== 'string') {
    return error(conn, id, 'INVALID_VALUE', texts.badValue());
  }
  const session = conn.session;
  if (value !== null) {
    const size = Buffer.byteLength(value, 'utf8');
    if (size > LIMITS.maxValueBytes) {
      return error(conn, id, 'VALUE_TOO_LARGE', texts.tooLarge(size, LIMITS.maxValueBytes));
    }
    // R3.6 counts keys holding a value; request handling is synchronous, so no race.
    if (!session.values.has(key) && session.values.size >= LIMITS.maxKeys) {
      return error(conn, id, 'KEY_LIMIT_EXCEEDED', texts.keyLimit(LIMITS.maxKeys));
    }
    session.values.set(key, value);
  } else {
    session.values.delete(key);
  }
  reply(conn, { type: 'ok', id });
  notify(session, key, value, conn.participant);
  return undefined;
}

function handleGet(conn, id, request) {
  if (!checkKey(conn, id, request)) return undefined;
  const value = conn.session.values.get(request.key);
  return reply(conn, { type: 'value', id, key: request.key, value: value ?? null });
}

function handleObserve(conn, id, request) {
  if (!checkKey(conn, id, request)) return undefined;
  if (conn.observers.size >= MAX_OBSERVERS_PER_CONNECTION) {
    const reason = `too many observers (limit ${MAX_OBSERVERS_PER_CONNECTION})`;
    closeConnection(conn, CLOSE_POLICY, reason, false);
    return undefined;
  }
  const observerId =
    options.observerIds === 'per-connection'
      ? `obs-${conn.nextObserver++}`
      : `observer-${nextGlobalObserver++}`;
  const observer = new Observer(conn, observerId, request.key);
  const session = conn.session;
  let observers = session.observers.get(request.key);
  if (!observers) {
    observers = new Set();
    session.observers.set(request.key, observers);
  }
  observers.add(observer);
  conn.observers.set(observerId, observer);
  reply(conn, { type: 'observing', id, observerId }, () => announce(observer));
  return undefined;
}

function endObserver(session, observer) {
  observer.active = false;
  const observers = session.observers.get(observer.key);
  if (!observers) return;
  observers.delete(observer);
  if (observers.size === 0) session.observers.delete(observer.key);
}

function handleStop(conn, id, request) {
  const observerId = request.observerId;
  if (typeof observerId !== 'string') {
    return error(conn, id, 'UNKNOWN_OBSERVER', texts.badObserverId());
  }
  const observer = conn.observers.get(observerId);
  if (!observer) return error(conn, id, 'UNKNOWN_OBSERVER', texts.unknownObserver(observerId));
  flushKey(conn.session, observer.key);
  conn.observers.delete(observerId);
  endObserver(conn.session, observer);
  return reply(conn, { type: 'ok', id });
}

// R4.6: a closed connection's observers end; its writes stay. Idempotent.
function disconnect(conn) {
  const session = conn.session;
  if (session === null) return;
  conn.session = null;
  for (const observer of conn.observers.values()) endObserver(session, observer);
  conn.observers.clear();
  session.connections -= 1;
  // A session nobody is in and that holds nothing is forgotten, so memory stays bounded.
  if (session.connections === 0 && session.values.size === 0) sessions.delete(session.name);
}

function closeConnection(conn, code, reason, abortIfStuck) {
  if (conn.closing) return;
  conn.closing = true;
  disconnect(conn);
  if (conn.timer !== null) clearTimeout(conn.timer);
  conn.timer = null;
  conn.delayed = [];
  conn.ws.close(code, reason);
  // A peer that does not read never answers the closing handshake either.
  if (abortIfStuck) setTimeout(() => conn.ws.terminate(), 1000).unref();
}

// --- server --------------------------------------------------------------------------

const httpServer = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('this is a WebSocket endpoint\n');
});
const wss = new WebSocketServer({
  server: httpServer,
  maxPayload: MAX_FRAME_BYTES,
  perMessageDeflate: false,
  closeTimeout: 2000,
});

wss.on('connection', (ws) => {
  const conn = new Connection(ws);
  connections.add(conn);
  ws.on('message', (data, isBinary) => {
    if (conn.closing || conn.refused) return;
    try {
      handleFrame(conn, data, isBinary);
    } catch (exc) {
      // A bug met on one connection must not take the others down.
      process.stderr.write(`internal error, closing the connection: ${exc.stack}\n`);
      closeConnection(conn, CLOSE_INTERNAL_ERROR, 'internal server error', true);
    }
  });
  ws.on('error', () => {}); // ws closes the socket itself (e.g. 1009, 1007); nothing to add
  ws.on('close', () => {
    conn.closing = true;
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = null;
    disconnect(conn);
    connections.delete(conn);
  });
});

function stop() {
  wss.close();
  for (const conn of connections) conn.ws.terminate();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

httpServer.on('error', (exc) => {
  process.stderr.write(`server.js: cannot listen on ${options.host}:${options.port}: ${exc.message}\n`);
  process.exit(2);
});
httpServer.listen(options.port, options.host, () => {
  const { port } = httpServer.address();
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  process.stdout.write(`listening ws://${host}:${port}/\n`);
});
