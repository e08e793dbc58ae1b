// An OTLP/HTTP trace receiver on a free loopback port for tests: accepts
// POST /v1/traces in protobuf (decoded here from the wire format, without
// the exporter's own code) or JSON, and keeps every span, the raw bodies and
// the request headers.

import { gunzipSync } from 'node:zlib';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export type AttributeValue = string | number | boolean | AttributeValue[] | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 3 client. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttributeValue>;
  events: Array<{ name: string; attributes: Record<string, AttributeValue> }>;
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  resource: Record<string, AttributeValue>;
}

export interface OtlpReceiver {
  /** e.g. http://127.0.0.1:43210 (append /v1/traces for the signal URL). */
  url: string;
  spans: ReceivedSpan[];
  requests: Array<{ path: string; contentType: string; headers: IncomingHttpHeaders; body: Buffer }>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      // The body as sent, decompressed when it came gzipped (OTEL_EXPORTER_OTLP_COMPRESSION=gzip).
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const contentType = String(req.headers['content-type'] ?? '');
      requests.push({ path: req.url ?? '', contentType, headers: req.headers, body });
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      try {
        if (contentType.startsWith('application/x-protobuf')) {
          spans.push(...decodeProtobufRequest(body));
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(); // an empty ExportTraceServiceResponse
        } else if (contentType.startsWith('application/json')) {
          spans.push(...decodeJsonRequest(JSON.parse(body.toString('utf8'))));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else {
          res.writeHead(415).end();
        }
      } catch (error) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------
// JSON (OTLP/HTTP JSON: ids as hex, 64-bit integers as strings or numbers)

interface JsonKeyValue {
  key: string;
  value: JsonAnyValue;
}
interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
}

function jsonValue(v: JsonAnyValue): AttributeValue {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(jsonValue);
  return null;
}

function jsonAttributes(list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, jsonValue(kv.value)]));
}

function decodeJsonRequest(body: {
  resourceSpans?: Array<{
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        startTimeUnixNano: string | number;
        endTimeUnixNano: string | number;
        attributes?: JsonKeyValue[];
        events?: Array<{ name: string; attributes?: JsonKeyValue[] }>;
        status?: { code?: number; message?: string };
      }>;
    }>;
  }>;
}): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = jsonAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: jsonAttributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: jsonAttributes(e.attributes) })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
        });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Protobuf: the wire format (varint 0, fixed64 1, bytes 2, fixed32 5) and the
// fields of opentelemetry/proto/collector/trace/v1 that the tests read.

type Field = { wire: 0; value: bigint } | { wire: 1; value: Buffer } | { wire: 2; value: Buffer } | { wire: 5; value: Buffer };

function readVarint(buf: Buffer, at: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const byte = buf[at++];
    if (byte === undefined) throw new Error('truncated varint');
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, at];
    shift += 7n;
  }
}

/** The fields of one message, by number, in order. */
function fieldsOf(buf: Buffer): Map<number, Field[]> {
  const fields = new Map<number, Field[]>();
  let at = 0;
  while (at < buf.length) {
    const [key, next] = readVarint(buf, at);
    at = next;
    const number = Number(key >> 3n);
    const wire = Number(key & 7n);
    let field: Field;
    if (wire === 0) {
      const [value, after] = readVarint(buf, at);
      at = after;
      field = { wire: 0, value };
    } else if (wire === 1) {
      field = { wire: 1, value: buf.subarray(at, at + 8) };
      at += 8;
    } else if (wire === 2) {
      const [length, after] = readVarint(buf, at);
      field = { wire: 2, value: buf.subarray(after, after + Number(length)) };
      at = after + Number(length);
    } else if (wire === 5) {
      field = { wire: 5, value: buf.subarray(at, at + 4) };
      at += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
    const list = fields.get(number) ?? [];
    list.push(field);
    fields.set(number, list);
  }
  return fields;
}

const bytesOf = (f: Map<number, Field[]>, n: number): Buffer[] => (f.get(n) ?? []).filter((x) => x.wire === 2).map((x) => x.value as Buffer);
const firstBytes = (f: Map<number, Field[]>, n: number): Buffer | undefined => bytesOf(f, n)[0];
const stringOf = (f: Map<number, Field[]>, n: number): string => firstBytes(f, n)?.toString('utf8') ?? '';
const varintOf = (f: Map<number, Field[]>, n: number): bigint => {
  const field = (f.get(n) ?? []).find((x) => x.wire === 0);
  return field ? (field.value as bigint) : 0n;
};
const fixed64Of = (f: Map<number, Field[]>, n: number): bigint => {
  const field = (f.get(n) ?? []).find((x) => x.wire === 1);
  return field ? (field.value as Buffer).readBigUInt64LE(0) : 0n;
};

function anyValue(buf: Buffer): AttributeValue {
  const f = fieldsOf(buf);
  if (f.has(1)) return stringOf(f, 1);
  if (f.has(2)) return varintOf(f, 2) !== 0n;
  if (f.has(3)) return Number(BigInt.asIntN(64, varintOf(f, 3)));
  if (f.has(4)) return ((f.get(4) ?? [])[0]?.value as Buffer).readDoubleLE(0);
  if (f.has(5)) return bytesOf(fieldsOf(firstBytes(f, 5) as Buffer), 1).map(anyValue);
  return null;
}

function protoAttributes(list: Buffer[]): Record<string, AttributeValue> {
  return Object.fromEntries(
    list.map((kv) => {
      const f = fieldsOf(kv);
      const value = firstBytes(f, 2);
      return [stringOf(f, 1), value ? anyValue(value) : null];
    }),
  );
}

function decodeProtobufRequest(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rsBuf of bytesOf(fieldsOf(body), 1)) {
    const rs = fieldsOf(rsBuf);
    const resourceBuf = firstBytes(rs, 1);
    const resource = resourceBuf ? protoAttributes(bytesOf(fieldsOf(resourceBuf), 1)) : {};
    for (const ssBuf of bytesOf(rs, 2)) {
      for (const spanBuf of bytesOf(fieldsOf(ssBuf), 2)) {
        const s = fieldsOf(spanBuf);
        const statusBuf = firstBytes(s, 15);
        const status = statusBuf ? fieldsOf(statusBuf) : new Map<number, Field[]>();
        out.push({
          traceId: firstBytes(s, 1)?.toString('hex') ?? '',
          spanId: firstBytes(s, 2)?.toString('hex') ?? '',
          parentSpanId: firstBytes(s, 4)?.toString('hex') ?? '',
          name: stringOf(s, 5),
          kind: Number(varintOf(s, 6)),
          startNs: fixed64Of(s, 7),
          endNs: fixed64Of(s, 8),
          attributes: protoAttributes(bytesOf(s, 9)),
          events: bytesOf(s, 11).map((eventBuf) => {
            const e = fieldsOf(eventBuf);
            return { name: stringOf(e, 2), attributes: protoAttributes(bytesOf(e, 3)) };
          }),
          status: { code: Number(varintOf(status, 3)), message: stringOf(status, 2) },
          resource,
        });
      }
    }
  }
  return out;
}
