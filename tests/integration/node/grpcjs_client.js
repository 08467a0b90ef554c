'use strict';
// An independent client for the integration tests: @grpc/grpc-js is a gRPC
// stack in JavaScript on Node's own HTTP/2 (nghttp2), so it shares no code
// with the gRPC C core the server runs on. A flaw both sides share
// (HPACK, trailers, flow control, TLS/ALPN) cannot hide behind it.
//
// Run by test_grpcjs.py against a fresh server; configured by environment:
//   PRODUCT_ADDR          host:port of the API
//   PRODUCT_CA            dev CA (PEM) to speak TLS; unset = plaintext
//   PRODUCT_USER_TOKEN    a valid token without a role
//   PRODUCT_ADMIN_TOKEN   a valid token with role=admin
//   PRODUCT_FORGED_TOKEN  a well-formed token signed with another secret
//   PRODUCT_PROTO_DIR     the repo's proto/ folder
//   PRODUCT_GRPC_PROTO_DIR  the health and reflection protos (grpc-proto)
//   PRODUCT_SLOW          multiplier for every deadline (sanitized builds)
// Prints "ok NAME" / "FAIL NAME: why" per check and "N passed, N failed".

const assert = require('node:assert/strict');
const fs = require('node:fs');
const http2 = require('node:http2');
const net = require('node:net');
const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error('environment variable ' + name + ' is not set');
  return v;
};

const ADDR = env('PRODUCT_ADDR');
const CA = process.env.PRODUCT_CA ? fs.readFileSync(process.env.PRODUCT_CA) : null;
const USER = env('PRODUCT_USER_TOKEN');
const ADMIN = env('PRODUCT_ADMIN_TOKEN');
const FORGED = env('PRODUCT_FORGED_TOKEN');
const SLOW = Number(process.env.PRODUCT_SLOW || '1');
const CALL_MS = 10000 * SLOW;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MISSING_ID = '00000000-0000-4000-8000-000000000000';
const S = grpc.status;

// Well-known types from Debian's libprotobuf-dev when present; proto-loader
// (protobufjs) carries its own copies otherwise.
const includeDirs = [env('PRODUCT_PROTO_DIR'), env('PRODUCT_GRPC_PROTO_DIR'), '/usr/include']
  .filter((d) => fs.existsSync(d));
const defs = protoLoader.loadSync(
  ['product.proto', 'grpc/health/v1/health.proto', 'grpc/reflection/v1/reflection.proto'],
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs });
const pkg = grpc.loadPackageDefinition(defs);

const creds = CA ? grpc.credentials.createSsl(CA) : grpc.credentials.createInsecure();
const product = new pkg.product.ProductService(ADDR, creds);
const health = new pkg.grpc.health.v1.Health(ADDR, creds);
const reflection = new pkg.grpc.reflection.v1.ServerReflection(ADDR, creds);

function deadline() {
  return { deadline: Date.now() + CALL_MS };
}

function metadata(token) {
  const md = new grpc.Metadata();
  if (token) md.add('authorization', 'Bearer ' + token);
  return md;
}

// One unary call; resolves to {code, details, trailers, headers, response}
// whatever the outcome (grpc-js reports the trailers with the status).
function unary(client, method, req, token) {
  return new Promise((resolve) => {
    let response = null;
    let headers = null;
    const call = client[method](req, metadata(token), deadline(), (err, resp) => {
      if (!err) response = resp;
    });
    call.on('metadata', (md) => { headers = md; });
    call.on('status', (st) => resolve({
      code: st.code, details: st.details, trailers: st.metadata, headers, response,
    }));
  });
}

function codeName(code) {
  return Object.keys(S).find((k) => S[k] === code) || String(code);
}

