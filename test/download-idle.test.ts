import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchOriginal } from '../shared/cloudinary/download.js';
import { RetryableError } from '../shared/errors.js';
import type { SourceAsset } from '../shared/types.js';

const asset: SourceAsset = {
  assetId: 'a1',
  publicId: 'stalled',
  resourceType: 'image',
  deliveryType: 'upload',
  version: 1,
  format: 'jpg',
  bytes: 1_000_000,
  createdAt: '2024-01-01T00:00:00Z',
};

describe('a download whose server goes silent', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    // Sends the headers and a first part of the body, then nothing more (the socket stays open).
    server = createServer((_request, response) => {
      response.writeHead(200, { 'content-length': String(asset.bytes) });
      response.write(Buffer.alloc(64 * 1024, 1));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stalled.jpg`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fails as retryable after the idle time, with bytes already received, instead of waiting forever', async () => {
    const opened = await fetchOriginal(asset, url, {}, 300);
    let received = 0;
    const failure = await new Promise<unknown>((resolve) => {
      opened.stream.on('data', (chunk: Buffer) => (received += chunk.length));
      opened.stream.once('error', resolve);
      opened.stream.once('end', () => resolve(undefined));
    });

    expect(received).toBeGreaterThan(0);
    expect(failure).toBeInstanceOf(RetryableError);
    expect(String(failure)).toMatch(/no data for 300 ms/u);
  });
});

describe('a download cut off or read slowly', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((request, response) => {
      response.writeHead(200, { 'content-length': String(asset.bytes) });
      if (request.url === '/cut.jpg') {
        // Part of the body, then the connection is dropped.
        response.write(Buffer.alloc(64 * 1024, 2), () => response.socket?.destroy());
      } else {
        response.end(Buffer.alloc(asset.bytes, 3));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fails a body the server cut off as retryable, saying so', async () => {
    const opened = await fetchOriginal(asset, `${base}/cut.jpg`, {}, 10_000);
    const failure = await new Promise<unknown>((resolve) => {
      opened.stream.resume();
      opened.stream.once('error', resolve);
      opened.stream.once('end', () => resolve(undefined));
    });

    expect(failure).toBeInstanceOf(RetryableError);
    expect(String(failure)).toMatch(/download of image\/upload\/stalled v1: the body was cut off/u);
  });

  it('does not count a consumer that stops reading as server silence', async () => {
    const opened = await fetchOriginal(asset, `${base}/whole.jpg`, {}, 100);
    opened.stream.pause();
    // Eight idle times with nobody reading: the server sent its bytes, they wait in the buffers.
    await new Promise((resolve) => setTimeout(resolve, 800));
    let received = 0;
    const failure = await new Promise<unknown>((resolve) => {
      opened.stream.on('data', (chunk: Buffer) => (received += chunk.length));
      opened.stream.once('error', resolve);
      opened.stream.once('end', () => resolve(undefined));
      opened.stream.resume();
    });

    expect(failure).toBeUndefined();
    expect(received).toBe(asset.bytes);
  });
});
