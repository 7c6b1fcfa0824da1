import { generateHostKeys } from '../ssh/hostKeys.js';
import { requireFlag, type Verb } from './common.js';

export const keygen: Verb = {
  summary: 'write host keys',
  usage: 'execgate keygen --dir DIR [--force]       ed25519 + RSA 3072 host keys (old JSch cannot use ed25519)',
  async run(flags) {
    const dir = requireFlag(flags, 'dir', 'keygen');
    for (const path of generateHostKeys(dir, flags.force === true)) process.stdout.write(`${path}\n`);
  },
};