// Asserts the status and that the trailers carry no rich-status details:
// the server never sends grpc-status-details-bin.
function expectStatus(r, code, what) {
  assert.equal(codeName(r.code), codeName(code), what + ': status (' + r.details + ')');
  assert.deepEqual(r.trailers.get('grpc-status-details-bin'), [],
    what + ': grpc-status-details-bin in trailers');
  if (code !== S.OK) {
    assert.ok(r.details && r.details.length > 0, what + ': empty grpc-message');
  }
  return r.response;
}

async function call(method, req, token, code, what) {
  return expectStatus(await unary(product, method, req, token), code, what || method);
}

function create(name, extra) {
  return call('CreateProduct', Object.assign({ name }, extra || {}), USER, S.OK, 'create ' + name);
}

// The raw HTTP/2 exchange with Node's own http2 module: the response headers,
// the trailers and the length-prefixed messages exactly as they were sent.
function rawCall(method, request, token) {
  const def = defs['product.ProductService'][method];
  const body = def.requestSerialize(request);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return new Promise((resolve, reject) => {
    const session = CA
      ? http2.connect('https://' + ADDR, { ca: CA, servername: 'localhost' })
      : http2.connect('http://' + ADDR);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error('raw call did not finish within ' + CALL_MS + ' ms'));
    }, CALL_MS);
    session.on('error', (e) => { clearTimeout(timer); reject(e); });
    const hdrs = {
      ':method': 'POST', ':path': def.path, 'content-type': 'application/grpc', te: 'trailers',
    };
    if (token) hdrs.authorization = 'Bearer ' + token;
    const req = session.request(hdrs);
    let headers = null;
    let trailers = null;
    const chunks = [];
    req.on('response', (h) => { headers = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c) => chunks.push(c));
    req.on('error', (e) => { clearTimeout(timer); session.destroy(); reject(e); });
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      const data = Buffer.concat(chunks);
      const messages = [];
      for (let off = 0; off + 5 <= data.length;) {
        const len = data.readUInt32BE(off + 1);
        messages.push(def.responseDeserialize(data.subarray(off + 5, off + 5 + len)));
        off += 5 + len;
      }
      resolve({ headers, trailers, messages, alpn: session.alpnProtocol });
    });
    req.end(frame);
  });
}

// The status fields of a raw reply: from the trailers, or from the headers
// of a trailers-only reply.
function rawStatus(r) {
  const t = r.trailers || r.headers;
  return { status: t['grpc-status'], message: t['grpc-message'], block: t };
}

function version(pkgName) {
  const file = path.join(__dirname, 'node_modules', pkgName, 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).version;
}

// ------------------------------------------------------------- checks ---

const checks = [];
const check = (name, fn) => checks.push({ name, fn });
// Checks that need to read the server's HTTP/2 frames: plaintext runs only
// (test_grpcjs.py counts them for that run).
const plainCheck = (name, fn) => { if (!CA) checks.push({ name, fn }); };

check('health Check answers SERVING for the server and the service', async () => {
  for (const service of ['', 'product.ProductService']) {
    const r = expectStatus(await unary(health, 'Check', { service }, null), S.OK, 'Check');
    assert.equal(r.status, 'SERVING', 'Check(' + JSON.stringify(service) + ')');
  }
  const r = await unary(health, 'Check', { service: 'no.such.Service' }, null);
  expectStatus(r, S.NOT_FOUND, 'Check(no.such.Service)');
});

check('reflection lists the product and health services', async () => {
  const names = await new Promise((resolve, reject) => {
    const stream = reflection.ServerReflectionInfo(deadline());
    stream.on('data', (resp) => {
      stream.end();
      if (resp.message_response !== 'list_services_response') {
        reject(new Error('unexpected reflection reply ' + resp.message_response));
        return;
      }
      resolve(resp.list_services_response.service.map((s) => s.name));
    });
    stream.on('error', reject);
    stream.write({ list_services: '' });
  });
  for (const want of ['product.ProductService', 'grpc.health.v1.Health']) {
    assert.ok(names.includes(want), want + ' not listed: ' + names.join(', '));
  }
});

