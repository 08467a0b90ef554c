'use strict';
// The caller side of test_tracing.py: grpc-js calls product-server inside
// CLIENT spans of the OpenTelemetry JS SDK (BasicTracerProvider), whose W3C
// propagator writes the traceparent metadata, the way an instrumented
// service in front of product-server does. Independent of the server: its
// ids, its propagator, its HTTP/2.
//
//   PRODUCT_ADDR, PRODUCT_TOKEN, PRODUCT_PROTO_DIR, PRODUCT_SLOW
// Prints one "call {json}" line per call (method, code, the client span's
// ids, the traceparent sent) and one "clientspan {json}" per finished SDK
// span, then "done".

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const api = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const {
  BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor,
} = require('@opentelemetry/sdk-trace-base');

const ADDR = process.env.PRODUCT_ADDR;
const TOKEN = process.env.PRODUCT_TOKEN;
const SLOW = Number(process.env.PRODUCT_SLOW || '1');
const fs = require('node:fs');
const includeDirs = [process.env.PRODUCT_PROTO_DIR, '/usr/include'].filter((d) => d && fs.existsSync(d));
const defs = protoLoader.loadSync(['product.proto'],
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs });
const pkg = grpc.loadPackageDefinition(defs);
const product = new pkg.product.ProductService(ADDR, grpc.credentials.createInsecure());

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('product-service-tests');
const propagator = new W3CTraceContextPropagator();

function call(method, req, token) {
  const span = tracer.startSpan('product.ProductService/' + method, {
    kind: api.SpanKind.CLIENT,
    attributes: { 'rpc.system': 'grpc', 'rpc.service': 'product.ProductService', 'rpc.method': method },
  });
  const ctx = api.trace.setSpan(api.ROOT_CONTEXT, span);
  const carrier = {};
  propagator.inject(ctx, carrier, api.defaultTextMapSetter);
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(carrier)) md.add(k, v);
  if (token) md.add('authorization', 'Bearer ' + token);
  return new Promise((resolve) => {
    product[method](req, md, { deadline: Date.now() + 10000 * SLOW }, (err, resp) => {
      const code = err ? err.code : grpc.status.OK;
      if (code !== grpc.status.OK) span.setStatus({ code: api.SpanStatusCode.ERROR });
      span.setAttribute('rpc.grpc.status_code', code);
      span.end();
      const sc = span.spanContext();
      const line = { method, code, traceId: sc.traceId, spanId: sc.spanId,
        traceparent: carrier.traceparent || '', response: resp || null };
      process.stdout.write('call ' + JSON.stringify(line) + '\n');
      resolve(line);
    });
  });
}

(async () => {
  const created = await call('CreateProduct', { name: 'traced widget', price: 3.5 }, TOKEN);
  const id = created.response ? created.response.id : 'missing';
  await call('GetProduct', { id }, TOKEN);
  await call('CreateProduct', { name: 'anonymous' }, null); // refused: no token
  for (const s of exporter.getFinishedSpans()) {
    process.stdout.write('clientspan ' + JSON.stringify({
      name: s.name, kind: s.kind, traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId, parentSpanId: s.parentSpanId || '',
    }) + '\n');
  }
  process.stdout.write('done\n');
  product.close();
})().catch((e) => {
  process.stdout.write('error ' + String(e && e.stack) + '\n');
  process.exit(1);
});
