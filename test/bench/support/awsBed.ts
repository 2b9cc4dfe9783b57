import { readdirSync, readFileSync } from 'node:fs';
import { createAwsClients, type AwsClients } from '../../../shared/aws/clients.js';
import { provisionAwsResources } from '../../support/awsResources.js';
import { resetMoto, startMoto, type MotoServer } from '../../support/moto.js';

/** One bucket, state table, work queue and DLQ on the bench's moto_server. */
export interface AwsResources {
  endpoint: string;
  bucket: string;
  table: string;
  queueUrl: string;
  dlqUrl: string;
}

/** Dummy credentials and the endpoint, the standard way (AWS_ENDPOINT_URL), for this process and its children. */
export function motoEnvironment(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
  };
}

let moto: MotoServer | undefined;

/** The bench's own moto_server, started on first use; `stopBenchMoto` ends it. */
export async function benchMoto(): Promise<MotoServer> {
  moto ??= await startMoto();
  return moto;
}

/** The pid of the moto_server this process started (found in /proc), for sampling its memory. */
export function benchMotoPid(): number | undefined {
  if (moto === undefined) return undefined;
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/u.test(name))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('moto_locked.py')) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

export async function stopBenchMoto(): Promise<void> {
  const running = moto;
  moto = undefined;
  await running?.stop();
}

/**
 * Forgets everything moto holds (its objects live in its memory), then creates a versioned
 * bucket, the state table and a work queue with its DLQ, as the stack does.
 */
export async function freshAwsResources(maxReceives = 5): Promise<AwsResources> {
  const { endpoint } = await benchMoto();
  await resetMoto(endpoint);
  Object.assign(process.env, motoEnvironment(endpoint));
  delete process.env.AWS_PROFILE;
  const clients: AwsClients = createAwsClients();
  const { bucket, table, queueUrl, dlqUrl } = await provisionAwsResources(clients, {
    prefix: 'bench',
    maxReceives,
    visibilityTimeout: 60,
  });
  for (const client of Object.values(clients)) client.destroy();
  return { endpoint, bucket, table, queueUrl, dlqUrl };
}