check('create returns a UUID v4 and what was sent', async () => {
  const p = await create('JS Widget', { description: 'd', price: 9.5, categories: ['js', 'x'] });
  assert.match(p.id, UUID4);
  assert.equal(p.name, 'JS Widget');
  assert.equal(p.description, 'd');
  assert.equal(p.price, 9.5);
  assert.deepEqual(p.categories, ['js', 'x']);
  assert.ok(Number(p.created_at.seconds) > 1600000000, 'created_at is not a wall-clock time');
  assert.deepEqual(p.updated_at, p.created_at, 'updated_at == created_at on create');
});

check('create without a token or with a forged one is UNAUTHENTICATED', async () => {
  await call('CreateProduct', { name: 'no token' }, null, S.UNAUTHENTICATED, 'no token');
  await call('CreateProduct', { name: 'forged' }, FORGED, S.UNAUTHENTICATED, 'forged token');
  await call('CreateProduct', { name: 'garbage' }, 'not.a.jwt', S.UNAUTHENTICATED, 'garbage');
});

check('create with an invalid product is INVALID_ARGUMENT', async () => {
  await call('CreateProduct', { name: '' }, USER, S.INVALID_ARGUMENT, 'empty name');
  await call('CreateProduct', { name: 'neg', price: -1 }, USER, S.INVALID_ARGUMENT, 'price < 0');
});

check('get returns the stored product; an unknown id is NOT_FOUND', async () => {
  const p = await create('JS Gettable', { price: 1.25, categories: ['a'] });
  assert.deepEqual(await call('GetProduct', { id: p.id }, null, S.OK, 'get'), p);
  await call('GetProduct', { id: MISSING_ID }, null, S.NOT_FOUND, 'get unknown');
  await call('GetProduct', { id: 'not-a-uuid' }, null, S.NOT_FOUND, 'get malformed id');
});

check('update without a mask replaces non-empty fields; with a mask exactly the named', async () => {
  const p = await create('JS Update', { description: 'keep', price: 3, categories: ['k'] });
  const u = await call('UpdateProduct', { id: p.id, name: 'JS Renamed' }, USER, S.OK, 'update');
  assert.equal(u.name, 'JS Renamed');
  assert.equal(u.description, 'keep', 'empty description without a mask keeps');
  assert.equal(u.price, 3, 'zero price without a mask keeps');
  const m = await call('UpdateProduct', {
    id: p.id, name: 'ignored', description: '', price: 0,
    update_mask: { paths: ['description', 'price'] },
  }, USER, S.OK, 'masked update');
  assert.equal(m.name, 'JS Renamed', 'name outside the mask stays');
  assert.equal(m.description, '', 'description cleared by the mask');
  assert.equal(m.price, 0, 'price set to 0 by the mask');
  assert.deepEqual(m.categories, ['k'], 'categories outside the mask stay');
  assert.deepEqual(await call('GetProduct', { id: p.id }, null, S.OK), m, 'stored after update');
});

check('update errors: bad mask path, unknown id, no token, invalid result', async () => {
  const p = await create('JS Update errors');
  await call('UpdateProduct', { id: p.id, name: 'x', update_mask: { paths: ['created_at'] } },
    USER, S.INVALID_ARGUMENT, 'mask path created_at');
  await call('UpdateProduct', { id: p.id, name: '', update_mask: { paths: ['name'] } },
    USER, S.INVALID_ARGUMENT, 'mask clearing the name');
  await call('UpdateProduct', { id: MISSING_ID, name: 'x' }, USER, S.NOT_FOUND, 'unknown id');
  await call('UpdateProduct', { id: p.id, name: 'x' }, null, S.UNAUTHENTICATED, 'no token');
  await call('UpdateProduct', { id: p.id, name: 'x' }, FORGED, S.UNAUTHENTICATED, 'forged');
  const got = await call('GetProduct', { id: p.id }, null, S.OK);
  assert.equal(got.name, 'JS Update errors', 'refused updates changed nothing');
});

