import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCAL_CONTROL_DIR } from '../../shared/constants.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from '../double/index.js';
import { differencesFromLibrary } from '../support/backupBed.js';
import type { BenchContext } from './context.js';
import type { Metric, SectionResult, TargetCheck } from './results.js';
import { trackGroup, untrackGroup } from './support/child.js';
import { totalBytes, warmEtags } from './support/library.js';
import { makeScratch, removeScratch } from './support/scratch.js';
import { mb, num, pct, seconds, type Table } from './table.js';
import { resumeWorkloads, type Workload } from './workloads.js';
import { killTrials, type KillTrials } from './resumeKills.js';

export const TARGET_WASTE = 1.05;
/** A second run that has not finished by then is stopped and reported as stalled. */
const STALL_LIMIT_MS = 90_000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX_CLI = createRequire(import.meta.url).resolve('tsx/cli');

export interface ResumeRun {
  workload: Workload['name'];
  label: string;
  assets: number;
  libraryBytes: number;
  /** Bytes downloaded when the kill was sent: finished responses plus the partial files on disk. */
  progressAtKill: number;
  /** Bytes the double served to the killed run (counted once every connection had closed). */
  servedFirstRun: number;
  servedSecondRun: number;
  firstRunSeconds: number;
  secondRunSeconds: number;
  /** The second run did not finish within the limit and was killed (waste then counts what it served). */
  stalled: boolean;
  /** What the folder lacks or holds wrong after the second run (empty: every asset there, verified). */
  differences: string[];
  /** Assets fetched more than once, and the bytes beyond one full copy of each. */
  refetched: { assets: number; bytes: number };
  /** Bytes downloaded ÷ bytes needed. */
  waste: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function served(double: CloudinaryDouble): number {
  return double.counters.deliveryBytes + double.counters.downloadBytes;
}

/** `npx tsx shared/cli/backup.ts --dest DIR` in a process group of its own, so kill -9 reaches every process. */
function startBackupCli(
  dest: string,
  double: CloudinaryDouble,
): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [TSX_CLI, 'shared/cli/backup.ts', '--dest', dest, '--json'], {
    cwd: ROOT,
    env: { ...process.env, CLOUDINARY_URL: double.cloudinaryUrl },
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const pid = child.pid ?? 0;
  trackGroup(pid);
  child.once('exit', () => untrackGroup(pid));
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors = (errors + chunk.toString('utf8')).slice(-2000);
  });
  return { child, stderr: () => errors };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** Kills the CLI's whole process group (tsx starts a second node) and waits until none is left. */
