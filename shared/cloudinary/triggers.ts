import type { CloudinaryCredentials } from '../config.js';
import { FatalError, RetryableError } from '../errors.js';

/**
 * The Admin API's triggers endpoints (https://cloudinary.com/documentation/admin_api#triggers;
 * /work/shared/CLOUDINARY.md "Incremental listing, renames, webhooks"): `GET /triggers`,
 * `POST /triggers` with `uri` and `event_type`, `DELETE /triggers/<id>`. The Node SDK has no
 * method for them, so they are called directly with the Admin API's Basic authentication.
 */
export interface Trigger {
  id: string;
  uri: string;
  event_type: string;
}

/** A deadline of our own: an Admin call that never answers must not hang the command. */
const TIMEOUT_MS = 30_000;

export class TriggersClient {
  constructor(
    private readonly credentials: CloudinaryCredentials,
    private readonly fetcher: typeof fetch = fetch,
  ) {}

  async list(): Promise<Trigger[]> {
    const body = (await this.call('GET', '')) as { triggers?: Trigger[] };
    return body.triggers ?? [];
  }

  async create(uri: string, eventType: string): Promise<Trigger> {
    return (await this.call('POST', '', { uri, event_type: eventType })) as Trigger;
  }

  async remove(id: string): Promise<void> {
    await this.call('DELETE', `/${encodeURIComponent(id)}`);
  }

  private async call(method: string, path: string, body?: Record<string, string>): Promise<unknown> {
    const { apiOrigin, cloudName, apiKey, apiSecret } = this.credentials;
    const url = `${apiOrigin}/v1_1/${encodeURIComponent(cloudName)}/triggers${path}`;
    let answer: Response;
    try {
      answer = await this.fetcher(url, {
        method,
        headers: {
          authorization: `Basic ${Buffer.from(`${apiKey}:${apiSecret}`).toString('base64')}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new RetryableError(
        `the Cloudinary Admin API at ${apiOrigin} did not answer (${(error as Error).name}); try again`,
      );
    }
    const text = await answer.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      parsed = {};
    }
    if (!answer.ok) {
      const message = (parsed as { error?: { message?: unknown } }).error?.message;
      const reason = typeof message === 'string' ? message : `HTTP ${answer.status}`;
      const hint =
        answer.status === 401 || answer.status === 403
          ? ': check the API key and secret in CLOUDINARY_URL (the triggers API needs an Admin API key)'
          : '';
      throw new FatalError(
        `Cloudinary refused ${method} /triggers${path} (${answer.status}): ${reason}${hint}`,
      );
    }
    return parsed;
  }
}
