import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BadRequest, DoubleHttpError, Unauthorized } from './errors.js';
import type { Library } from './Library.js';
import { deliveryUrl } from './render.js';
import type { DeliveryBase } from './render.js';
import { verifyApiSignature } from './signatures.js';
import type { DoubleAsset, ResourceType, UploadLimits } from './types.js';

/**
 * The signed Upload API, `POST /v1_1/<cloud>/<resource_type>/upload` (Cloudinary's Upload API reference,
 * https://cloudinary.com/documentation/image_upload_api_reference, and /work/shared/CLOUDINARY.md
 * "Uploading"): multipart/form-data, signed params (every field but file, cloud_name, resource_type,
 * api_key, sorted `k=v` joined by `&`, + api_secret, SHA-1 or SHA-256 hex), `timestamp` within an hour.
 * Chunked uploads as the SDKs' `upload_large`/`upload_chunked_stream` send them: the same signed params
 * on consecutive POSTs with `X-Unique-Upload-Id` and `Content-Range: bytes a-b/total` (`/-1` until the
 * last chunk, as the Node SDK writes it).
 */

/** Cloudinary answers a signed call whose timestamp is more than an hour off with "Stale request". */
const TIMESTAMP_WINDOW_SECONDS = 3600;
/** Fields never part of the signed string (CLOUDINARY.md, "Uploading"). */
const UNSIGNED_FIELDS = new Set(['file', 'cloud_name', 'resource_type', 'api_key', 'signature']);

/**
 * Defaults: Cloudinary's free plan (CLOUDINARY.md: 10 MB images and raw, 100 MB videos) and the
 * 100 MB a single request may carry before `upload_large` (chunked upload) is needed (cloudinary_npm
 * docs/upload-image.md "Size limits").
 */
export const FREE_PLAN_LIMITS: UploadLimits = {
  maxFileBytes: { image: 10 * 1024 * 1024, video: 100 * 1024 * 1024, raw: 10 * 1024 * 1024 },
  maxRequestBytes: 100 * 1024 * 1024,
};

interface Part {
  name: string;
  filename?: string;
  data: Buffer;
}

interface PendingUpload {
  chunks: Buffer[];
  received: number;
  fingerprint: string;
}

export interface UploadDeps {
  library: Library;
  base: DeliveryBase;
  apiKey: string;
  apiSecret: string;
  now: () => Date;
  limits: UploadLimits;
  /** Whether an existing asset kept by `overwrite=false` is flagged `existing: true` (see UploadOptions). */
  flagExisting: boolean;
}

/** Reads a request body, refusing one over `limit` bytes as Cloudinary's front end does (413). */
export function readUploadBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        if (!refused)
          reject(new DoubleHttpError(413, `Request too large (over ${limit} bytes): use a chunked upload`));
        refused = true;
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseMultipart(body: Buffer, contentType: string | undefined): Part[] {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2];
  if (!/^multipart\/form-data/i.test(contentType ?? '') || boundary === undefined) {
    throw new BadRequest('Upload must be multipart/form-data');
  }
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    const end = next < 0 ? body.length : next;
    const headerEnd = body.indexOf('\r\n\r\n', start);
    if (headerEnd < 0 || headerEnd > end) throw new BadRequest('Malformed multipart body');
    const headers = body.subarray(start, headerEnd).toString('utf8');
    const name = /name="([^"]*)"/i.exec(headers)?.[1];
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
    // Every part ends with CRLF before the next delimiter (the SDK's UploadStream writes it after the file).
    const dataEnd = end >= 2 && body.subarray(end - 2, end).toString() === '\r\n' ? end - 2 : end;
    const data = body.subarray(headerEnd + 4, Math.max(headerEnd + 4, dataEnd));
    if (name !== undefined) parts.push({ name, filename, data });
    if (next < 0) break;
    at = next;
  }
  return parts;
}

