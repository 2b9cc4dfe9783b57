import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicateMain } from '../shared/cli/replicate.js';
import { runNowMain } from '../shared/cli/runNow.js';
import { generateLibrary } from './double/index.js';
import { bucketObjects, createPipelineBed, type PipelineBed } from './support/pipelineBed.js';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('npm run replicate', { timeout: 120_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed(
      {
        library: generateLibrary({
          seed: 'cli',
          counts: { image: { upload: 12 }, raw: { upload: 3 } },
          sizes: { image: [1000, 5000], raw: [100, 900] },
        }),
      },
      { DELIVERY_TYPES: 'upload' },
    );
  });
  afterAll(async () => bed?.close());

  it('runs a whole cycle and prints a summary of what it copied', async () => {
    const out = capture();
    const err = capture();

    const code = await replicateMain([], { stdout: out.stream, stderr: err.stream });

    expect(code, err.text()).toBe(0);
    expect(out.text()).toMatch(/Run \S+ completed: 15 listed, 15 enqueued, 15 replicated/u);
    expect((await bucketObjects(bed)).size).toBe(15);
  });

  it('prints JSON lines ending with a summary for scripts', async () => {
    const out = capture();

    const code = await replicateMain(['--json'], { stdout: out.stream, stderr: capture().stream });

    const lines = out
      .text()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event?: string; run?: { counters: { enqueued: number } } });
    expect(code).toBe(0);
    expect(lines.at(-1)?.event).toBe('summary');
    expect(lines.at(-1)?.run?.counters.enqueued).toBe(0);
  });

  it('names the missing setting instead of failing obscurely', async () => {
    const err = capture();
    const queue = process.env.QUEUE_URL;
    delete process.env.QUEUE_URL;
    try {
      const code = await replicateMain([], { stdout: capture().stream, stderr: err.stream });
      expect(code).toBe(1);
      expect(err.text()).toMatch(/QUEUE_URL is not set/u);
    } finally {
      process.env.QUEUE_URL = queue;
    }
  });

  it('rejects a mistyped flag with the valid ones', async () => {
    const err = capture();
    const code = await replicateMain(['--worker', '3'], { stdout: capture().stream, stderr: err.stream });
    expect(code).toBe(2);
    expect(err.text()).toMatch(/--workers/u);
  });
});

describe('npm run run-now', () => {
  it("invokes the deployed enumerate function named by the stack's output with a start event", async () => {
    const sent: Array<{ FunctionName?: string; InvocationType?: string; Payload?: Uint8Array }> = [];
    // Lambda cannot run here (no Docker for moto's Lambda); this double records the invocation.
    const lambda = {
      send: async (command: { input: (typeof sent)[number] }) => (
        sent.push(command.input),
        { StatusCode: 202 }
      ),
    };
    const out = capture();

    const code = await runNowMain(
      ['--stack', 'MyStack'],
      { stdout: out.stream, stderr: capture().stream },
      {},
      lambda as never,
      async (stack, output) =>
        stack === 'MyStack' && output === 'EnumerateFunctionName' ? 'my-enumerate' : undefined,
    );

    expect(code).toBe(0);
    expect(sent[0]?.FunctionName).toBe('my-enumerate');
    expect(sent[0]?.InvocationType).toBe('Event');
    expect(JSON.parse(Buffer.from(sent[0]?.Payload ?? []).toString('utf8'))).toEqual({ action: 'start' });
    expect(out.text()).toContain('Started a run in my-enumerate');
  });

  it('says the stack is not deployed when it has no enumerate output', async () => {
    const err = capture();
    const code = await runNowMain(
      ['--stack', 'Nope'],
      { stdout: capture().stream, stderr: err.stream },
      {},
      { send: async () => ({}) } as never,
      async () => undefined,
    );
    expect(code).toBe(2);
    expect(err.text()).toMatch(/Nope has no EnumerateFunctionName output/u);
  });
});
