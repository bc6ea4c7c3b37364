// Checks the test OpenHIM the way a mediator uses it: start run.mjs on free ports, authenticate to the API with the
// token scheme, register a mediator, heartbeat, install its default channel, create a client, route a request
// through the HTTP router to a mock mediator, and read the transaction back. Run with `node --test` here.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const RUN = fileURLToPath(new URL('./run.mjs', import.meta.url));
const START_TIMEOUT_MS = 120_000;
const ROOT_EMAIL = 'root@openhim.org';
const ROOT_PASSWORD = 'openhim-password';
const MEDIATOR_URN = 'urn:mediator:ddcc-servers-test';
const CLIENT_ID = 'test-client';
const CLIENT_PASSWORD = 'test-password';
const CLIENT_SALT = randomUUID();

// The WHO reference mediator's OpenHIM registration (shared/ sits beside the repository).
const WHO_CONFIG = fileURLToPath(new URL('../../../../shared/examples/mediator-mediatorConfig.json', import.meta.url));
const NO_SHARED = !existsSync(WHO_CONFIG) && 'shared/examples not found beside the repository';

const sha512 = (text) => createHash('sha512').update(text).digest('hex');

function portFree(port) {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * A base port whose seven ports (base..base+6) are all free, so parallel runs do not collide. Below Linux's
 * ephemeral range (32768 and up): there, an outgoing connection (OpenHIM's own to its database) can take one of
 * the ports between this probe and OpenHIM's listen, which then fails with EADDRINUSE until it closes.
 */
async function freePortBase() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + 10 * Math.floor(Math.random() * 1270);
    const free = await Promise.all([0, 1, 2, 3, 4, 5, 6].map((i) => portFree(base + i)));
    if (free.every(Boolean)) {
      return base;
    }
  }
  throw new Error('no free port block found');
}

