// Starts a test OpenHIM: CongoDB (in-memory MongoDB emulator, ./mongo/mongo.mjs), then openhim-core 4.0.5 on it.
// Stops both on SIGTERM/SIGINT, by PID: the OpenHIM master (which holds the sockets), its cluster worker, CongoDB.
//
// Usage: node run.mjs        (after ../install.sh)
// Ports (all on 127.0.0.1): OPENHIM_PORT_BASE=<n> (default 28400) gives
//   API (HTTPS) n, router HTTPS n+1, router HTTP n+2, rerun n+3, TCP adapter n+4, polling n+5, CongoDB n+6;
//   each can be set alone: OPENHIM_API_PORT, OPENHIM_ROUTER_HTTPS_PORT, OPENHIM_ROUTER_HTTP_PORT,
//   OPENHIM_RERUN_PORT, OPENHIM_TCP_PORT, OPENHIM_POLLING_PORT, OPENHIM_MONGO_PORT.
// Other env: OPENHIM_START_TIMEOUT_MS (default 90000), OPENHIM_LOG_DIR (default: a new temp folder, removed after
//   a clean stop unless OPENHIM_KEEP_LOGS=1),
//   OPENHIM_PID_FILE (write this launcher's PID there; removed on stop).
// Once ready, prints one line:
//   OpenHIM ready api=https://127.0.0.1:<p> router_http=http://127.0.0.1:<p> router_https=https://127.0.0.1:<p>
//   mongo=mongodb://127.0.0.1:<p> logs=<dir>

import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const HOST = '127.0.0.1';
const CORE_DIR = join(HERE, 'node_modules', 'openhim-core');
const MONGO_DIR = join(HERE, 'mongo');
const MONGO_READY = /CongoDB listening on /;
const OPENHIM_READY = /OpenHIM server started/;
const MONGO_START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

function envPort(name, fallback) {
  const raw = process.env[name];
  const port = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${name} must be a port number, got ${raw}`);
  }
  return port;
}

function ports() {
  const base = envPort('OPENHIM_PORT_BASE', 28400);
  if (base + 6 > 65535) {
    throw new Error('OPENHIM_PORT_BASE too high');
  }
  return {
    api: envPort('OPENHIM_API_PORT', base),
    routerHttps: envPort('OPENHIM_ROUTER_HTTPS_PORT', base + 1),
    routerHttp: envPort('OPENHIM_ROUTER_HTTP_PORT', base + 2),
    rerun: envPort('OPENHIM_RERUN_PORT', base + 3),
    tcp: envPort('OPENHIM_TCP_PORT', base + 4),
    polling: envPort('OPENHIM_POLLING_PORT', base + 5),
    mongo: envPort('OPENHIM_MONGO_PORT', base + 6),
  };
}

/** openhim.json with the chosen ports filled in; nconf merges it over openhim-core's config/default.json. */
function effectiveConfig(p) {
  const config = JSON.parse(readFileSync(join(HERE, 'openhim.json'), 'utf8'));
  const mongoUrl = `mongodb://${HOST}:${p.mongo}/openhim`;
  config.mongo = { ...config.mongo, url: mongoUrl, atnaUrl: mongoUrl };
  config.router = { ...config.router, httpPort: p.routerHttp, httpsPort: p.routerHttps };
  config.api = { ...config.api, httpsPort: p.api };
  config.rerun = { ...config.rerun, httpPort: p.rerun };
  config.tcpAdapter = { ...config.tcpAdapter, httpReceiver: { ...config.tcpAdapter?.httpReceiver, httpPort: p.tcp } };
  config.polling = { ...config.polling, pollingPort: p.polling };
  return config;
}

function checkInstalled() {
  const missing = [join(CORE_DIR, 'lib', 'server.js'), join(MONGO_DIR, 'congodb', 'index.js'), join(MONGO_DIR, 'node_modules')]
    .filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(`not installed (run tests/servers/install.sh): missing ${missing.join(', ')}`);
  }
}

const children = [];

