import { VERSION } from '../version.js';
import type { Verb } from './common.js';

export const version: Verb = {
  summary: "print execgate's version",
  usage: 'execgate version                          (also: execgate --version)',
  options: {},
  async run() {
    process.stdout.write(`${VERSION}\n`);
  },
};