check('delete needs role=admin; then the product is gone', async () => {
  const p = await create('JS Delete');
  await call('DeleteProduct', { id: p.id }, null, S.UNAUTHENTICATED, 'delete without token');
  await call('DeleteProduct', { id: p.id }, USER, S.PERMISSION_DENIED, 'delete as non-admin');
  await call('GetProduct', { id: p.id }, null, S.OK, 'still there after refused deletes');
  assert.deepEqual(await call('DeleteProduct', { id: p.id }, ADMIN, S.OK, 'delete as admin'), {});
  await call('GetProduct', { id: p.id }, null, S.NOT_FOUND, 'get after delete');
  await call('DeleteProduct', { id: p.id }, ADMIN, S.NOT_FOUND, 'second delete');
});

check('list pages continue exactly where the previous ended', async () => {
  const made = [];
  for (let i = 0; i < 7; i++) {
    made.push((await create('JS page ' + i, { price: 100 + i, categories: ['jspage'] })).id);
  }
  const flt = 'categories : "jspage"';
  const all = await call('ListProducts', { page_size: 7, filter: flt }, null, S.OK, 'one page');
  assert.deepEqual(all.products.map((p) => p.id), made, 'one page of 7 in creation order');
  assert.equal(all.next_page_token, '', 'no token after the last page');
  assert.equal(all.total_size, 7);
  const seen = [];
  const sizes = [];
  let token = '';
  for (let n = 0; n < 10; n++) {
    const r = await call('ListProducts', { page_size: 3, page_token: token, filter: flt }, null,
      S.OK, 'page ' + n);
    assert.equal(r.total_size, 7, 'total_size on page ' + n);
    sizes.push(r.products.length);
    seen.push(...r.products.map((p) => p.id));
    token = r.next_page_token;
    if (!token) break;
  }
  assert.deepEqual(sizes, [3, 3, 1], 'page sizes');
  assert.deepEqual(seen, made, 'pages joined = the one page');
  await call('ListProducts', { page_token: 'garbage', filter: flt }, null, S.INVALID_ARGUMENT,
    'forged page token');
  await call('ListProducts', { page_size: -1 }, null, S.INVALID_ARGUMENT, 'negative page size');
});

check('list filter selects exactly the matching products', async () => {
  const a = await create('JS Chair', { price: 25, categories: ['jsf', 'home'] });
  const b = await create('JS Lamp', { price: 2.5, categories: ['jsf', 'home', 'toys'] });
  const c = await create('JS Drum', { description: 'MUSIC', price: 40, categories: ['jsf'] });
  const ids = async (f) => (await call('ListProducts', { page_size: 50, filter: f }, null, S.OK,
    'filter ' + f)).products.map((p) => p.id);
  assert.deepEqual(await ids('categories : "jsf"'), [a.id, b.id, c.id]);
  assert.deepEqual(await ids('categories : "jsf" AND price > 10'), [a.id, c.id]);
  assert.deepEqual(await ids('categories : "jsf" AND NOT categories : "home"'), [c.id]);
  assert.deepEqual(await ids('name = "JS Lamp" OR description : "music"'), [b.id, c.id]);
  const r = await unary(product, 'ListProducts', { filter: 'categories : "jsf" AND bogus = 2' },
    null);
  expectStatus(r, S.INVALID_ARGUMENT, 'unknown field');
  assert.match(r.details, /offset 23/, 'the message names the byte offset');
});

