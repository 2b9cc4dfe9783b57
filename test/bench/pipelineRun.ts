import type { AwsClients } from '../../shared/aws/clients.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from '../double/index.js';
import { runChild } from './backupRuns.js';
import type { TransferDone } from './children/protocol.js';
import type { BenchContext } from './context.js';
import { freshAwsResources } from './support/awsBed.js';
import { adminCallFloor, originalUrls, totalBytes, warmEtags } from './support/library.js';
import { RequestMeter, type MeterReading } from './support/requestMeter.js';
import { pipelineWorkload } from './workloads.js';

/** The cycle's shape, as deployed by default: 2 invocations at a time here, 8 messages each, 4 assets at once. */
export const PIPELINE_WORKERS = 2;
export const PIPELINE_BATCH_SIZE = 8;
export const PIPELINE_CONCURRENCY = 4;

/** One `runCycle` measured: wall time, what it copied, and every AWS request it made. */
export interface CycleMeasurement {
  seconds: number;
  /** From the start of the cycle until the enumerate invocation returned. */
  enumerateSeconds: number;
  replicated: number;
  failed: number;
  retried: number;
  invocations: { enumerate: number; replicate: number };
  aws: MeterReading;
  adminCalls: number;
  servedBytes: number;
  /** CPU of the bench process (our code and the double share it), seconds. */
  cpuSeconds: number;
}

export interface PipelineRun {
  label: string;
  assets: number;
  bytes: number;
  adminFloor: number;
  baseline: TransferDone;
  full: CycleMeasurement;
  noChange: CycleMeasurement;
  /** False when the handlers built new clients mid-run (engine cache expiry), so counts miss some requests. */
  meterComplete: boolean;
}

async function measureCycle(
  double: CloudinaryDouble,
  meter: RequestMeter,
  clients: AwsClients,
): Promise<CycleMeasurement> {
  const { runCycle } = await import('../../functions/cycle.js');
  meter.reset();
  double.counters.reset();
  const cpu = process.cpuUsage();
  const started = performance.now();
  let enumerateSeconds = 0;
  const summary = await runCycle({
    clients,
    workers: PIPELINE_WORKERS,
    batchSize: PIPELINE_BATCH_SIZE,
    onEvent: (event) => {
      if (event.kind === 'enumerated') enumerateSeconds = (performance.now() - started) / 1000;
    },
  });
  const used = process.cpuUsage(cpu);
  const counters = summary.run?.counters;
  return {
    seconds: (performance.now() - started) / 1000,
    enumerateSeconds,
    replicated: counters?.replicated ?? 0,
    failed: counters?.failed ?? 0,
    retried: summary.retried,
    invocations: summary.invocations,
    aws: meter.read(),
    adminCalls: double.counters.adminCalls,
    servedBytes: double.counters.deliveryBytes + double.counters.downloadBytes,
    cpuSeconds: (used.user + used.system) / 1e6,
  };
}

/**
 * The whole pipeline from this machine (`runCycle`: the enumerate and replicate handlers) into S3,
 * DynamoDB and SQS on moto, with every AWS request of the handlers' clients counted and timed; then
 * a second cycle with nothing changed.
 */
export function pipelineRun(context: BenchContext): Promise<PipelineRun> {
  return context.shared('pipelineRun', async () => {
    const workload = pipelineWorkload(context.mode);
    const library = generateLibrary(workload.library);
    const double = await startCloudinaryDouble({ library, rateLimitPerHour: 1_000_000 });
    try {
      const bytes = totalBytes(library);
      context.log(`pipeline: ${library.size} assets, ${(bytes / 1e6).toFixed(0)} MB into moto`);
      await warmEtags(library);
      // The plain client into S3 on the same moto (then reset, so the pipeline starts empty).
      const urls = await originalUrls(double);
      const baselineBed = await freshAwsResources();
      const baseline = await runChild(
        context,
        'baselineS3Client.ts',
        {
          urls,
          endpoint: baselineBed.endpoint,
          bucket: baselineBed.bucket,
          concurrency: PIPELINE_WORKERS * PIPELINE_CONCURRENCY,
        },
        'baseline-s3-pipeline',
      );
      const aws = await freshAwsResources();
      Object.assign(process.env, {
        CLOUDINARY_URL: double.cloudinaryUrl,
        BUCKET_NAME: aws.bucket,
        TABLE_NAME: aws.table,
        QUEUE_URL: aws.queueUrl,
        DLQ_URL: aws.dlqUrl,
        WORKER_CONCURRENCY: String(PIPELINE_CONCURRENCY),
        POWERTOOLS_LOG_LEVEL: 'ERROR',
        POWERTOOLS_METRICS_DISABLED: 'true',
      });
      delete process.env.CLOUDINARY_SECRET_ID;
      // The handlers take their engine (and its AWS clients) from this cache: meter those clients.
      const { cachedAwsEngine } = await import('../../shared/aws/engineFromEnv.js');
      const engine = await cachedAwsEngine();
      const meter = new RequestMeter();
      meter.attach(engine.clients);

      const full = await measureCycle(double, meter, engine.clients);
      context.log(`  full cycle ${full.seconds.toFixed(1)} s`);
      const noChange = await measureCycle(double, meter, engine.clients);
      context.log(`  no-change cycle ${noChange.seconds.toFixed(1)} s`);
      const meterComplete = meter.isAttached((await cachedAwsEngine()).clients);
      return {
        label: workload.label,
        assets: library.size,
        bytes,
        adminFloor: adminCallFloor(library),
        baseline,
        full,
        noChange,
        meterComplete,
      };
    } finally {
      await double.close();
    }
  });
}
