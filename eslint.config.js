// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import { defineConfig } from 'eslint/config';

export default defineConfig(
  { ignores: ['dist/', 'artifacts/', 'node_modules/', 'patches/'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'deploy/**/*.ts', 'vitest.config.ts', 'eslint.config.js'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      // Control bytes are escaped on purpose (command lines in the audit log and the page, account names,
      // script paths), so the regexes that find them name those bytes.
      'no-control-regex': 'off',
      // Callbacks keep their full signature for readability; a leading underscore marks an argument or binding left unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // A CommonJS preload (node -r) that swaps ssh2's native binding out: require() is its whole point.
    files: ['test/fixtures/**/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __filename: 'readonly', console: 'readonly' } },
  },
  // Last: turns off the stylistic rules Prettier owns, so lint and format never disagree.
  prettier,
);