async function startOpenhim(portBase) {
  const child = spawn(process.execPath, [RUN], {
    env: { ...process.env, OPENHIM_PORT_BASE: String(portBase) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`OpenHIM not ready in ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /^OpenHIM ready .*$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`run.mjs exited with ${code} before ready:\n${stderr}`));
    });
  });
  const fields = Object.fromEntries(line.split(' ').slice(2).map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
  return { child, api: fields.api, routerHttp: fields.router_http, routerHttps: fields.router_https, stderr: () => stderr };
}

/** One HTTP(S) request; the API's certificate is OpenHIM's bundled self-signed one, so it is not verified. */
function request(url, { method = 'GET', headers = {}, body } = {}) {
  const target = new URL(url);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method,
        rejectUnauthorized: false,
        headers: {
          ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }),
          ...headers,
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      }
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    if (payload !== undefined) {
      req.write(payload);
    }
    req.end();
  });
}

/** The OpenHIM token scheme: fresh headers per request (the server allows a 10 s clock window). */
async function authHeaders(api) {
  const res = await request(`${api}/authenticate/${ROOT_EMAIL}`);
  assert.equal(res.status, 200, `authenticate: ${res.text}`);
  const { salt } = JSON.parse(res.text);
  const passhash = sha512(salt + ROOT_PASSWORD);
  const authTs = new Date().toISOString();
  const authSalt = randomUUID();
  return {
    'auth-username': ROOT_EMAIL,
    'auth-ts': authTs,
    'auth-salt': authSalt,
    'auth-token': sha512(passhash + authSalt + authTs),
  };
}

async function apiCall(api, method, path, body) {
  return request(`${api}${path}`, { method, body, headers: await authHeaders(api) });
}

/** Mock mediator: answers every request in the mediator response format, with one orchestration. */
function startMockMediator() {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const now = new Date().toISOString();
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = {
        'x-mediator-urn': MEDIATOR_URN,
        status: 'Successful',
        response: {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ issued: true, path: req.url }),
          timestamp: now,
        },
        orchestrations: [
          {
            name: 'Fetch from FHIR server',
            request: { host: '127.0.0.1', port: '18090', path: '/fhir/Patient', method: 'GET', timestamp: now },
            response: { status: 200, headers: { 'content-type': 'application/fhir+json' }, body: '{}', timestamp: now },
          },
        ],
        properties: { handledBy: 'mock_mediator' },
      };
      const text = JSON.stringify(answer);
      res.writeHead(200, { 'Content-Type': 'application/json+openhim', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, seen, port: server.address().port })));
}

function mediatorConfig(port) {
  const route = { name: 'DDCC Mock Route', host: '127.0.0.1', port, path: '/ddcc', type: 'http', primary: true };
  return {
    urn: MEDIATOR_URN,
    version: '1.0.0',
    name: 'DDCC servers test mediator',
    description: 'checks the test OpenHIM',
    endpoints: [route],
    defaultChannelConfig: [
      {
        name: 'DDCC servers test channel',
        urlPattern: '^/ddcc$',
        type: 'http',
        methods: ['POST', 'GET'],
        allow: ['test'],
        authType: 'private',
        routes: [route],
      },
    ],
    configDefs: [{ param: 'greeting', displayName: 'Greeting', type: 'string' }],
    config: { greeting: 'hello' },
  };
}

describe('OpenHIM test server', () => {
  let openhim;
  let mock;
  before(async () => {
    mock = await startMockMediator();
    openhim = await startOpenhim(await freePortBase());
  });
  after(async () => {
    mock?.server.close();
    if (!openhim) {
      return;
    }
    const { child } = openhim;
    const pids = descendants(child.pid);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, `run.mjs exits cleanly:\n${openhim.stderr()}`);
    for (const pid of pids) {
      assert.equal(isAlive(pid), false, `process ${pid} stopped`);
    }
  });

  test('API: the token handshake authenticates; no headers is 401', async () => {
    assert.equal((await request(`${openhim.api}/mediators`)).status, 401);
    const about = await apiCall(openhim.api, 'GET', '/about');
    assert.equal(about.status, 200);
    assert.equal(JSON.parse(about.text).currentCoreVersion, '4.0.5');
  });

  test('mediator flow: register, heartbeat, default channel, client, routing, transaction log', async () => {
    const reg = await apiCall(openhim.api, 'POST', '/mediators', mediatorConfig(mock.port));
    assert.equal(reg.status, 201, reg.text);

    const withConfig = await apiCall(openhim.api, 'POST', `/mediators/${MEDIATOR_URN}/heartbeat`, { uptime: 1, config: true });
    assert.equal(withConfig.status, 200);
    assert.deepEqual(JSON.parse(withConfig.text), { greeting: 'hello' });
    const plain = await apiCall(openhim.api, 'POST', `/mediators/${MEDIATOR_URN}/heartbeat`, { uptime: 2 });
    assert.equal(plain.status, 200);
    assert.equal(plain.text, '');

    const install = await apiCall(openhim.api, 'POST', `/mediators/${MEDIATOR_URN}/channels`, ['DDCC servers test channel']);
    assert.equal(install.status, 201, install.text);
    const channels = JSON.parse((await apiCall(openhim.api, 'GET', '/channels')).text);
    assert.ok(channels.some((c) => c.name === 'DDCC servers test channel'), 'channel installed');

    const client = await apiCall(openhim.api, 'POST', '/clients', {
      clientID: CLIENT_ID,
      name: 'Test Client',
      roles: ['test'],
      passwordAlgorithm: 'sha512',
      passwordSalt: CLIENT_SALT,
      passwordHash: sha512(CLIENT_PASSWORD + CLIENT_SALT),
    });
    assert.equal(client.status, 201, client.text);

    // OpenHIM refreshes its channel/client cache every second: retry until the new channel routes (bounded).
    const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_PASSWORD}`).toString('base64')}`;
    const submission = JSON.stringify({ resourceType: 'Bundle', type: 'batch' });
    let routed;
    for (let attempt = 0; attempt < 40; attempt++) {
      routed = await request(`${openhim.routerHttp}/ddcc`, {
        method: 'POST',
        headers: { Authorization: basic, 'Content-Type': 'application/fhir+json' },
        body: submission,
      });
      if (routed.status !== 401) {
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(routed.status, 200, routed.text);
    assert.deepEqual(JSON.parse(routed.text), { issued: true, path: '/ddcc' });
    assert.match(routed.headers['content-type'], /application\/json/);

    assert.equal(mock.seen.length, 1, 'the mock mediator got the request once');
    const delivered = mock.seen[0];
    assert.equal(delivered.method, 'POST');
    assert.equal(delivered.body, submission);
    assert.equal(delivered.headers['x-openhim-clientid'], CLIENT_ID);
    assert.equal(delivered.headers.authorization, undefined, 'client credentials are not forwarded');
    const transactionId = delivered.headers['x-openhim-transactionid'];
    assert.ok(transactionId, 'X-OpenHIM-TransactionID sent to the mediator');

    const wrong = await request(`${openhim.routerHttp}/ddcc`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${CLIENT_ID}:nope`).toString('base64')}` },
      body: submission,
    });
    assert.equal(wrong.status, 401);

    // The transaction is written when the response completes; poll briefly for its final status.
    let tx;
    for (let attempt = 0; attempt < 40; attempt++) {
      const list = await apiCall(openhim.api, 'GET', '/transactions?filterRepresentation=full');
      assert.equal(list.status, 200);
      tx = JSON.parse(list.text).find((t) => t._id === transactionId);
      if (tx?.status === 'Successful') {
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(tx, 'transaction listed');
    assert.equal(tx.status, 'Successful');
    assert.equal(tx.request.path, '/ddcc');
    assert.equal(tx.request.method, 'POST');
    assert.equal(tx.response.status, 200);
    assert.deepEqual(tx.properties, { handledBy: 'mock_mediator' });
    const names = tx.orchestrations.map((o) => o.name);
    assert.ok(names.includes('Fetch from FHIR server'), `orchestrations: ${names}`);
    const orchestration = tx.orchestrations.find((o) => o.name === 'Fetch from FHIR server');
    assert.equal(orchestration.request.path, '/fhir/Patient');
    assert.equal(orchestration.response.status, 200);

    // The HTTPS router port serves the same channel (OpenHIM's bundled self-signed certificate).
    const overTls = await request(`${openhim.routerHttps}/ddcc`, {
      method: 'POST',
      headers: { Authorization: basic, 'Content-Type': 'application/fhir+json' },
      body: submission,
    });
    assert.equal(overTls.status, 200, overTls.text);
    assert.deepEqual(JSON.parse(overTls.text), { issued: true, path: '/ddcc' });

    const heartbeat = JSON.parse((await request(`${openhim.api}/heartbeat`)).text);
    assert.ok(MEDIATOR_URN in heartbeat.mediators, 'mediator listed in GET /heartbeat');
  });

  test('the WHO reference mediator registration installs its channel, which routes', { skip: NO_SHARED }, async () => {
    const config = JSON.parse(readFileSync(WHO_CONFIG, 'utf8'));
    // Point its endpoint and channel route at the mock instead of port 4321; everything else as published.
    for (const route of [...config.endpoints, ...config.defaultChannelConfig.flatMap((c) => c.routes)]) {
      route.port = String(mock.port);
    }
    assert.equal((await apiCall(openhim.api, 'POST', '/mediators', config)).status, 201);
    const beat = await apiCall(openhim.api, 'POST', `/mediators/${config.urn}/heartbeat`, { uptime: 1.5 });
    assert.equal(beat.status, 200);
    assert.equal((await apiCall(openhim.api, 'POST', `/mediators/${config.urn}/channels`, [])).status, 201);
    const channels = JSON.parse((await apiCall(openhim.api, 'GET', '/channels')).text);
    const channel = channels.find((c) => c.name === 'WHO DDCC Transactions Route');
    assert.ok(channel, 'WHO channel installed');
    assert.deepEqual(channel.allow, ['test']);

    const clientId = 'who-test-client';
    const salt = randomUUID();
    const created = await apiCall(openhim.api, 'POST', '/clients', {
      clientID: clientId,
      name: 'WHO test client',
      roles: ['test'],
      passwordAlgorithm: 'sha512',
      passwordSalt: salt,
      passwordHash: sha512(CLIENT_PASSWORD + salt),
    });
    assert.equal(created.status, 201, created.text);

    const before = mock.seen.length;
    const basic = `Basic ${Buffer.from(`${clientId}:${CLIENT_PASSWORD}`).toString('base64')}`;
    let routed;
    for (let attempt = 0; attempt < 40; attempt++) {
      routed = await request(`${openhim.routerHttp}/ddcc/submit?x=1`, {
        method: 'POST',
        headers: { Authorization: basic, 'Content-Type': 'application/fhir+json' },
        body: '{"resourceType":"Bundle","type":"batch"}',
      });
      if (routed.status !== 401) {
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(routed.status, 200, routed.text);
    assert.equal(mock.seen.length, before + 1);
    assert.equal(mock.seen.at(-1).url, '/ddcc/submit?x=1');
    assert.equal(mock.seen.at(-1).headers['x-openhim-clientid'], clientId);
  });
});

function descendants(pid) {
  const out = [];
  const walk = (parent) => {
    let text = '';
    try {
      text = execFileSync('ps', ['-o', 'pid=', '--ppid', String(parent)], { encoding: 'utf8' });
    } catch {
      return;
    }
    for (const child of text.split('\n').map((s) => Number(s.trim())).filter((n) => n > 0)) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
