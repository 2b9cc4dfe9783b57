import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A bench child: a Node process of its own (so its RSS and CPU are its own) speaking over IPC. */
export interface BenchChild<Out> {
  readonly pid: number;
  readonly process: ChildProcess;
  /** The next message of this kind (messages are `{ kind, ... }` objects). */
  next<K extends (Out extends { kind: infer N } ? N : never)>(kind: K): Promise<Extract<Out, { kind: K }>>;
  send(message: unknown): void;
  /** Resolves with the exit code once the child is gone. */
  exited: Promise<number | null>;
}

/** Path of a module under test/bench/children/. */
export function childModule(name: string): string {
  return fileURLToPath(new URL(`../children/${name}`, import.meta.url));
}

/**
 * Starts `module` with the tsx loader in one process (no wrapper process in between, so `pid` is
 * the worker itself) and an IPC channel.
 */
export function startChild<Out extends { kind: string }>(
  module: string,
  env: NodeJS.ProcessEnv = process.env,
  execArgv: string[] = [],
): BenchChild<Out> {
  const child = fork(module, [], {
    execArgv: ['--import', 'tsx', ...execArgv],
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pid = child.pid ?? 0;
  children.add(pid);
  child.once('exit', () => children.delete(pid));
  const inbox: Out[] = [];
  const waiting: Array<{ kind: string; resolve: (m: Out) => void; reject: (e: Error) => void }> = [];
  let failure: Error | undefined;
  child.on('message', (raw) => {
    const message = raw as Out;
    if (message.kind === 'error') {
      failure = new Error(`bench child ${module}: ${(message as unknown as { message: string }).message}`);
      for (const w of waiting.splice(0)) w.reject(failure);
      return;
    }
    const index = waiting.findIndex((w) => w.kind === message.kind);
    if (index >= 0) waiting.splice(index, 1)[0]?.resolve(message);
    else inbox.push(message);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      failure ??= new Error(`bench child ${module} exited (code ${code}) before answering`);
      for (const w of waiting.splice(0)) w.reject(failure);
      resolve(code);
    });
  });
  return {
    pid,
    process: child,
    exited,
    send: (message) => child.send(message as object),
    next(kind) {
      const index = inbox.findIndex((m) => m.kind === kind);
      if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0] as never);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) =>
        waiting.push({ kind, resolve: resolve as (m: Out) => void, reject }),
      );
    },
  };
}

const children = new Set<number>();
const groups = new Set<number>();

/** Remembers a detached process group this bench started, so `killTrackedProcesses` can end it. */
export function trackGroup(pid: number): void {
  groups.add(pid);
}

export function untrackGroup(pid: number): void {
  groups.delete(pid);
}

/** SIGKILLs every child and detached process group still running (an interrupted bench leaves nothing behind). */
export function killTrackedProcesses(): void {
  const kill = (pid: number): void => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  for (const pid of children) kill(pid);
  for (const pid of groups) kill(-pid);
  children.clear();
  groups.clear();
}

/** Inside a child: reports a failure to the parent and exits. */
export function failChild(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  if (process.send) process.send({ kind: 'error', message }, () => process.exit(1));
  else process.exit(1);
}

/** Inside a child: the next message from the parent. A child whose parent is gone stops. */
export function receiveJob<T>(): Promise<T> {
  process.once('disconnect', () => process.exit(1));
  return new Promise((resolve) => process.once('message', (message) => resolve(message as T)));
}
