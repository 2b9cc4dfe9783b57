import { createHash } from 'node:crypto';
import { request } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';

/** Helpers shared by the double's own tests. */

export function md5Hex(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Set when the connection failed mid-answer (reset, early close). */
  error?: Error;
}

/**
 * A GET through node:http that sends the path exactly as given (no URL normalisation) and reports
 * what arrived even when the connection breaks mid-body.
 */
export function rawGet(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  const path = url.slice(url.indexOf('/', url.indexOf('//') + 2));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let response: IncomingMessage | undefined;
    const finish = (error?: Error): void => {
      if (response === undefined) {
        reject(error ?? new Error('no response'));
        return;
      }
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        body: Buffer.concat(chunks),
        ...(error && { error }),
      });
    };
    const req = request({ hostname, port, path, method, headers, agent: false }, (res) => {
      response = res;
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => finish());
      res.on('error', (error) => finish(error));
    });
    // Node reports a broken connection on the request even once the answer has begun.
    req.on('error', (error) => finish(error));
    req.end();
  });
}

/** The rejection of an SDK call (which rejects with plain objects, not Errors). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

export async function fetchBytes(
  url: string,
  init?: RequestInit,
): Promise<{ response: Response; body: Buffer }> {
  const response = await fetch(url, init);
  return { response, body: Buffer.from(await response.arrayBuffer()) };
}