check('raw HTTP/2: OK reply has headers, one message and grpc-status 0 in trailers', async () => {
  const p = await create('JS Raw', { price: 7 });
  const r = await rawCall('GetProduct', { id: p.id }, null);
  assert.equal(r.headers[':status'], 200);
  assert.match(r.headers['content-type'], /^application\/grpc/);
  if (CA) assert.equal(r.alpn, 'h2', 'ALPN');
  assert.ok(r.trailers, 'a trailers block after the message');
  assert.equal(r.trailers['grpc-status'], '0');
  assert.equal(r.trailers['grpc-status-details-bin'], undefined);
  assert.equal(r.messages.length, 1);
  assert.equal(r.messages[0].id, p.id);
});

check('raw HTTP/2: errors carry grpc-status and grpc-message, never status details', async () => {
  const cases = [
    ['GetProduct', { id: MISSING_ID }, null, S.NOT_FOUND],
    ['CreateProduct', { name: '' }, USER, S.INVALID_ARGUMENT],
    ['CreateProduct', { name: 'x' }, null, S.UNAUTHENTICATED],
    ['CreateProduct', { name: 'x' }, FORGED, S.UNAUTHENTICATED],
    ['DeleteProduct', { id: MISSING_ID }, USER, S.PERMISSION_DENIED],
    ['ListProducts', { filter: 'price ~ 1' }, null, S.INVALID_ARGUMENT],
  ];
  for (const [method, req, token, code] of cases) {
    const what = method + ' ' + JSON.stringify(req) + (token ? ' with a token' : '');
    const r = await rawCall(method, req, token);
    assert.equal(r.headers[':status'], 200, what);
    const st = rawStatus(r);
    assert.equal(st.status, String(code), what + ': grpc-status');
    assert.ok(st.message && st.message.length > 0, what + ': grpc-message');
    assert.ok(!/[^\x20-\x7e]/.test(st.message), what + ': grpc-message is not percent-encoded');
    assert.equal(st.block['grpc-status-details-bin'], undefined, what + ': status details');
    assert.equal(r.messages.length, 0, what + ': no message on an error');
  }
});

check('request id: a repeat returns the first product; a stale etag is ABORTED', async () => {
  const rid = crypto.randomUUID();
  const name = 'JS retry ' + rid.slice(0, 8);
  const first = await create(name, { request_id: rid, price: 2 });
  const again = await create(name, { request_id: rid, price: 2 });
  assert.deepEqual(again, first, 'the repeat returns the first product');
  await call('CreateProduct', { name, price: 3, request_id: rid }, USER, S.ALREADY_EXISTS,
    'the id with other fields');
  await call('CreateProduct', { name, request_id: 'not-a-uuid' }, USER, S.INVALID_ARGUMENT,
    'a request id that is not a UUID');
  assert.ok(first.etag && Buffer.byteLength(first.etag) <= 64, 'etag ' + first.etag);
  const u = await call('UpdateProduct', { id: first.id, price: 5, etag: first.etag }, USER, S.OK,
    'update with the current etag');
  assert.notEqual(u.etag, first.etag, 'the etag moved');
  await call('UpdateProduct', { id: first.id, price: 6, etag: first.etag }, USER, S.ABORTED,
    'update with a stale etag');
  await call('DeleteProduct', { id: first.id, etag: first.etag }, ADMIN, S.ABORTED,
    'delete with a stale etag');
  const now = await call('GetProduct', { id: first.id }, null, S.OK, 'get');
  assert.deepEqual(now, u, 'nothing changed by the refused writes');
  await call('DeleteProduct', { id: first.id, etag: u.etag }, ADMIN, S.OK, 'delete, current etag');
});

