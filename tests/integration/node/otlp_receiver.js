'use strict';
// An independent OTLP/HTTP trace receiver for the integration tests: it
// decodes what product-server posts with the OpenTelemetry JS packages' own
// protobuf messages (@opentelemetry/otlp-transformer's generated root, built
// from the upstream .proto files), sharing nothing with the server's
// protobuf-c encoder.
//
// Configured by environment:
//   OTLP_RECEIVER_MODE   ok (default): 200 and an ExportTraceServiceResponse;
//                        hang: read the request, never answer (a slow collector);
//                        error: 503 (a collector that refuses)
//   OTLP_RECEIVER_QUIET  1: decode and count only (bench/), print the totals
//                        at SIGTERM
// Prints "listening PORT" once bound, then one line per span:
//   span {"traceId": hex, "spanId": hex, "parentSpanId": hex or "", "name", "kind",
//         "traceState", "attributes": {k: v}, "status": {"code", "message"},
//         "resource": {k: v}, "scope", "start", "end", "contentType", "path"}
// and "request N spans" per POST; exits on SIGTERM.

const http = require('node:http');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const v1 = root.opentelemetry.proto.collector.trace.v1;
const MODE = process.env.OTLP_RECEIVER_MODE || 'ok';
const QUIET = process.env.OTLP_RECEIVER_QUIET === '1';
let totalSpans = 0;
let totalRequests = 0;
const hex = (b) => Buffer.from(b || []).toString('hex');

function anyValue(v) {
  if (!v) return null;
  if (v.stringValue !== undefined && v.stringValue !== null) return v.stringValue;
  if (v.intValue !== undefined && v.intValue !== null) return Number(v.intValue);
  if (v.boolValue !== undefined && v.boolValue !== null) return v.boolValue;
  if (v.doubleValue !== undefined && v.doubleValue !== null) return v.doubleValue;
  return null;
}

function attrs(list) {
  const out = {};
  for (const kv of list || []) out[kv.key] = anyValue(kv.value);
  return out;
}

const held = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let msg;
    try {
      msg = v1.ExportTraceServiceRequest.decode(body);
    } catch (e) {
      process.stdout.write('undecodable ' + JSON.stringify(String(e)) + '\n');
      res.writeHead(400);
      res.end();
      return;
    }
    let n = 0;
    totalRequests++;
    for (const rs of msg.resourceSpans || []) {
      const resource = attrs(rs.resource && rs.resource.attributes);
      for (const ss of rs.scopeSpans || []) {
        for (const s of ss.spans || []) {
          n++;
          totalSpans++;
          if (QUIET) continue;
          const line = {
            traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId),
            name: s.name, kind: s.kind, traceState: s.traceState || '',
            attributes: attrs(s.attributes),
            status: { code: (s.status && s.status.code) || 0, message: (s.status && s.status.message) || '' },
            resource, scope: ss.scope ? ss.scope.name : '',
            start: String(s.startTimeUnixNano), end: String(s.endTimeUnixNano),
            contentType: req.headers['content-type'] || '', path: req.url,
            testHeader: req.headers['x-test-header'] || '',
          };
          process.stdout.write('span ' + JSON.stringify(line) + '\n');
        }
      }
    }
    if (!QUIET) process.stdout.write('request ' + n + ' spans\n');
    if (MODE === 'hang') {
      held.push(res); // never answered: the server's timeout must end it
      return;
    }
    if (MODE === 'error') {
      res.writeHead(503);
      res.end();
      return;
    }
    const out = v1.ExportTraceServiceResponse.encode(v1.ExportTraceServiceResponse.create({})).finish();
    res.writeHead(200, { 'content-type': 'application/x-protobuf' });
    res.end(Buffer.from(out));
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write('listening ' + server.address().port + '\n');
});
process.on('SIGTERM', () => {
  if (QUIET) process.stdout.write('received ' + totalSpans + ' spans in ' + totalRequests + ' requests\n');
  for (const r of held) r.destroy();
  server.close();
  process.exit(0);
});
