import { MANIFESTS_PREFIX } from '../constants.js';
import type { BackupManifest } from './types.js';

const FINAL_MANIFEST = /^manifests\/([^/]+)\/manifest\.jsonl\.gz$/u;
/** Run ids start with the run's ISO start time, `:` and `.` written as `-` (engine/enumerate.ts newRunId). */
const RUN_TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z/u;

/** The final manifests among `keys`, oldest first; part files and other keys are left out. */
export function finalManifests(keys: Iterable<string>): BackupManifest[] {
  const found: BackupManifest[] = [];
  for (const key of keys) {
    if (!key.startsWith(MANIFESTS_PREFIX)) continue;
    const runId = FINAL_MANIFEST.exec(key)?.[1];
    const time = runId === undefined ? undefined : RUN_TIME.exec(runId);
    if (runId === undefined || !time) continue;
    found.push({ key, runId, runAt: new Date(`${time[1]}T${time[2]}:${time[3]}:${time[4]}.${time[5]}Z`) });
  }
  return found.sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || (a.runId < b.runId ? -1 : 1));
}
