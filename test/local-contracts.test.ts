import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '../shared/local/LocalObjectStore.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import { objectStoreContract } from './contracts/objectStoreContract.js';
import { stateStoreContract } from './contracts/stateStoreContract.js';

function freshFolder(label: string): string {
  return mkdtempSync(join(tmpdir(), `local-${label}-`));
}

objectStoreContract('LocalObjectStore (folder + SQLite index)', async () => {
  const dir = freshFolder('store');
  const store = new LocalObjectStore(dir);
  return {
    store,
    cleanup: async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

stateStoreContract('SqliteStateStore (node:sqlite)', async (clock) => {
  const dir = freshFolder('state');
  const state = new SqliteStateStore(dir, { now: clock.now });
  return {
    state,
    cleanup: async () => {
      state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
