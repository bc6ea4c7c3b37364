// Checks the test FHIR server the way the mediator uses it: started as a process on a free loopback port,
// driven over HTTP. Run with `node --test` in this folder.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const FHIR_JSON = 'application/fhir+json';

/** Starts server.mjs on port 0 and resolves to { base, stop } once it prints its readiness line. */
async function startServer(env = {}) {
  const child = spawn(process.execPath, [SERVER, '0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`FHIR server not ready in ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /FHIR server listening on (http:\/\/127\.0\.0\.1:\d+\/fhir)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`FHIR server exited with ${code} before ready:\n${stderr}`));
    });
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    }
    return child.exitCode;
  };
  return { base, stop, child };
}

async function fhir(base, method, path, body, headers = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { Accept: FHIR_JSON, ...(body === undefined ? {} : { 'Content-Type': FHIR_JSON }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

function resources(bundle) {
  return (bundle.entry ?? []).map((e) => e.resource);
}

const SYSTEM = 'http://example.org/ddcc-test-patient-id';

// A DDCC document Bundle as the WHO reference mediator stored it in HAPI (shared/ sits beside the repository).
const DDCC_DOC = fileURLToPath(new URL('../../../../shared/examples/mediator-tests-existingDDCCDoc.json', import.meta.url));
const NO_SHARED = !existsSync(DDCC_DOC) && 'shared/examples not found beside the repository';

describe('FHIR test server', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    const code = await server.stop();
    assert.equal(code, 0, 'server exits cleanly on SIGTERM');
  });

  test('GET /fhir/metadata answers an R4 CapabilityStatement', async () => {
    const { status, headers, body } = await fhir(server.base, 'GET', '/metadata');
    assert.equal(status, 200);
    assert.match(headers.get('content-type'), /^application\/fhir\+json/);
    assert.equal(body.resourceType, 'CapabilityStatement');
    assert.equal(body.fhirVersion, '4.0.1');
    const types = body.rest[0].resource.map((r) => r.type);
    for (const type of ['Patient', 'Immunization', 'Binary', 'DocumentReference', 'Bundle']) {
      assert.ok(types.includes(type), `${type} listed`);
    }
  });

  test('transaction Bundle with urn:uuid references is stored and its references rewritten', async () => {
    const patientUrn = `urn:uuid:${randomUUID()}`;
    const binaryUrn = `urn:uuid:${randomUUID()}`;
    const patientId = randomUUID();
    const pdf = Buffer.from('%PDF-1.4 test certificate').toString('base64');
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: patientUrn,
          resource: { resourceType: 'Patient', identifier: [{ system: SYSTEM, value: patientId }], name: [{ family: 'Test', given: ['Tx'] }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: {
            resourceType: 'Immunization',
            status: 'completed',
            vaccineCode: { coding: [{ system: 'http://id.who.int/icd11/mms', code: 'XM68M6' }] },
            patient: { reference: patientUrn },
            occurrenceDateTime: '2021-05-01',
          },
          request: { method: 'POST', url: 'Immunization' },
        },
        {
          fullUrl: binaryUrn,
          resource: { resourceType: 'Binary', contentType: 'application/pdf', data: pdf },
          request: { method: 'POST', url: 'Binary' },
        },
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: {
            resourceType: 'DocumentReference',
            status: 'current',
            subject: { reference: patientUrn },
            content: [{ attachment: { contentType: 'application/pdf', url: binaryUrn } }],
          },
          request: { method: 'POST', url: 'DocumentReference' },
        },
      ],
    };

    const { status, body } = await fhir(server.base, 'POST', '', bundle);
    assert.equal(status, 200);
    assert.equal(body.resourceType, 'Bundle');
    assert.equal(body.type, 'transaction-response');
    assert.equal(body.entry.length, 4);
    const locations = body.entry.map((e) => {
      assert.match(e.response.status, /^201/);
      return e.response.location;
    });
    const [patientRef, immunizationRef, binaryRef, docRefRef] = locations.map((l) => l.split('/').slice(0, 2).join('/'));
    assert.match(patientRef, /^Patient\/[^/]+$/);
    assert.match(binaryRef, /^Binary\/[^/]+$/);

    const immunization = (await fhir(server.base, 'GET', `/${immunizationRef}`)).body;
    assert.equal(immunization.patient.reference, patientRef);
    const docRef = (await fhir(server.base, 'GET', `/${docRefRef}`)).body;
    assert.equal(docRef.subject.reference, patientRef);
    assert.equal(docRef.content[0].attachment.url, binaryRef);
    const binary = (await fhir(server.base, 'GET', `/${binaryRef}`)).body;
    assert.equal(binary.data, pdf);

    // Search by identifier finds exactly the Patient from the transaction.
    const search = await fhir(server.base, 'GET', `/Patient?identifier=${encodeURIComponent(`${SYSTEM}|${patientId}`)}`);
    assert.equal(search.status, 200);
    assert.equal(search.body.type, 'searchset');
    assert.deepEqual(resources(search.body).map((r) => `Patient/${r.id}`), [patientRef]);
    assert.equal(search.body.entry[0].fullUrl, `${server.base}/${patientRef}`);

    // Search with a reference parameter.
    const byPatient = await fhir(server.base, 'GET', `/Immunization?patient=${patientRef}`);
    assert.deepEqual(resources(byPatient.body).map((r) => r.id), [immunizationRef.split('/')[1]]);
  });

  test('PUT with a client-assigned id creates, then updates; GET and DELETE by id', async () => {
    const id = `ddcc-${randomUUID()}`;
    const patient = { resourceType: 'Patient', id, active: true };
    const first = await fhir(server.base, 'PUT', `/Patient/${id}`, patient);
    assert.ok([200, 201].includes(first.status), `update-as-create status ${first.status}`);
    assert.equal(first.body.id, id);
    assert.match(first.headers.get('etag'), /^W\/"/);

    const second = await fhir(server.base, 'PUT', `/Patient/${id}`, { ...patient, active: false });
    assert.equal(second.status, 200);
    assert.notEqual(second.body.meta.versionId, first.body.meta.versionId);

    const read = await fhir(server.base, 'GET', `/Patient/${id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.active, false);

    assert.equal((await fhir(server.base, 'DELETE', `/Patient/${id}`)).status, 200);
    const gone = await fhir(server.base, 'GET', `/Patient/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.resourceType, 'OperationOutcome');
  });

  test('a transaction with one invalid entry is rejected as a whole and stores nothing', async () => {
    const marker = randomUUID();
    const patientUrn = `urn:uuid:${randomUUID()}`;
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: patientUrn,
          resource: { resourceType: 'Patient', identifier: [{ system: SYSTEM, value: marker }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            resourceType: 'Immunization',
            status: 'completed',
            identifier: [{ system: SYSTEM, value: marker }],
            patient: { reference: patientUrn },
          },
          request: { method: 'POST', url: 'Immunization' },
        },
        // Invalid: the body's id does not match the URL. The router processes creates before updates, so the
        // two entries above have been written when this one fails.
        {
          resource: { resourceType: 'Patient', id: 'one-id' },
          request: { method: 'PUT', url: 'Patient/another-id' },
        },
      ],
    };
    const { status, body } = await fhir(server.base, 'POST', '', bundle);
    assert.equal(status, 400);
    assert.equal(body.resourceType, 'OperationOutcome');

    const patients = await fhir(server.base, 'GET', `/Patient?identifier=${encodeURIComponent(`${SYSTEM}|${marker}`)}`);
    assert.equal(patients.body.total, 0, 'no Patient from the rejected transaction');
    const immunizations = await fhir(server.base, 'GET', `/Immunization?identifier=${encodeURIComponent(`${SYSTEM}|${marker}`)}`);
    assert.equal(immunizations.body.total, 0, 'no Immunization from the rejected transaction');
    assert.equal((await fhir(server.base, 'GET', '/Patient/one-id')).status, 404);
  });

  test('a rejected transaction leaves an updated resource and its history as they were', async () => {
    const id = randomUUID();
    const first = await fhir(server.base, 'PUT', `/Patient/${id}`, { resourceType: 'Patient', id, gender: 'female' });
    assert.ok(first.status === 200 || first.status === 201, `PUT answered ${first.status}`);
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id, gender: 'male' }, request: { method: 'PUT', url: `Patient/${id}` } },
        { resource: { resourceType: 'Patient', id: 'one-id' }, request: { method: 'PUT', url: 'Patient/another-id' } },
      ],
    };
    assert.equal((await fhir(server.base, 'POST', '', bundle)).status, 400);
    const read = await fhir(server.base, 'GET', `/Patient/${id}`);
    assert.equal(read.body.gender, 'female');
    assert.equal(read.body.meta.versionId, first.body.meta.versionId);
    const history = await fhir(server.base, 'GET', `/Patient/${id}/_history`);
    assert.deepEqual(history.body.entry.map((e) => e.resource.gender), ['female']);
  });

  test('concurrent requests: rolled-back transactions never undo other writes', async () => {
    const marker = randomUUID();
    const failingTx = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', identifier: [{ system: SYSTEM, value: `${marker}-tx` }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', id: 'a' }, request: { method: 'PUT', url: 'Patient/b' } },
      ],
    };
    const requests = [];
    for (let i = 0; i < 10; i++) {
      requests.push(fhir(server.base, 'POST', '/Patient', { resourceType: 'Patient', identifier: [{ system: SYSTEM, value: `${marker}-${i}` }] }));
      requests.push(fhir(server.base, 'POST', '', failingTx));
    }
    const statuses = (await Promise.all(requests)).map((r) => r.status);
    assert.deepEqual(statuses, Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 201 : 400)));
    const values = Array.from({ length: 10 }, (_, i) => encodeURIComponent(`${SYSTEM}|${marker}-${i}`)).join(',');
    assert.equal((await fhir(server.base, 'GET', `/Patient?identifier=${values}&_count=100`)).body.total, 10);
    const fromTx = await fhir(server.base, 'GET', `/Patient?identifier=${encodeURIComponent(`${SYSTEM}|${marker}-tx`)}`);
    assert.equal(fromTx.body.total, 0);
  });

  test('conditional create (If-None-Exist) twice yields one resource', async () => {
    const value = randomUUID();
    const query = `identifier=${encodeURIComponent(`${SYSTEM}|${value}`)}`;
    const patient = { resourceType: 'Patient', identifier: [{ system: SYSTEM, value }] };
    const first = await fhir(server.base, 'POST', '/Patient', patient, { 'If-None-Exist': query });
    assert.ok(first.status === 200 || first.status === 201, `PUT answered ${first.status}`);
    const second = await fhir(server.base, 'POST', '/Patient', patient, { 'If-None-Exist': query });
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    const search = await fhir(server.base, 'GET', `/Patient?${query}`);
    assert.equal(search.body.total, 1);
  });

  test('conditional create inside a transaction (request.ifNoneExist) reuses the existing resource', async () => {
    const value = randomUUID();
    const ifNoneExist = `identifier=${encodeURIComponent(`${SYSTEM}|${value}`)}`;
    const tx = () => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: { resourceType: 'Patient', identifier: [{ system: SYSTEM, value }] },
          request: { method: 'POST', url: 'Patient', ifNoneExist },
        },
      ],
    });
    const first = await fhir(server.base, 'POST', '', tx());
    assert.equal(first.status, 200);
    assert.match(first.body.entry[0].response.status, /^201/);
    const second = await fhir(server.base, 'POST', '', tx());
    assert.equal(second.status, 200);
    assert.match(second.body.entry[0].response.status, /^200/);
    assert.equal(second.body.entry[0].resource.id, first.body.entry[0].resource.id);
    assert.equal((await fhir(server.base, 'GET', `/Patient?${ifNoneExist}`)).body.total, 1);
  });

  test('conditional update (PUT /Patient?identifier=...) creates once, then updates the match', async () => {
    const value = randomUUID();
    const query = `identifier=${encodeURIComponent(`${SYSTEM}|${value}`)}`;
    const patient = { resourceType: 'Patient', identifier: [{ system: SYSTEM, value }] };
    const created = await fhir(server.base, 'PUT', `/Patient?${query}`, patient);
    assert.equal(created.status, 201);
    const updated = await fhir(server.base, 'PUT', `/Patient?${query}`, { ...patient, active: true });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.id, created.body.id);
    assert.equal(updated.body.active, true);
  });

  test('stores and finds a real DDCC document Bundle', { skip: NO_SHARED }, async () => {
    const doc = JSON.parse(readFileSync(DDCC_DOC, 'utf8'));
    delete doc.id;
    delete doc.meta;
    const created = await fhir(server.base, 'POST', '/Bundle', doc);
    assert.equal(created.status, 201);
    assert.match(created.headers.get('location'), new RegExp(`/fhir/Bundle/${created.body.id}/_history/`));
    const read = await fhir(server.base, 'GET', `/Bundle/${created.body.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.type, 'document');
    assert.deepEqual(read.body.entry, doc.entry);
    const found = await fhir(server.base, 'GET', '/Bundle?type=document');
    assert.ok(resources(found.body).some((b) => b.id === created.body.id));
  });

  test('errors answer OperationOutcome and the server keeps serving', async () => {
    const badJson = await fhir(server.base, 'POST', '/Patient', '{"resourceType":');
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.resourceType, 'OperationOutcome');

    const wrongType = await fhir(server.base, 'POST', '/Patient', { resourceType: 'Observation' });
    assert.equal(wrongType.status, 400);

    const outsideBase = await fhir(server.base.replace(/\/fhir$/, ''), 'GET', '/Patient');
    assert.equal(outsideBase.status, 404);
    assert.equal(outsideBase.body.resourceType, 'OperationOutcome');

    const notBundle = await fhir(server.base, 'POST', '', { resourceType: 'Patient' });
    assert.equal(notBundle.status, 400);

    assert.equal((await fhir(server.base, 'GET', '/metadata')).status, 200);
  });
});

describe('FHIR test server with FHIR_VALIDATE=1', () => {
  let server;
  before(async () => {
    server = await startServer({ FHIR_VALIDATE: '1', FHIR_MAX_BODY_BYTES: String(256 * 1024) });
  });
  after(async () => {
    await server.stop();
  });

  test('rejects a resource with an unknown element, accepts a valid one', async () => {
    const bad = await fhir(server.base, 'POST', '/Patient', { resourceType: 'Patient', notAnElement: 1 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.resourceType, 'OperationOutcome');
    const good = await fhir(server.base, 'POST', '/Patient', { resourceType: 'Patient', active: true });
    assert.equal(good.status, 201);
  });

  test('rejects the WHO reference mediator\'s stored DDCC document, which is not valid R4', { skip: NO_SHARED }, async () => {
    // HAPI accepted this document (it does not validate by default); R4 requires Composition.status and .date and,
    // for a document Bundle, an identifier with system and value (bdl-9).
    const doc = JSON.parse(readFileSync(DDCC_DOC, 'utf8'));
    const res = await fhir(server.base, 'POST', '/Bundle', doc);
    assert.equal(res.status, 400);
    const problems = res.body.issue.map((i) => `${i.expression?.[0]}: ${i.details.text}`);
    assert.ok(problems.some((p) => p.includes('bdl-9')), problems.join('\n'));
    assert.ok(problems.includes('Bundle.entry[0].resource.status: Missing required property'), problems.join('\n'));
  });

  test('a body over FHIR_MAX_BODY_BYTES is refused with 413', async () => {
    const big = { resourceType: 'Patient', name: [{ text: 'x'.repeat(300 * 1024) }] };
    const res = await fhir(server.base, 'POST', '/Patient', big);
    assert.equal(res.status, 413);
    assert.equal(res.body.resourceType, 'OperationOutcome');
  });
});
