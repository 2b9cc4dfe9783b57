import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';

type StructuredResult = Exclude<LambdaFunctionURLResult, string>;

/** Text content types a function URL passes as a string; anything else arrives base64-encoded. */
const TEXT_TYPES = /^(text\/|application\/(json|xml|x-www-form-urlencoded|javascript))/u;

export interface FunctionUrl {
  url: string;
  close(): Promise<void>;
}

/**
 * A Lambda function URL on 127.0.0.1: each HTTP request becomes the payload-format-2.0 event a
 * function URL sends (lower-case headers, the body as text or base64), the function's result the
 * HTTP answer, and a failed invocation a 502, as AWS answers it.
 */
export async function startFunctionUrl(
  invoke: (event: LambdaFunctionURLEvent) => Promise<LambdaFunctionURLResult | undefined>,
): Promise<FunctionUrl> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const [path = '/', query = ''] = (req.url ?? '/').split('?');
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
      }
      const text = TEXT_TYPES.test(headers['content-type'] ?? '');
      const now = new Date();
      const event: LambdaFunctionURLEvent = {
        version: '2.0',
        routeKey: '$default',
        rawPath: path,
        rawQueryString: query,
        headers,
        requestContext: {
          accountId: 'anonymous',
          apiId: 'local',
          domainName: headers.host ?? '127.0.0.1',
          domainPrefix: 'local',
          http: {
            method: req.method ?? 'GET',
            path,
            protocol: 'HTTP/1.1',
            sourceIp: '127.0.0.1',
            userAgent: headers['user-agent'] ?? '',
          },
          requestId: `${now.getTime()}-${Math.random().toString(16).slice(2)}`,
          routeKey: '$default',
          stage: '$default',
          time: now.toUTCString(),
          timeEpoch: now.getTime(),
        },
        ...(raw.length > 0 ? { body: text ? raw.toString('utf8') : raw.toString('base64') } : {}),
        isBase64Encoded: raw.length > 0 && !text,
      };
      invoke(event).then(
        (answer) => {
          // A function may return a bare string: a 200 with that body.
          const result: StructuredResult | undefined = typeof answer === 'string' ? { body: answer } : answer;
          res.writeHead(result?.statusCode ?? 200, (result?.headers ?? {}) as Record<string, string>);
          res.end(result?.body ?? '');
        },
        () => {
          res.writeHead(502).end('{"Message":"Internal Server Error"}');
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
