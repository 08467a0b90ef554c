'use strict';
// The rate limits seen from @grpc/grpc-js (Node's own HTTP/2, no code shared
// with the gRPC C core): the retry guidance trailers arrive and decode, and
// honouring the advertised wait lets the next call through. Run by
// test_rate_limit.py against a server started with
//   --rate-limit read=0.2/s:2,write=0.001/s:2 --auth-failure-limit 0.001/s:2
// Environment: PRODUCT_ADDR, PRODUCT_PROTO_DIR (the repo's proto/),
// PRODUCT_ALICE_TOKEN and PRODUCT_BOB_TOKEN (valid, two subs),
// PRODUCT_FORGED_TOKEN (signed with a secret the server does not know),
// PRODUCT_SLOW (deadline multiplier). Prints "ok NAME" / "FAIL NAME: why"
// per check and "N passed, N failed".

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
// protobufjs is what @grpc/proto-loader is built on: take that very copy.
const protobuf = require(require.resolve('protobufjs', {
  paths: [path.dirname(require.resolve('@grpc/proto-loader'))],
}));

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error('environment variable ' + name + ' is not set');
  return v;
};

const ADDR = env('PRODUCT_ADDR');
const PROTO_DIR = env('PRODUCT_PROTO_DIR');
const FORGED = env('PRODUCT_FORGED_TOKEN');
const ALICE = env('PRODUCT_ALICE_TOKEN');
const BOB = env('PRODUCT_BOB_TOKEN');
const SLOW = Number(process.env.PRODUCT_SLOW || '1');
const CALL_MS = 10000 * SLOW;
const GUARD = 60; // calls at most before a limit must answer
const S = grpc.status;

const includeDirs = [PROTO_DIR, '/usr/include'].filter((d) => fs.existsSync(d));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(['product.proto'], {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs,
}));
const product = new pkg.product.ProductService(ADDR, grpc.credentials.createInsecure());

// google.rpc.Status and RetryInfo from the repo's own protos.
const rich = new protobuf.Root();
rich.resolvePath = (origin, target) => {
  for (const d of includeDirs) {
    const p = path.join(d, target);
    if (fs.existsSync(p)) return p;
  }
  return target;
};
rich.loadSync(['google/rpc/status.proto', 'google/rpc/retry_info.proto'], { keepCase: true });
const Status = rich.lookupType('google.rpc.Status');
const RetryInfo = rich.lookupType('google.rpc.RetryInfo');

function unary(method, req, token) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    if (token) md.add('authorization', 'Bearer ' + token);
    const call = product[method](req, md, { deadline: Date.now() + CALL_MS }, () => {});
    call.on('status', (st) => resolve({ code: st.code, details: st.details, trailers: st.metadata }));
  });
}

// Both trailers of a RESOURCE_EXHAUSTED, checked against each other and the
// status; returns the wait in ms.
function guidance(r) {
  assert.equal(r.code, S.RESOURCE_EXHAUSTED, 'code');
  const pushback = r.trailers.get('grpc-retry-pushback-ms');
  assert.equal(pushback.length, 1, 'one grpc-retry-pushback-ms');
  const ms = Number(pushback[0]);
  assert.ok(Number.isInteger(ms) && ms >= 1, 'pushback ' + pushback[0]);
  const bin = r.trailers.get('grpc-status-details-bin');
  assert.equal(bin.length, 1, 'one grpc-status-details-bin');
  const st = Status.toObject(Status.decode(bin[0]), { longs: Number });
  assert.equal(st.code, S.RESOURCE_EXHAUSTED, 'google.rpc.Status.code');
  assert.equal(st.message, r.details, 'google.rpc.Status.message');
  assert.equal(st.details.length, 1, 'one detail');
  assert.equal(st.details[0].type_url, 'type.googleapis.com/google.rpc.RetryInfo');
  const info = RetryInfo.toObject(RetryInfo.decode(st.details[0].value), { longs: Number });
  const delay = (info.retry_delay.seconds || 0) * 1000 + (info.retry_delay.nanos || 0) / 1e6;
  assert.equal(delay, ms, 'RetryInfo.retry_delay == grpc-retry-pushback-ms');
  assert.match(r.details, new RegExp('retry in ' + ms + ' ms$'));
  return ms;
}

const checks = [];
function check(name, fn) { checks.push({ name, fn }); }

// First: the checks below spend the address's failed-authentication budget,
// after which tokens the server has not seen yet are refused.
check('two callers do not share a bucket', async () => {
  const create = { name: 'js', price: 1 };
  for (let i = 0; i < 2; i++) {
    assert.equal((await unary('CreateProduct', create, ALICE)).code, S.OK, 'alice #' + i);
  }
  const r = await unary('CreateProduct', create, ALICE);
  assert.match(r.details, /^rate limit exceeded for write; retry in \d+ ms$/);
  guidance(r);
  assert.equal((await unary('CreateProduct', create, BOB)).code, S.OK, 'bob has his own bucket');
});

check('forged tokens beyond the budget get RESOURCE_EXHAUSTED with retry guidance', async () => {
  const create = { name: 'js', price: 1 };
  for (let i = 0; i < 2; i++) {
    assert.equal((await unary('CreateProduct', create, FORGED)).code, S.UNAUTHENTICATED);
  }
  const r = await unary('CreateProduct', create, FORGED);
  assert.match(r.details, /^too many failed authentications; retry in \d+ ms$/);
  guidance(r);
});

let publicAt = 0; // when the public call took the first read token
check('a public call from the throttled address is served', async () => {
  publicAt = Date.now();
  assert.equal((await unary('GetProduct', { id: 'none' })).code, S.NOT_FOUND);
});

check('a read burst is refused and the advertised wait lets the next call through', async () => {
  let served = 0;
  let r = null;
  for (let i = 0; i < GUARD; i++) {
    r = await unary('GetProduct', { id: 'none' });
    if (r.code === S.RESOURCE_EXHAUSTED) break;
    assert.equal(r.code, S.NOT_FOUND);
    served++;
  }
  assert.equal(r.code, S.RESOURCE_EXHAUSTED, 'no refusal within ' + GUARD + ' calls');
  // Burst 2, one token taken by the public call; and what came back at
  // 0.2 a second meanwhile, however slow the machine.
  const refilled = Math.ceil(((Date.now() - publicAt) / 1000) * 0.2);
  assert.ok(served >= 1 && served <= 1 + refilled,
            `${served} served, want 1 (+${refilled} refilled)`);
  assert.match(r.details, /^rate limit exceeded for read; retry in \d+ ms$/);
  const ms = guidance(r);
  await new Promise((res) => setTimeout(res, ms));
  assert.equal((await unary('GetProduct', { id: 'none' })).code, S.NOT_FOUND, 'after the wait');
});

(async () => {
  let passed = 0;
  let failed = 0;
  for (const c of checks) {
    try {
      await c.fn();
      passed++;
      console.log('ok ' + c.name);
    } catch (e) {
      failed++;
      console.log('FAIL ' + c.name + ': ' + (e && e.message));
    }
  }
  console.log(passed + ' passed, ' + failed + ' failed');
  product.close();
  process.exit(failed ? 1 : 0);
})();
