import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.test-data/', '.bench/', 'bench/**/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } } },
  {
    // The operations console's page script runs in the browser.
    files: ['src/server/ui/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(['document', 'window', 'location', 'history', 'sessionStorage', 'fetch', 'Node', 'HTMLElement', 'addEventListener', 'setInterval', 'clearInterval', 'setTimeout', 'encodeURIComponent'].map((g) => [g, 'readonly'])),
    },
  },
);
