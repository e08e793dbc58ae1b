// Whether a run exports OpenTelemetry traces, and over which OTLP/HTTP
// encoding (DESIGN.md §8), from `--otel` and the standard variables.
//
// In:  the --otel flag and the environment.  Out: TraceSettings, or a
// ConfigError for a protocol we cannot speak. Pure and light: the OTel
// packages are loaded (traces.ts) only when this says tracing is on.
// Where the spans go (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS,
// _TIMEOUT, _COMPRESSION, certificates) and batching (OTEL_BSP_*), sampling
// (OTEL_TRACES_SAMPLER) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) are read by the OTel SDK itself, as everywhere.

import { ConfigError } from '../shared/errors.js';

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export type TraceSettings =
  | { enabled: false }
  | {
      enabled: true;
      protocol: OtlpProtocol;
      /** What turned it on, for the start-up line. */
      because: '--otel' | 'OTEL_TRACES_EXPORTER' | 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
      /** Where the spans go, for messages (the SDK resolves the same from the same variables). */
      endpoint: string;
    };

/** The OTLP/HTTP default when no endpoint is set (the specification's). */
export const DEFAULT_OTLP_TRACES_URL = 'http://localhost:4318/v1/traces';

/**
 * On with `--otel`; else with OTEL_TRACES_EXPORTER naming `otlp`, or with an
 * OTLP endpoint variable set (unless OTEL_TRACES_EXPORTER says otherwise,
 * e.g. `none`, or OTEL_SDK_DISABLED=true). The protocol is
 * OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else
 * http/protobuf (the specification's default); grpc is refused.
 */
export function traceSettings(otelFlag: boolean, env: Record<string, string | undefined>): TraceSettings {
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  let because: Extract<TraceSettings, { enabled: true }>['because'] | null = null;
  if (otelFlag) because = '--otel';
  else if (value('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { enabled: false };
  else {
    const exporters = value('OTEL_TRACES_EXPORTER')
      ?.split(',')
      .map((e) => e.trim().toLowerCase());
    if (exporters !== undefined) {
      if (!exporters.includes('otlp')) return { enabled: false };
      because = 'OTEL_TRACES_EXPORTER';
    } else if (value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined) because = 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
    else if (value('OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined) because = 'OTEL_EXPORTER_OTLP_ENDPOINT';
  }
  if (because === null) return { enabled: false };

  const protocolVariable = value('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = value(protocolVariable) ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new ConfigError(`Expected \`${protocolVariable}\` to be http/protobuf or http/json (traces go over OTLP/HTTP), got \`${protocol}\``);
  }
  const specific = value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const general = value('OTEL_EXPORTER_OTLP_ENDPOINT');
  const endpoint = specific ?? (general !== undefined ? `${general.replace(/\/+$/, '')}/v1/traces` : DEFAULT_OTLP_TRACES_URL);
  return { enabled: true, protocol: protocol as OtlpProtocol, because, endpoint };
}
