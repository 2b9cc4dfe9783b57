const deepId = `${Array.from({ length: 20 }, (_, i) => `level${i + 1}`).join('/')}/deep leaf`;
/** Five folders of 100 two-byte characters: over 1,000 UTF-8 bytes. */
const longId = Array.from({ length: 5 }, (_, i) => `${'é'.repeat(100)}-${i}`).join('/');

/**
 * Legal public ids that break naive URL building, key mapping or path handling. Each one is a
 * distinct asset: the NFC and NFD spellings look identical, as do `Case` and `case` on some disks.
 */
export const AWKWARD_PUBLIC_IDS: readonly string[] = [
  'awkward/café crème'.normalize('NFC'),
  'awkward/café crème'.normalize('NFD'),
  'awkward/日本語のファイル',
  'awkward/emoji 😀🎉',
  'awkward/שלום rtl',
  'awkward/with space',
  'awkward/100% literal percent',
  'awkward/looks%20encoded',
  'awkward/%E2%82%AC escaped euro',
  'awkward/a%2Fb escaped slash',
  'awkward/question?mark',
  'awkward/hash#tag',
  'awkward/plus+sign',
  'awkward/amp&er=sand;semi',
  'awkward/colon:name',
  'awkward/quote\'s "double"',
  'awkward/back\\slash',
  'awkward/angle<>|pipe*star',
  'awkward/zero\u200bwidth',
  'awkward/Case',
  'awkward/case',
  'awkward/trailing.dot.',
  'awkward/../dot-dot-segment',
  'awkward/./dot-segment',
  'awkward/..',
  '../escapes-the-root',
  '/leading-slash',
  'awkward/trailing-slash/',
  'awkward//double-slash',
  'v12345/looks-like-a-version',
  's--abcdefgh--/looks-like-a-signature',
  deepId,
  `awkward/long-segment/${'s'.repeat(255)}`,
  longId,
];
