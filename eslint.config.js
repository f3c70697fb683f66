// npm run lint: ESLint with typescript-eslint's recommended rules over every TypeScript file.
// Formatting is Prettier's job (.prettierrc.json), so no stylistic rule is enabled here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'web/dist/**',
      'web/vendor/**',
      'node_modules/**',
      '.harper/**',
      '.tmp/**',
      'bench/results/**',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // An unused binding is an error, except a deliberately ignored one (`_name`), as tsc's
      // noUnusedLocals treats it.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // The validators refuse control characters by matching them.
      'no-control-regex': 'off',
    },
  },
  {
    // Plain JavaScript clients the tests run as Node processes.
    files: ['**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
      },
    },
  },
);