// A TCP proxy to the server that, while armed, cuts its connection when the
// first response HEADERS frame comes back from the server (the server sends
// them only once the call is done, after the commit): the client sees the
// connection drop with no answer, as when a replica restarts or a network
// path dies after a create committed.
function dropFirstResponseProxy() {
  const colon = ADDR.lastIndexOf(':');
  const host = ADDR.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(ADDR.slice(colon + 1));
  const state = { armed: true, dropped: 0, connections: 0 };
  const server = net.createServer((client) => {
    state.connections++;
    const upstream = net.connect(port, host);
    let pending = Buffer.alloc(0);
    client.on('data', (c) => upstream.write(c));
    upstream.on('data', (chunk) => {
      if (!state.armed) {
        client.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) { // whole frames only: 9-byte header + payload
        const len = pending.readUIntBE(0, 3);
        const type = pending[3];
        const stream = pending.readUInt32BE(5) & 0x7fffffff;
        if (pending.length < 9 + len) break;
        if (type === 0x1 && stream !== 0) { // HEADERS of a response
          state.armed = false;
          state.dropped++;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(pending.subarray(0, 9 + len));
        pending = pending.subarray(9 + len);
      }
    });
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    state.server = server;
    state.port = server.address().port;
    resolve(state);
  }));
}

// grpc-js retries CreateProduct on UNAVAILABLE by itself under this policy.
const RETRY_CONFIG = JSON.stringify({
  methodConfig: [{
    name: [{ service: 'product.ProductService', method: 'CreateProduct' }],
    retryPolicy: {
      maxAttempts: 3, initialBackoff: '0.1s', maxBackoff: '1s', backoffMultiplier: 2,
      retryableStatusCodes: ['UNAVAILABLE'],
    },
  }],
});

async function createThroughDroppingProxy(req) {
  const proxy = await dropFirstResponseProxy();
  const client = new pkg.product.ProductService('127.0.0.1:' + proxy.port, creds,
    { 'grpc.service_config': RETRY_CONFIG, 'grpc.enable_retries': 1 });
  try {
    const r = await unary(client, 'CreateProduct', req, USER);
    return { r, proxy };
  } finally {
    client.close();
    proxy.server.close();
  }
}

async function countNamed(name) {
  const r = await call('ListProducts', { filter: 'name = "' + name + '"' }, null, S.OK, 'list');
  return r.total_size;
}

plainCheck('a create retried by grpc-js after its answer was lost creates one product with a request id (two without)', async () => {
  // Without a request id the retry policy creates a second product: this is
  // what the proxy stages, and what request ids are for.
  const plain = 'JS lost answer ' + crypto.randomUUID().slice(0, 8);
  const a = await createThroughDroppingProxy({ name: plain });
  expectStatus(a.r, S.OK, 'the retried create without request id');
  assert.equal(a.proxy.dropped, 1, 'responses dropped');
  assert.ok(a.proxy.connections >= 2, 'the retry came on a new connection');
  assert.equal(await countNamed(plain), 2, 'products without a request id');
  // With one: the retry answers the product the first attempt created.
  const rid = crypto.randomUUID();
  const safe = 'JS lost answer ' + rid.slice(0, 8);
  const b = await createThroughDroppingProxy({ name: safe, price: 4, request_id: rid });
  const p = expectStatus(b.r, S.OK, 'the retried create with a request id');
  assert.equal(b.proxy.dropped, 1, 'responses dropped');
  assert.ok(b.proxy.connections >= 2, 'the retry came on a new connection');
  assert.equal(await countNamed(safe), 1, 'products with a request id');
  const stored = await call('GetProduct', { id: p.id }, null, S.OK, 'get');
  assert.deepEqual(stored, p, 'the reply is the stored product');
});

async function main() {
  console.log('# node ' + process.version + ', @grpc/grpc-js ' + version('@grpc/grpc-js') +
    ', @grpc/proto-loader ' + version('@grpc/proto-loader') + (CA ? ', TLS' : ', plaintext'));
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of checks) {
    try {
      await fn();
      passed++;
      console.log('ok   ' + name);
    } catch (e) {
      failed++;
      console.log('FAIL ' + name + ': ' + (e && e.stack ? e.stack : e));
    }
  }
  product.close();
  health.close();
  reflection.close();
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.log('FAIL main: ' + (e && e.stack ? e.stack : e));
  console.log('0 passed, 1 failed');
  process.exitCode = 1;
});
