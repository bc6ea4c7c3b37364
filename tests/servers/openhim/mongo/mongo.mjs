// CongoDB launcher for the test OpenHIM: an in-memory server speaking the MongoDB wire protocol, with a shim that
// makes it accept what openhim-core 4.0.5 (mongoose 4, MongoDB driver 2.2) sends.
//
// No MongoDB server binary can be installed on the development and CI machines (mongodb-memory-server downloads
// it from the internet), so OpenHIM runs on CongoDB, taken from @push.rocks/smartmongo 2.2.0 by ./setup.sh.
//
// Usage: node mongo.mjs [port]      (or MONGO_PORT=<port>; default 27017)
// Env:   MONGO_LOG_ALL=1            log every command's name and collection (never documents)
// Prints `CongoDB listening on mongodb://127.0.0.1:<port>` on stdout once ready; stops on SIGTERM/SIGINT.

import { CongoServer } from './congodb/index.js';

const HOST = '127.0.0.1';
const LOG_ALL = process.env.MONGO_LOG_ALL === '1';

/**
 * Normalises one parsed command before CongoDB routes it.
 * 1. The 2.2 driver may wrap a command sent over legacy OP_QUERY as `{$query: {...}}`: unwrap it.
 * 2. CongoDB matches command names case-sensitively; the driver sends e.g. `findandmodify`: map it (and the
 *    command document's first key) to the canonical handler name.
 * 3. Mongoose 4 emits `$pushAll`, removed in MongoDB 3.6 and unknown to CongoDB: rewrite it to `$push` + `$each`.
 */
function normaliseCommand(parsed, canonicalNames) {
  let { commandName, command } = parsed;
  if (command && typeof command.$query === 'object' && command.$query !== null) {
    command = command.$query;
    commandName = Object.keys(command)[0];
  }
  const canonical = canonicalNames.get(String(commandName).toLowerCase());
  if (canonical && canonical !== commandName) {
    command = renameFirstKey(command, commandName, canonical);
    commandName = canonical;
  }
  if (commandName === 'update' && Array.isArray(command.updates)) {
    command = { ...command, updates: command.updates.map((u) => ({ ...u, u: rewritePushAll(u.u) })) };
  } else if (commandName === 'findAndModify' && command.update) {
    command = { ...command, update: rewritePushAll(command.update) };
  }
  return { ...parsed, commandName, command };
}

function renameFirstKey(command, from, to) {
  const renamed = { [to]: command[from] };
  for (const [key, value] of Object.entries(command)) {
    if (key !== from) {
      renamed[key] = value;
    }
  }
  return renamed;
}

/** `{$pushAll: {f: [a, b]}}` becomes `{$push: {f: {$each: [a, b]}}}`, merged into any `$push` already there. */
function rewritePushAll(update) {
  if (!update || typeof update !== 'object' || Array.isArray(update) || !update.$pushAll) {
    return update;
  }
  const { $pushAll, ...rest } = update;
  const push = { ...(rest.$push ?? {}) };
  for (const [field, values] of Object.entries($pushAll)) {
    const items = Array.isArray(values) ? values : [values];
    const existing = push[field];
    if (existing === undefined) {
      push[field] = { $each: items };
    } else if (existing && typeof existing === 'object' && Array.isArray(existing.$each)) {
      push[field] = { ...existing, $each: [...existing.$each, ...items] };
    } else {
      push[field] = { $each: [existing, ...items] };
    }
  }
  return { ...rest, $push: push };
}

function collectionOf(command, commandName) {
  const value = command?.[commandName];
  return typeof value === 'string' ? value : '';
}

/** Failed replies are logged (name, collection, error; never documents). listIndexes on a missing collection
 * answers NamespaceNotFound on real MongoDB too, so it is not logged. */
function logReply(parsed, reply) {
  const where = `${parsed.database}.${collectionOf(parsed.command, parsed.commandName)}`;
  if (LOG_ALL) {
    process.stderr.write(`congodb: ${parsed.commandName} ${where} ok=${reply?.ok}\n`);
  }
  if (parsed.commandName === 'listIndexes') {
    return;
  }
  if (reply?.ok === 0 || reply?.ok === false) {
    process.stderr.write(`congodb: FAILED ${parsed.commandName} ${where}: ${reply.code ?? ''} ${reply.errmsg ?? ''}\n`);
  } else if (Array.isArray(reply?.writeErrors) && reply.writeErrors.length > 0) {
    for (const e of reply.writeErrors) {
      process.stderr.write(`congodb: WRITE ERROR ${parsed.commandName} ${where}: ${e.code ?? ''} ${e.errmsg ?? ''}\n`);
    }
  }
}

function installShim(server) {
  const router = server.commandRouter;
  if (!router || !(router.handlers instanceof Map) || typeof router.route !== 'function') {
    throw new Error('CongoDB internals changed: commandRouter.handlers/route not found');
  }
  const canonicalNames = new Map();
  for (const name of router.handlers.keys()) {
    if (!canonicalNames.has(name.toLowerCase())) {
      canonicalNames.set(name.toLowerCase(), name);
    }
  }
  const route = router.route.bind(router);
  router.route = async (parsed) => {
    const normalised = normaliseCommand(parsed, canonicalNames);
    const reply = await route(normalised);
    logReply(normalised, reply);
    return reply;
  };
}

function portFromArgs() {
  const value = process.argv[2] ?? process.env.MONGO_PORT ?? '27017';
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`Invalid port: ${value}`);
  }
  return port;
}

async function main() {
  const port = portFromArgs();
  const server = new CongoServer({ port, host: HOST, storage: 'memory' });
  installShim(server);
  await server.start();
  process.stdout.write(`CongoDB listening on mongodb://${HOST}:${port}\n`);

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) {
      return;
    }
    stopping = true;
    process.stderr.write(`congodb: ${signal}, stopping\n`);
    setTimeout(() => process.exit(0), 3000).unref();
    try {
      await server.stop();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`congodb: failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