/** `k=v|k2=v2` with `\=` and `\|` escaped, as the SDK's `encode_context` writes context and metadata. */
export function decodePipeList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(/(?<!\\)\|/)) {
    if (pair === '') continue;
    const eq = pair.search(/(?<!\\)=/);
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    out[key.replace(/\\([=|])/g, '$1')] = value.replace(/\\([=|])/g, '$1');
  }
  return out;
}

/**
 * Structured metadata values are typed by their field's definition (integer fields answer numbers,
 * set fields arrays); the double has no field definitions, so it reads an integer as an integer field
 * and `["a","b"]` as a set field.
 */
function typedMetadata(raw: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (/^-?\d{1,15}$/.test(value)) out[key] = Number(value);
    else if (value.startsWith('[') && value.endsWith(']')) {
      out[key] = [...value.slice(1, -1).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) =>
        (m[1] ?? '').replace(/\\(.)/g, '$1'),
      );
    } else out[key] = value;
  }
  return out;
}

function parseContentRange(
  header: string | undefined,
): { start: number; end: number; total: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes (\d+)-(-?\d+)\/(-?\d+)$/.exec(header.trim());
  if (!match) throw new BadRequest(`Invalid Content-Range header: ${header}`);
  return { start: Number(match[1]), end: Number(match[2]), total: Number(match[3]) };
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** The Upload API's answer: the stored asset, with the etag (MD5) of its bytes. */
export async function uploadAnswer(
  deps: UploadDeps,
  asset: DoubleAsset,
  extra: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const url = deliveryUrl(deps.base, asset);
  return {
    asset_id: asset.asset_id,
    public_id: asset.public_id,
    version: asset.version,
    version_id: asset.version_id,
    ...(asset.width !== undefined && { width: asset.width, height: asset.height }),
    ...(asset.format !== undefined && { format: asset.format }),
    resource_type: asset.resource_type,
    created_at: asset.uploaded_at,
    tags: [...asset.tags],
    bytes: asset.bytes,
    type: asset.type,
    etag: await deps.library.md5Of(asset),
    placeholder: false,
    url,
    secure_url: url,
    asset_folder: asset.asset_folder,
    display_name: asset.display_name,
    // Upload answers nest custom context under `custom`.
    ...(Object.keys(asset.context).length > 0 && { context: { custom: { ...asset.context } } }),
    ...(Object.keys(asset.metadata).length > 0 && { metadata: { ...asset.metadata } }),
    ...extra,
  };
}

/** The Upload API state: chunked uploads in progress, keyed by X-Unique-Upload-Id. */
export class UploadApi {
  readonly #pending = new Map<string, PendingUpload>();

  constructor(private readonly deps: UploadDeps) {}

  /** Handles one POST; returns the JSON answer (intermediate chunks answer `{ done: false }`). */
  async handle(req: IncomingMessage, resourceType: ResourceType): Promise<Record<string, unknown>> {
    const { limits } = this.deps;
    const body = await readUploadBody(req, limits.maxRequestBytes + 64 * 1024);
    const parts = parseMultipart(body, req.headers['content-type']);
    const fields = new Map<string, string>();
    let file: Part | undefined;
    for (const part of parts) {
      if (part.name === 'file') file = part;
      else fields.set(part.name, part.data.toString('utf8'));
    }
    this.#verify(fields);
    if (file === undefined) throw new BadRequest('Missing required parameter - file');
    if (file.data.length > limits.maxRequestBytes) {
      throw new DoubleHttpError(
        413,
        `Request too large (over ${limits.maxRequestBytes} bytes): use a chunked upload`,
      );
    }

    const range = parseContentRange(header(req, 'content-range'));
    const uploadId = header(req, 'x-unique-upload-id');
    let content = file.data;
    if (range !== undefined) {
      if (uploadId === undefined) throw new BadRequest('Content-Range needs X-Unique-Upload-Id');
      const fingerprint = [...fields]
        .filter(([k]) => k !== 'timestamp' && k !== 'signature')
        .sort()
        .join('&');
      const pending = this.#pending.get(uploadId) ?? { chunks: [], received: 0, fingerprint };
      if (pending.fingerprint !== fingerprint)
        throw new BadRequest('Chunk parameters differ from the first chunk');
      if (range.start !== pending.received || range.end - range.start + 1 !== file.data.length) {
        throw new BadRequest(
          `Chunk out of order: expected bytes from ${pending.received}, got ${range.start}-${range.end}`,
        );
      }
      pending.chunks.push(file.data);
      pending.received += file.data.length;
      this.#checkSize(resourceType, pending.received);
      if (range.total < 0 || pending.received < range.total) {
        this.#pending.set(uploadId, pending);
        return { done: false, bytes_received: pending.received };
      }
      this.#pending.delete(uploadId);
      if (pending.received !== range.total)
        throw new BadRequest('Chunks do not add up to the announced total');
      content = Buffer.concat(pending.chunks);
    }
    this.#checkSize(resourceType, content.length);
    return this.#store(resourceType, fields, file, content);
  }

  #verify(fields: Map<string, string>): void {
    const { apiKey, apiSecret, now } = this.deps;
    if ((fields.get('api_key') ?? '') !== apiKey)
      throw new Unauthorized('Invalid api_key', 'Invalid api_key');
    const signed = new Map([...fields].filter(([name]) => !UNSIGNED_FIELDS.has(name)));
    if (!verifyApiSignature(signed, fields.get('signature') ?? '', apiSecret)) {
      // Cloudinary names the string it expected; the double does not (it would hold no secret, but stay terse).
      throw new Unauthorized('Invalid Signature', 'Invalid Signature');
    }
    const timestamp = Number(fields.get('timestamp'));
    if (!Number.isFinite(timestamp)) throw new BadRequest('Missing required parameter - timestamp');
    const age = now().getTime() / 1000 - timestamp;
    if (Math.abs(age) > TIMESTAMP_WINDOW_SECONDS) {
      throw new BadRequest(
        `Stale request - reported time is ${new Date(timestamp * 1000).toISOString()} which is more than 1 hour ago`,
      );
    }
  }

  #checkSize(resourceType: ResourceType, bytes: number): void {
    const max = this.deps.limits.maxFileBytes[resourceType];
    // Cloudinary's words for a file over the plan's limit.
    if (bytes > max) throw new BadRequest(`File size too large. Got ${bytes}. Maximum is ${max}.`);
  }

  async #store(
    resourceType: ResourceType,
    fields: Map<string, string>,
    file: Part,
    content: Buffer,
  ): Promise<Record<string, unknown>> {
    const { library } = this.deps;
    const type = fields.get('type') || 'upload';
    if (!['upload', 'private', 'authenticated'].includes(type)) throw new BadRequest(`Invalid type ${type}`);
    const publicId = fields.get('public_id') || md5(content).slice(0, 20);
    // Signed uploads overwrite by default (Upload API reference, `overwrite`).
    const overwrite = fields.get('overwrite') !== 'false' && fields.get('overwrite') !== '0';
    const existing = library.get(resourceType, type, publicId);
    if (existing !== undefined && !overwrite) {
      // "When false, return immediately if an asset with the same public ID was found": unchanged.
      return uploadAnswer(this.deps, existing, this.deps.flagExisting ? { existing: true } : {});
    }
    // Cloudinary detects the format from the bytes; the double's bytes are opaque, so it takes the file name's extension.
    const dot = (file.filename ?? '').lastIndexOf('.');
    const format =
      resourceType === 'raw' || dot < 0 ? undefined : (file.filename ?? '').slice(dot + 1).toLowerCase();
    const tags = (fields.get('tags') ?? '').split(',').filter((t) => t !== '');
    const asset = library.upload(
      {
        publicId,
        resourceType,
        type,
        ...(format !== undefined && { format }),
        tags,
        context: decodePipeList(fields.get('context') ?? ''),
        metadata: typedMetadata(decodePipeList(fields.get('metadata') ?? '')),
      },
      content,
    );
    return uploadAnswer(this.deps, asset);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
