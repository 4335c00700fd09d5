/**
 * Sets a new API key for the admin (or another user) directly in the database: the procedure for a lost admin key
 * (README "Authentication and users"). The operator runs it where MONGODB_URI reaches the database; the API need not
 * run, and needs no restart (keys are read per request). The old key stops working at once. The admin bootstrap
 * never undoes it: once the admin exists, ADMIN_API_KEY is only compared with its key (api/auth.ts `ensureAdminUser`).
 *
 *   node_modules/.bin/tsx scripts/reset-admin-key.ts [--user <userId>] [--stdin]
 *
 * Without `--stdin` a new random key (`isk_` + 256 bits) is generated and printed on stdout, alone on its line (the
 * only time it is shown); with `--stdin` the key is read from standard input (first line, at least 16 characters) and
 * not printed. Only its SHA-256 is stored. `--user` defaults to `admin` (the user bootstrapped from ADMIN_API_KEY).
 * The write takes the user's lock (lib/collections.ts `userLockKey`), like a rotation through the API.
 *
 * Env: MONGODB_URI (default mongodb://127.0.0.1:27017/imodelsync). Exit codes: 0 done, 1 no such user or refused key,
 * 2 bad arguments or database unreachable.
 */
import { ADMIN_USER_ID, hashApiKey, newApiKey } from "../api/auth";
import { isDuplicateKey, peopleCollections, userLockKey } from "../lib/collections";
import { openStore } from "../lib/db";
import { withRecord } from "../lib/record-writes";

const USAGE = "usage: reset-admin-key.ts [--user <userId>] [--stdin]";

/** Shortest key accepted (the rule of ADMIN_API_KEY in lib/config.ts). */
const MIN_KEY_LENGTH = 16;

class Refused extends Error {}

function parseArgs(argv: string[]): { userId: string; fromStdin: boolean } {
  let userId = ADMIN_USER_ID;
  let fromStdin = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--stdin") fromStdin = true;
    else if (argv[i] === "--user" && argv[i + 1]) userId = argv[++i];
    else throw new Error(`unknown argument '${argv[i]}'\n${USAGE}`);
  }
  return { userId, fromStdin };
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0].trim();
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 2;
  }
  const key = args.fromStdin ? await readStdinLine() : newApiKey();
  if (key.length < MIN_KEY_LENGTH || /\s/.test(key)) {
    console.error(`error: the key must be at least ${MIN_KEY_LENGTH} characters without spaces`);
    return 1;
  }
  const uri = process.env.MONGODB_URI ?? "mongodb://127.0.0.1:27017/imodelsync";
  let store;
  try {
    store = await openStore(uri, 5000);
  } catch (err) {
    console.error(`error: cannot reach the database at ${uri}: ${(err as Error).message}`);
    return 2;
  }
  try {
    const people = peopleCollections(store);
    await withRecord(
      store.db,
      people.users,
      userLockKey(args.userId),
      args.userId,
      (_current, write) => write({ $set: { apiKeyHash: hashApiKey(key) } }),
      {
        notFound: () =>
          new Refused(
            `there is no user '${args.userId}'${args.userId === ADMIN_USER_ID ? " (start the API once with ADMIN_API_KEY set: it creates the admin)" : ""}`,
          ),
      },
    );
    if (!args.fromStdin) process.stdout.write(`${key}\n`);
    console.error(`the API key of user '${args.userId}' was replaced; the old key no longer works`);
    return 0;
  } catch (err) {
    if (err instanceof Refused) console.error(`error: ${err.message}`);
    else if (isDuplicateKey(err)) console.error("error: that key already belongs to another user");
    else throw err;
    return 1;
  } finally {
    await store.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`error: ${err.message}`);
    process.exit(2);
  },
);