async function killGroup(pid: number): Promise<void> {
  process.kill(-pid, 'SIGKILL');
  for (;;) {
    try {
      process.kill(-pid, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
}

/** Bytes in the backup's partial files: the double counts a response only once it has ended. */
async function partialBytes(dest: string): Promise<number> {
  const dir = join(dest, LOCAL_CONTROL_DIR, 'tmp');
  const names = await readdir(dir).catch(() => [] as string[]);
  const sizes = await Promise.all(
    names.map((name) =>
      stat(join(dir, name)).then(
        (info) => info.size,
        () => 0,
      ),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

/** Waits until the double has counted every byte of the killed connections (no change for 500 ms). */
async function settled(double: CloudinaryDouble): Promise<number> {
  let last = -1;
  while (served(double) !== last) {
    last = served(double);
    await sleep(500);
  }
  return last;
}

/** Assets the double served more than once (from its request log), and the bytes beyond one copy. */
function refetchedAssets(double: CloudinaryDouble): ResumeRun['refetched'] {
  const fetches = new Map<string, { count: number; bytes: number }>();
  for (const entry of double.requestLog) {
    if ((entry.kind !== 'delivery' && entry.kind !== 'download') || entry.publicId === undefined) continue;
    const seen = fetches.get(entry.publicId) ?? { count: 0, bytes: 0 };
    seen.count += 1;
    seen.bytes += entry.bytes ?? 0;
    fetches.set(entry.publicId, seen);
  }
  const sizes = new Map(double.library.all().map((asset) => [asset.public_id, asset.bytes]));
  let assets = 0;
  let bytes = 0;
  for (const [publicId, seen] of fetches) {
    if (seen.count < 2) continue;
    assets += 1;
    bytes += seen.bytes - (sizes.get(publicId) ?? 0);
  }
  return { assets, bytes };
}

async function measureResume(context: BenchContext, workload: Workload): Promise<ResumeRun> {
  const library = generateLibrary(workload.library);
  const double = await startCloudinaryDouble({ library, rateLimitPerHour: 1_000_000 });
  const dest = await makeScratch('resume');
  try {
    const libraryBytes = totalBytes(library);
    context.log(`resume: ${workload.label} (${(libraryBytes / 1e6).toFixed(0)} MB), kill -9 half way`);
    await warmEtags(library);
    double.counters.reset();

    let started = performance.now();
    const first = startBackupCli(dest, double);
    const firstExit = exitOf(first.child);
    let progressAtKill = 0;
    while (first.child.exitCode === null) {
      progressAtKill = served(double) + (await partialBytes(dest));
      if (progressAtKill >= libraryBytes / 2) {
        await killGroup(first.child.pid ?? 0);
        break;
      }
      await sleep(10);
    }
    await firstExit;
    const firstRunSeconds = (performance.now() - started) / 1000;
    if (progressAtKill < libraryBytes / 2) {
      throw new Error(
        `the first backup ended before half way (exit ${first.child.exitCode}): ${first.stderr()}`,
      );
    }
    const servedFirstRun = await settled(double);

    started = performance.now();
    const second = startBackupCli(dest, double);
    const limitMs = Math.max(STALL_LIMIT_MS, 10 * firstRunSeconds * 1000);
    const code = await Promise.race([exitOf(second.child), sleep(limitMs).then(() => 'stalled' as const)]);
    if (code === 'stalled') await killGroup(second.child.pid ?? 0);
    else if (code !== 0) throw new Error(`the second backup failed (exit ${code}): ${second.stderr()}`);
    const secondRunSeconds = (performance.now() - started) / 1000;
    const servedSecondRun = served(double) - servedFirstRun;
    // A waste figure means something only when the second run finished the library.
    const differences = await differencesFromLibrary(dest, double.library);
    return {
      workload: workload.name,
      label: workload.label,
      assets: library.size,
      libraryBytes,
      progressAtKill,
      servedFirstRun,
      servedSecondRun,
      firstRunSeconds,
      secondRunSeconds,
      stalled: code === 'stalled',
      differences,
      refetched: refetchedAssets(double),
      waste: (servedFirstRun + servedSecondRun) / libraryBytes,
    };
  } finally {
    await removeScratch(dest);
    await double.close();
  }
}

/** Why a resume run's waste does not count ('' when it does): the second run must finish the library. */
export function resumeFailure(run: Pick<ResumeRun, 'stalled' | 'differences' | 'servedSecondRun'>): string {
  if (run.stalled) return ' (the second run stalled)';
  if (run.differences.length > 0)
    return ` (the second run left ${run.differences.length} asset${run.differences.length === 1 ? '' : 's'} missing or wrong)`;
  // Killed half way, the rest can only come from the second run.
  if (run.servedSecondRun === 0) return ' (the second run fetched nothing)';
  return '';
}

export async function resumeSection(context: BenchContext): Promise<SectionResult> {
  const runs: ResumeRun[] = [];
  for (const workload of resumeWorkloads(context.mode)) runs.push(await measureResume(context, workload));
  const table: Table = {
    title:
      '4. Resume waste — `tsx shared/cli/backup.ts --dest DIR` killed with SIGKILL half way, then run again to completion',
    head: [
      'Library',
      'Assets',
      'MB needed',
      'MB served, 1st run',
      'MB served, 2nd run',
      'Refetched',
      'Downloaded ÷ needed',
    ],
    rows: runs.map((run) => [
      run.label,
      num(run.assets),
      mb(run.libraryBytes),
      `${mb(run.servedFirstRun)} (${pct(run.servedFirstRun / run.libraryBytes)})`,
      mb(run.servedSecondRun),
      `${num(run.refetched.assets)} assets, ${mb(run.refetched.bytes, 1)} MB`,
      num(run.waste, 3),
    ]),
    notes: [
      'Killed once finished responses plus the partial files in the control folder reached half the library.',
      'Refetched: assets served more than once and the bytes beyond one copy — a file in flight at the kill is continued with a Range request from its partial file.',
      `Run times (process start included): ${runs.map((r) => `${r.workload} ${seconds(r.firstRunSeconds)} + ${seconds(r.secondRunSeconds)}`).join(', ')}.`,
      ...runs
        .filter((run) => run.differences.length > 0)
        .map(
          (run) =>
            `WARNING: ${run.workload}: after the second run the folder differs from the library (${run.differences.length}: ${run.differences.slice(0, 3).join('; ')}).`,
        ),
      ...runs
        .filter((run) => run.stalled)
        .map(
          (run) =>
            `WARNING: ${run.workload}: the second run had not finished after ${seconds(run.secondRunSeconds, 0)} and was killed: resuming stalls.`,
        ),
    ],
  };
  const trials: KillTrials[] = [];
  for (const command of ['backup', 'replicate'] as const) trials.push(await killTrials(context, command));
  const trialsTable: Table = {
    title:
      '4b. Resume waste under repeated kill -9 — each command killed mid-file 10 times, then run to completion',
    head: [
      'Command',
      'Library',
      'MB needed',
      'Kills',
      'MB served',
      'Downloaded ÷ needed',
      'Lost at the kills',
      'Wrong files',
      'Open uploads / partials',
    ],
    rows: trials.map((trial) => [
      `npm run ${trial.command}`,
      trial.label,
      mb(trial.libraryBytes),
      num(trial.kills),
      mb(trial.served),
      num(trial.waste, 3),
      `${mb(trial.lostAtKills)} MB`,
      num(trial.wrongFiles),
      num(trial.openUploads),
    ]),
    notes: [
      `Deliveries throttled to ${(trials[0]?.throttle ?? 0) / 1e6} MB/s each; each kill lands once the bytes on disk (backup) or in S3 objects, uploaded parts and kept part files (replicate) pass the next of 10 points spread over the library.`,
      'Lost at the kills: served to the killed runs but neither on disk nor in S3 when the last one died — bytes in socket and stream buffers, fetched again (replicate keeps the parts it has not recorded yet in files, read back by the next run).',
      'Open uploads / partials: multipart uploads left open and parts left on disk (replicate), partial files (backup), after the completing run.',
      `Run times: ${trials.map((t) => `${t.command} ${seconds(t.seconds)}`).join(', ')}.`,
    ],
  };
  const metrics: Metric[] = runs.map((run) => ({
    key: `resume.${run.workload}.waste`,
    label: `Resume (${run.workload}): downloaded ÷ needed`,
    value: run.waste,
    unit: '×',
    better: 'lower',
  }));
  for (const trial of trials)
    metrics.push({
      key: `resume.kills.${trial.command}.waste`,
      label: `Resume (${trial.command}, 10 kills): downloaded ÷ needed`,
      value: trial.waste,
      unit: '×',
      better: 'lower',
    });
  const targets: TargetCheck[] = runs.map((run) => ({
    target: `Resume waste ≤ ${TARGET_WASTE} (${run.label}), the second run completing the library`,
    measured: `${num(run.waste, 3)}${resumeFailure(run)}`,
    met: resumeFailure(run) === '' && run.waste <= TARGET_WASTE,
  }));
  for (const trial of trials)
    targets.push({
      target: `npm run ${trial.command} killed 10 times: waste ≤ ${TARGET_WASTE}, no wrong file, nothing left open`,
      measured: `${num(trial.waste, 3)}, ${trial.wrongFiles} wrong, ${trial.openUploads} open`,
      met: trial.waste <= TARGET_WASTE && trial.wrongFiles === 0 && trial.openUploads === 0,
    });
  return { name: 'resume', tables: [table, trialsTable], metrics, targets, data: { runs, trials } };
}
