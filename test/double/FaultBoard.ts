import { createHash } from 'node:crypto';
import type { ActiveFault, FaultRoute, FaultSpec, Faults } from './types.js';

/** What the faults that hit one request add up to. */
export interface FaultPlan {
  latencyMs: number;
  bytesPerSecond: number | undefined;
  status: number | undefined;
  resetAfterBytes: number | undefined;
  /** `null`: close after half the body. */
  shortAfterBytes: number | null | undefined;
  /** `null`: flip the middle byte of the content. */
  corruptAt: number | null | undefined;
  hang: boolean;
}

const ROUTES: readonly FaultRoute[] = ['admin', 'search', 'delivery', 'download', 'upload'];

interface LiveFault {
  id: number;
  spec: FaultSpec;
  routes: readonly FaultRoute[];
  hits: number;
  seen: number;
}

function validate(spec: FaultSpec): readonly FaultRoute[] {
  const routes = typeof spec.route === 'string' ? [spec.route] : [...spec.route];
  if (routes.length === 0 || routes.some((route) => !ROUTES.includes(route))) {
    throw new Error(`fault route must be one of ${ROUTES.join(', ')}`);
  }
  if (spec.times !== undefined && (!Number.isInteger(spec.times) || spec.times < 1)) {
    throw new Error('fault times must be a positive integer');
  }
  if (spec.share !== undefined && !(spec.share >= 0 && spec.share <= 1))
    throw new Error('fault share must be in 0..1');
  const nonNegative = (value: number | undefined, name: string): void => {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0))
      throw new Error(`fault ${name} must be >= 0`);
  };
  switch (spec.kind) {
    case 'latency':
      nonNegative(spec.ms, 'ms');
      break;
    case 'bandwidth':
      if (!(spec.bytesPerSecond > 0)) throw new Error('fault bytesPerSecond must be > 0');
      break;
    case 'status':
      if (!Number.isInteger(spec.status) || spec.status < 400 || spec.status > 599) {
        throw new Error('fault status must be an HTTP error status');
      }
      break;
    case 'reset':
    case 'short':
      nonNegative(spec.afterBytes, 'afterBytes');
      break;
    case 'corrupt':
      nonNegative(spec.at, 'at');
      break;
    case 'hang':
      break;
    default:
      throw new Error(`unknown fault kind ${(spec as { kind: string }).kind}`);
  }
  return routes;
}

/** The double's fault knobs; `plan` decides, per request, which faults hit it. */
export class FaultBoard implements Faults {
  #faults: LiveFault[] = [];
  #nextId = 1;

  constructor(private readonly seed: string) {}

  add(spec: FaultSpec): ActiveFault {
    const routes = validate(spec);
    const fault: LiveFault = { id: this.#nextId, spec: { ...spec }, routes, hits: 0, seen: 0 };
    this.#nextId += 1;
    this.#faults.push(fault);
    return fault;
  }

  remove(fault: ActiveFault | number): void {
    const id = typeof fault === 'number' ? fault : fault.id;
    this.#faults = this.#faults.filter((f) => f.id !== id);
  }

  clear(): void {
    this.#faults = [];
  }

  list(): ActiveFault[] {
    return [...this.#faults];
  }

  plan(route: FaultRoute, publicId: string | undefined): FaultPlan {
    const plan: FaultPlan = {
      latencyMs: 0,
      bytesPerSecond: undefined,
      status: undefined,
      resetAfterBytes: undefined,
      shortAfterBytes: undefined,
      corruptAt: undefined,
      hang: false,
    };
    for (const fault of this.#faults) {
      const { spec } = fault;
      if (!fault.routes.includes(route)) continue;
      if (spec.publicId !== undefined && spec.publicId !== publicId) continue;
      if (spec.times !== undefined && fault.hits >= spec.times) continue;
      fault.seen += 1;
      if (!this.#strikes(fault)) continue;
      fault.hits += 1;
      switch (spec.kind) {
        case 'latency':
          plan.latencyMs = Math.max(plan.latencyMs, spec.ms);
          break;
        case 'bandwidth':
          plan.bytesPerSecond = Math.min(plan.bytesPerSecond ?? Infinity, spec.bytesPerSecond);
          break;
        case 'status':
          plan.status ??= spec.status;
          break;
        case 'reset':
          plan.resetAfterBytes = Math.min(plan.resetAfterBytes ?? Infinity, spec.afterBytes ?? 0);
          break;
        case 'short':
          plan.shortAfterBytes = spec.afterBytes ?? null;
          break;
        case 'corrupt':
          plan.corruptAt = spec.at ?? null;
          break;
        case 'hang':
          plan.hang = true;
          break;
      }
    }
    return plan;
  }

  /** Deterministic share: the n-th request a fault sees is hit iff hash(seed, id, n) < share. */
  #strikes(fault: LiveFault): boolean {
    const share = fault.spec.share ?? 1;
    if (share >= 1) return true;
    if (share <= 0) return false;
    const digest = createHash('sha256').update(`${this.seed}\0fault\0${fault.id}\0${fault.seen}`).digest();
    return digest.readUInt32LE(0) / 4_294_967_296 < share;
  }
}
