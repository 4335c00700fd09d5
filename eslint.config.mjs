// ESLint (flat config). `make lint` runs it with Prettier's check and the import-cycle check (docs/architecture.md).
import { builtinModules } from "node:module";
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

/** Node built-ins under both spellings (`fs`, `node:fs`). */
const NODE_BUILTINS = [...new Set(builtinModules.filter((m) => !m.startsWith("_")).flatMap((m) => [m, `node:${m}`]))];

/** Packages that do I/O: never imported as values by deterministic or pure code. */
const IO_PACKAGES = [
  "mongodb",
  "express",
  "pino",
  "pino-http",
  "nodemailer",
  "web-ifc",
  "dxf-parser",
  "proj4",
  "@temporalio/client",
  "@temporalio/worker",
  "@temporalio/activity",
  "@temporalio/testing",
  "@itwin/*",
];

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      "dist/**",
      "data/**",
      "data-topology/**",
      "web/dist/**",
      "coverage/**",
      "test-output/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The portal's sources run in the browser (their own block below); everything else runs on Node.
    ignores: ["web/src/**"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": [
        "error",
        { fixStyle: "inline-type-imports", disallowTypeAnnotations: false },
      ],
    },
  },
  {
    // FerretDB on SQLite serves a filter without scanning the collection only when it is exactly {_id: value}
    // (docs/architecture.md "Queries FerretDB serves by _id"): read by `_id` alone and check the rest in code.
    files: ["api/**/*.ts", "lib/**/*.ts", "activities/**/*.ts", "worker/**/*.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector:
            "CallExpression[callee.property.name=/^(findOne|find)$/] > ObjectExpression.arguments[properties.length>1]:has(> Property[key.name='_id'])",
          message:
            "A read by _id plus other fields scans the whole collection on FerretDB/SQLite: use findById (lib/db.ts) and check the rest in code.",
        },
      ],
    },
  },
  {
    // Workflow code is deterministic (docs/architecture.md "Determinism"): no Node built-ins, no I/O packages, and
    // only type imports from the parts that do I/O (lib/, activities/, api/, worker/).
    files: ["workflows/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: NODE_BUILTINS.map((name) => ({
            name,
            message: "Workflow code is deterministic: no Node built-ins (docs/architecture.md).",
          })),
          patterns: [
            {
              group: IO_PACKAGES,
              message: "Workflow code is deterministic: no I/O packages (docs/architecture.md).",
            },
            {
              group: ["**/lib/*", "**/activities/*", "**/activities/**", "**/api/*", "**/worker/*"],
              allowTypeImports: true,
              message: "Workflows import only types from lib/, activities/, api/ and worker/ (docs/architecture.md).",
            },
          ],
        },
      ],
    },
  },
  {
    // domain/ holds pure types, schemas and rules shared by every part: no I/O and no imports from the other parts.
    files: ["domain/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: [
            "fs",
            "node:fs",
            "fs/promises",
            "node:fs/promises",
            "child_process",
            "node:child_process",
            "net",
            "node:net",
            "http",
            "node:http",
            "https",
            "node:https",
          ].map((name) => ({ name, message: "domain/ is pure: no I/O (docs/architecture.md)." })),
          patterns: [
            { group: IO_PACKAGES, message: "domain/ is pure: no I/O packages (docs/architecture.md)." },
            {
              group: ["**/lib/*", "**/activities/*", "**/activities/**", "**/api/*", "**/worker/*", "**/workflows/*"],
              allowTypeImports: true,
              message: "domain/ depends on nothing of the project but itself (docs/architecture.md).",
            },
          ],
        },
      ],
    },
  },
  {
    // The portal (web/src): browser code with React; the rules of hooks hold (README.md "Portal").
    files: ["web/src/**/*.{ts,tsx}"],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { "react-hooks": reactHooks },
    rules: { ...reactHooks.configs.recommended.rules },
  },
  {
    files: ["test/**/*.ts", "scripts/**/*.ts"],
    // Tests read JSON answers of the API: `any` is the honest type there.
    rules: { "@typescript-eslint/no-non-null-assertion": "off", "@typescript-eslint/no-explicit-any": "off" },
  },
  prettier,
);
