import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { MiddlewareObj } from '@middy/core';

/** The module this code runs from: on Lambda the bundle, with its source map beside it. */
const BUNDLE_URL = import.meta.url;
/** A frame's location in the bundle: `file:///var/task/index.mjs:1:2345`. */
const BUNDLE_FRAME = new RegExp(`${BUNDLE_URL.replace(/[.*+?^${}()|[\]\\/]/gu, '\\$&')}:(\\d+):(\\d+)`, 'gu');

let loaded: SourceMap | null | undefined;

/** Read once, on the first failure: `--enable-source-maps` would parse it at every cold start. */
function bundleSourceMap(): SourceMap | null {
  if (loaded === undefined) {
    try {
      loaded = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(BUNDLE_URL)}.map`, 'utf8')));
    } catch {
      // Not a bundle (tests, the workstation runner): its stacks already name the sources.
      loaded = null;
    }
  }
  return loaded;
}

/** `stack` with each frame in the bundle pointing at the source line it was built from. */
export function sourceMappedStack(stack: string): string {
  const map = bundleSourceMap();
  if (!map) return stack;
  return stack.replace(BUNDLE_FRAME, (frame, line: string, column: string) => {
    const origin = map.findOrigin(Number(line), Number(column));
    if (!('fileName' in origin)) return frame;
    const file = fileURLToPath(new URL(origin.fileName, BUNDLE_URL));
    return `${file}:${origin.lineNumber}:${origin.columnNumber}`;
  });
}

/** Middy middleware: the error an invocation fails with reaches the runtime's log with source lines. */
export function sourceMappedErrors(): MiddlewareObj {
  return {
    onError: (request) => {
      const error = request.error;
      if (error?.stack) error.stack = sourceMappedStack(error.stack);
    },
  };
}