/** Spawns a node process whose output goes to `logFile`; resolves once a line matches `ready`. */
function startLogged({ name, args, cwd, env, logFile, ready, timeoutMs }) {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push({ name, child });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      reject(new Error(`${name} not ready within ${timeoutMs} ms (log: ${logFile})`));
    }, timeoutMs);
    const onData = (chunk) => {
      seen = (seen + chunk).slice(-4096);
      if (ready.test(seen)) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stderr.off('data', onData);
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready (log: ${logFile})`));
    });
  });
}

function childPids(pid) {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return []; // ps exits 1 when there is no child
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid, ms) {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

/** SIGTERM, bounded wait, then SIGKILL. Only PIDs this launcher started (or the OpenHIM master forked). */
async function terminate(pid, name) {
  if (!pid || !alive(pid)) {
    return;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (!(await waitGone(pid, STOP_GRACE_MS))) {
    process.stderr.write(`openhim-run: ${name} (pid ${pid}) still running ${STOP_GRACE_MS} ms after SIGTERM; SIGKILL\n`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await waitGone(pid, 1000);
  }
}

let stopping = false;
let cleanup = () => {};
let removeLogDir = () => {};

async function stopAll(code) {
  if (stopping) {
    return;
  }
  stopping = true;
  const openhim = children.find((c) => c.name === 'openhim')?.child;
  const mongo = children.find((c) => c.name === 'congodb')?.child;
  // The master's workers are its children; note them before the master goes.
  const workers = openhim?.pid ? childPids(openhim.pid) : [];
  const t0 = Date.now();
  await terminate(openhim?.pid, 'OpenHIM master');
  for (const pid of workers) {
    await terminate(pid, 'OpenHIM worker');
  }
  await terminate(mongo?.pid, 'CongoDB');
  process.stderr.write(`openhim-run: stopped in ${Date.now() - t0} ms\n`);
  cleanup();
  if (code === 0) {
    removeLogDir();
  }
  process.exit(code);
}

async function main() {
  checkInstalled();
  const p = ports();
  const logDir = process.env.OPENHIM_LOG_DIR || mkdtempSync(join(tmpdir(), 'openhim-test-'));
  mkdirSync(logDir, { recursive: true });
  if (!process.env.OPENHIM_LOG_DIR && process.env.OPENHIM_KEEP_LOGS !== '1') {
    // A temp folder we made ourselves goes after a clean stop; after a failure it stays for diagnosis.
    removeLogDir = () => rmSync(logDir, { recursive: true, force: true });
  }
  const confFile = join(logDir, 'openhim.effective.json');
  writeFileSync(confFile, JSON.stringify(effectiveConfig(p), null, 2));

  const pidFile = process.env.OPENHIM_PID_FILE;
  if (pidFile) {
    writeFileSync(pidFile, `${process.pid}\n`);
  }
  cleanup = () => {
    if (pidFile) {
      rmSync(pidFile, { force: true });
    }
  };

  process.once('SIGTERM', () => stopAll(0));
  process.once('SIGINT', () => stopAll(0));
  // Last resort if this launcher dies of an error: do not leave the servers running (SIGTERM only; no waiting
  // is possible in an exit handler).
  process.once('exit', () => {
    for (const { child } of children) {
      if (child.pid && child.exitCode === null && alive(child.pid)) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
  });

  // Without these, a NODE_ENV from the caller would make OpenHIM load config/<NODE_ENV>.json (e.g. test.json,
  // which points at other ports and databases).
  const env = { ...process.env };
  delete env.NODE_ENV;

  const started = Date.now();
  const mongo = await startLogged({
    name: 'congodb',
    args: [join(MONGO_DIR, 'mongo.mjs'), String(p.mongo)],
    cwd: MONGO_DIR,
    env,
    logFile: join(logDir, 'congodb.log'),
    ready: MONGO_READY,
    timeoutMs: MONGO_START_TIMEOUT_MS,
  });
  const openhim = await startLogged({
    name: 'openhim',
    args: ['lib/server.js', `--conf=${confFile}`],
    cwd: CORE_DIR,
    env,
    logFile: join(logDir, 'openhim.log'),
    ready: OPENHIM_READY,
    timeoutMs: Number(process.env.OPENHIM_START_TIMEOUT_MS || 90_000),
  });

  for (const { name, child } of [
    { name: 'CongoDB', child: mongo },
    { name: 'OpenHIM', child: openhim },
  ]) {
    child.once('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`openhim-run: ${name} exited unexpectedly (${code ?? signal}); see ${logDir}\n`);
        stopAll(1);
      }
    });
  }

  process.stdout.write(
    `OpenHIM ready api=https://${HOST}:${p.api} router_http=http://${HOST}:${p.routerHttp} ` +
      `router_https=https://${HOST}:${p.routerHttps} mongo=mongodb://${HOST}:${p.mongo} logs=${logDir} ` +
      `startup_ms=${Date.now() - started}\n`
  );
}

main().catch(async (err) => {
  process.stderr.write(`openhim-run: ${err?.message ?? err}\n`);
  await stopAll(1);
});
