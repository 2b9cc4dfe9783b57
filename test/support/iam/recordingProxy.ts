import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One HTTP request an AWS SDK sent, as it went over the wire. */
export interface WireRequest {
  /** Who sent it: the label set with `actAs`, or the one registered for its access key. */
  principal: string;
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The body of non-S3 requests (JSON or form-encoded API calls); S3 bodies are not kept. */
  body?: string;
  /** From the SigV4 credential scope: access key, region and service signing name. */
  accessKeyId?: string;
  region?: string;
  service?: string;
}

export interface RecordingProxy {
  /** Point AWS_ENDPOINT_URL here. */
  endpoint: string;
  requests: WireRequest[];
  /** Attributes the requests from now on to `principal` (for handlers run in this process). */
  actAs(principal: string): void;
  /** Attributes every request signed with `accessKeyId` to `principal` (for child processes). */
  registerAccessKey(accessKeyId: string, principal: string): void;
  close(): Promise<void>;
}

const CREDENTIAL = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/u;

/**
 * A pass-through proxy in front of moto that records every request: moto does not enforce IAM,
 * so the IAM contract test evaluates what was recorded here against the template's policies.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const requests: WireRequest[] = [];
  const keys = new Map<string, string>();
  let current = 'unattributed';

  const server = createServer((incoming, outgoing) => {
    const auth = String(incoming.headers.authorization ?? '');
    const scope = CREDENTIAL.exec(auth);
    const record: WireRequest = {
      principal: (scope && keys.get(scope[1] as string)) ?? current,
      method: incoming.method ?? 'GET',
      url: incoming.url ?? '/',
      headers: incoming.headers,
      accessKeyId: scope?.[1],
      region: scope?.[2],
      service: scope?.[3],
    };
    requests.push(record);
    const keepBody = record.service !== 's3';
    const chunks: Buffer[] = [];
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forward.on('error', (error) => {
      if (!outgoing.headersSent) outgoing.writeHead(502);
      outgoing.end(String(error.message));
    });
    incoming.on('data', (chunk: Buffer) => {
      if (keepBody) chunks.push(chunk);
      forward.write(chunk);
    });
    incoming.on('end', () => {
      if (keepBody) record.body = Buffer.concat(chunks).toString('utf8');
      forward.end();
    });
    incoming.on('error', () => forward.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    actAs(principal) {
      current = principal;
    },
    registerAccessKey(accessKeyId, principal) {
      keys.set(accessKeyId, principal);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
