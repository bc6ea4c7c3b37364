#!/usr/bin/env python3
"""Smoke test of the HAPI FHIR test server: records the behaviours the mediator depends on.

usage: smoke_test.py http://127.0.0.1:<port>/fhir

Prints one line per check (the HTTP status, HAPI-xxxx codes and what was observed) and exits 0;
it documents behaviour, it does not assert it (see README.md for the recorded results).
Standard library only.
"""
import base64
import concurrent.futures
import json
import re
import sys
import urllib.error
import urllib.request
import uuid

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080/fhir"
FHIR_JSON = "application/fhir+json"


def call(method, path, body=None, headers=None, accept=FHIR_JSON):
    url = path if path.startswith("http") else BASE + "/" + path.lstrip("/")
    data = None
    h = {"Accept": accept} if accept else {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h["Content-Type"] = FHIR_JSON
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def js(raw):
    try:
        return json.loads(raw)
    except Exception:
        return None


def codes(raw):
    text = raw.decode("utf-8", "replace")
    return sorted(set(re.findall(r"HAPI-\d{4}", text)))


def diag(raw):
    o = js(raw)
    if isinstance(o, dict) and o.get("resourceType") == "OperationOutcome":
        return " | ".join(i.get("diagnostics", "") for i in o.get("issue", []))
    return ""


def report(name, status, raw, extra=""):
    line = f"[{name}] HTTP {status}"
    c = codes(raw)
    if c:
        line += " " + ",".join(c)
    d = diag(raw)
    if d:
        line += f" :: {d[:400]}"
    if extra:
        line += f" :: {extra}"
    print(line, flush=True)


def uid():
    return str(uuid.uuid4())


def document_bundle(doc_id, fullurl_style="urn"):
    """A small DDCC-like document Bundle: Composition, Patient, Immunization.

    fullurl_style "urn": urn:uuid: fullUrls and urn:uuid: references between entries;
    "rel": Type/id references and no urn:uuid (the WHO reference mediator's stored shape).
    """
    p, c, i = uid(), uid(), uid()
    if fullurl_style == "urn":
        fu = {k: f"urn:uuid:{v}" for k, v in (("p", p), ("c", c), ("i", i))}
        ref = fu
    else:
        fu = {"p": f"{BASE}/Patient/{p}", "c": f"{BASE}/Composition/{c}", "i": f"{BASE}/Immunization/{i}"}
        ref = {"p": f"Patient/{p}", "c": f"Composition/{c}", "i": f"Immunization/{i}"}
    return {
        "resourceType": "Bundle",
        "id": doc_id,
        "identifier": {"system": "urn:EXAMPLE-who-:ddcc:bundle:ids", "value": doc_id},
        "type": "document",
        "timestamp": "2026-12-03T12:00:00Z",
        "entry": [
            {"fullUrl": fu["c"], "resource": {
                "resourceType": "Composition", "id": c, "status": "final",
                "type": {"coding": [{"system": "http://loinc.org", "code": "82593-5"}]},
                "subject": {"reference": ref["p"]}, "date": "2026-12-03T12:00:00Z",
                "author": [{"display": "test"}], "title": "DDCC",
                "section": [{"code": {"coding": [{"system": "http://loinc.org", "code": "11369-6"}]},
                             "entry": [{"reference": ref["i"]}]}]}},
            {"fullUrl": fu["p"], "resource": {
                "resourceType": "Patient", "id": p, "name": [{"text": "Test Person"}]}},
            {"fullUrl": fu["i"], "resource": {
                "resourceType": "Immunization", "id": i, "status": "completed",
                "vaccineCode": {"coding": [{"system": "http://id.who.int/icd11/mms", "code": "XM68M6"}]},
                "patient": {"reference": ref["p"]}, "occurrenceDateTime": "2021-01-01"}},
        ],
    }


def entry_ids(bundle):
    return [(e.get("fullUrl"), (e.get("resource") or {}).get("id")) for e in bundle.get("entry", [])]


def main():
    # 1. metadata
    s, h, raw = call("GET", "metadata")
    cs = js(raw) or {}
    report("metadata", s, raw, f"fhirVersion={cs.get('fhirVersion')} software={cs.get('software', {}).get('name')} "
           f"{cs.get('software', {}).get('version')}")

    # 2. PUT Patient/<uuid> (update-as-create), then again (update)
    pid = uid()
    pat = {"resourceType": "Patient", "id": pid, "name": [{"family": "Smoke"}]}
    s, h, raw = call("PUT", f"Patient/{pid}", pat)
    m = (js(raw) or {}).get("meta", {})
    report("PUT Patient/<uuid> create", s, raw, f"ETag={h.get('ETag')} meta={json.dumps(m)}")
    s, h, raw = call("PUT", f"Patient/{pid}", pat)
    report("PUT Patient/<uuid> again", s, raw, f"ETag={h.get('ETag')}")
    s, h, raw = call("PUT", "Patient/12345", {"resourceType": "Patient", "id": "12345"})
    report("PUT Patient/12345 (numeric client id)", s, raw)

    # 3. transaction with PUT Bundle/<uuid> whose resource is a document with urn:uuid refs
    for style in ("urn", "rel"):
        did = uid()
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"{BASE}/Bundle/{did}", "resource": document_bundle(did, style),
             "request": {"method": "PUT", "url": f"Bundle/{did}"}}]}
        s, h, raw = call("POST", "", tx)
        extra = ""
        b = js(raw) or {}
        if b.get("resourceType") == "Bundle":
            extra = "entry responses: " + json.dumps([e.get("response") for e in b.get("entry", [])])
        report(f"transaction PUT Bundle/<uuid> document({style} refs)", s, raw, extra)
        if s < 300:
            s2, _, raw2 = call("GET", f"Bundle/{did}")
            report(f"  read back document({style})", s2, raw2,
                   f"entry (fullUrl, resource.id): {entry_ids(js(raw2) or {})}")

    # 3a. the mediator's shape (src/store/fhir.rs): PUT <Type>/<id> entries with fresh urn:uuid fullUrls
    # and references rewritten to them, plus PUT Bundle/<id> (no fullUrl) holding the unchanged document.
    # Variant "same": the transaction's placeholders are the document's own fullUrls.
    for variant in ("fresh", "same"):
        did = uid()
        doc = document_bundle(did, "urn")
        fresh = {e["fullUrl"]: (e["fullUrl"] if variant == "same" else f"urn:uuid:{uid()}") for e in doc["entry"]}
        entries = []
        for e in doc["entry"]:
            r = json.loads(json.dumps(e["resource"]))
            txt = json.dumps(r)
            for old, new in fresh.items():
                txt = txt.replace(old, new)
            r = json.loads(txt)
            entries.append({"fullUrl": fresh[e["fullUrl"]], "resource": r,
                            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}})
        entries.append({"resource": doc, "request": {"method": "PUT", "url": f"Bundle/{did}"}})
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        s, h, raw = call("POST", "", tx)
        report(f"mediator-shaped transaction ({variant} placeholders)", s, raw,
               "statuses=" + json.dumps([(e.get("response") or {}).get("status") for e in (js(raw) or {}).get("entry", [])]))
        if s < 300:
            imm = doc["entry"][2]["resource"]["id"]
            s2, _, raw2 = call("GET", f"Immunization/{imm}")
            report("  Immunization.patient as stored", s2, raw2, str((js(raw2) or {}).get("patient")))
            s2, _, raw2 = call("GET", f"Bundle/{did}")
            got = js(raw2) or {}
            report("  nested document as stored", s2, raw2,
                   f"entries={entry_ids(got)} Composition.subject={got.get('entry', [{}])[0].get('resource', {}).get('subject')}")

    # 3a'. where HAPI-0541 does come from: a urn:uuid reference that is not a placeholder of the
    # transaction, in an entry resource that HAPI indexes (nested document Bundles are not walked).
    did = uid()
    doc = document_bundle(did, "urn")
    doc["entry"][0]["resource"]["author"] = [{"reference": f"urn:uuid:{uid()}"}]
    s, h, raw = call("POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": doc, "request": {"method": "PUT", "url": f"Bundle/{did}"}}]})
    report("transaction: document with a dangling urn:uuid reference inside", s, raw)
    did = uid()
    doc = document_bundle(did, "urn")
    s, h, raw = call("POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": doc, "request": {"method": "PUT", "url": f"Bundle/{did}"}},
        {"fullUrl": f"urn:uuid:{uid()}", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": doc["entry"][1]["fullUrl"]}}}]})
    report("transaction: other entry references a document-internal urn:uuid", s, raw)
    s, h, raw = call("POST", "Observation", {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                             "subject": {"reference": f"urn:uuid:{uid()}"}})
    report("POST Observation with a urn:uuid reference (no transaction)", s, raw)

    # 3b. direct PUT Bundle/<uuid> of a document with urn:uuid refs (no transaction)
    did = uid()
    doc = document_bundle(did, "urn")
    s, h, raw = call("PUT", f"Bundle/{did}", doc)
    report("direct PUT Bundle/<uuid> document(urn refs)", s, raw)
    if s < 300:
        s2, _, raw2 = call("GET", f"Bundle/{did}")
        got = js(raw2) or {}
        report("  read back", s2, raw2, f"sent ids: {entry_ids(doc)} ; got: {entry_ids(got)}")
        refs = [((e.get('resource') or {}).get('subject') or (e.get('resource') or {}).get('patient') or {}).get('reference')
                for e in got.get("entry", [])]
        print(f"  references in read-back entries: {refs}", flush=True)
    # 3c. POST Bundle (server-assigned id) of the document
    doc = document_bundle(uid(), "urn")
    doc.pop("id")
    s, h, raw = call("POST", "Bundle", doc)
    report("POST Bundle document(urn refs)", s, raw, f"Location={h.get('Location')}")

    # 3d. transaction with POST Bundle (document) entry
    doc = document_bundle(uid(), "urn")
    doc.pop("id")
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{uid()}", "resource": doc, "request": {"method": "POST", "url": "Bundle"}}]}
    s, h, raw = call("POST", "", tx)
    report("transaction POST Bundle document(urn refs)", s, raw)

    # 4. conditional create If-None-Exist
    ident = uid()
    cp = {"resourceType": "Patient", "identifier": [{"system": "urn:smoke", "value": ident}]}
    hdr = {"If-None-Exist": f"identifier=urn:smoke|{ident}"}
    s1, h1, raw1 = call("POST", "Patient", cp, hdr)
    report("conditional create #1", s1, raw1, f"Location={h1.get('Location')}")
    s2, h2, raw2 = call("POST", "Patient", cp, hdr)
    report("conditional create #2 (match exists)", s2, raw2, f"Location={h2.get('Location')} body={raw2[:80]!r}")
    # conditional create in a transaction
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{uid()}", "resource": cp,
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier=urn:smoke|{ident}"}}]}
    s, h, raw = call("POST", "", tx)
    report("conditional create in transaction (match exists)", s, raw,
           json.dumps([e.get("response") for e in (js(raw) or {}).get("entry", [])]))

    # 5. conditional update
    cu_ident = uid()
    cu = {"resourceType": "Patient", "identifier": [{"system": "urn:smoke", "value": cu_ident}], "active": True}
    s, h, raw = call("PUT", f"Patient?identifier=urn:smoke|{cu_ident}", cu)
    report("conditional update (no match -> create)", s, raw, f"id={(js(raw) or {}).get('id')}")
    s, h, raw = call("PUT", f"Patient?identifier=urn:smoke|{cu_ident}", cu)
    report("conditional update (match -> update)", s, raw, f"versionId={(js(raw) or {}).get('meta', {}).get('versionId')}")

    # 6. If-Match (an identical PUT is a no-op: versionId stays; change the content to get version 2)
    pat["name"] = [{"family": "Smoke2"}]
    s, h, raw = call("PUT", f"Patient/{pid}", pat)
    report("PUT Patient/<uuid> changed content", s, raw, f"ETag={h.get('ETag')}")
    pat["name"] = [{"family": "Smoke3"}]
    s, h, raw = call("PUT", f"Patient/{pid}", pat, {"If-Match": 'W/"1"'})
    report("PUT If-Match W/\"1\" (stale, current is 2)", s, raw)
    s, h, raw = call("PUT", f"Patient/{pid}", pat, {"If-Match": 'W/"2"'})
    report("PUT If-Match W/\"2\" (current)", s, raw, f"ETag={h.get('ETag')}")
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"Patient/{pid}", "resource": pat | {"active": True},
         "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"1"'}}]}
    s, h, raw = call("POST", "", tx)
    report("transaction PUT with ifMatch W/\"1\" (stale)", s, raw)

    # 6a. ifMatch W/"0" in a transaction: a create only if absent (the mediator's first write of a document's
    # revision marker, src/store/fhir.rs); then several such transactions racing on one new id
    mid = uid()
    marker = {"resourceType": "Basic", "id": mid, "code": {"text": "marker"}}
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": marker, "request": {"method": "PUT", "url": f"Basic/{mid}", "ifMatch": 'W/"0"'}}]}
    s, h, raw = call("POST", "", tx)
    report("transaction PUT with ifMatch W/\"0\" (missing resource)", s, raw,
           json.dumps([e.get("response", {}).get("status") for e in (js(raw) or {}).get("entry", [])]))
    s, h, raw = call("POST", "", tx)
    report("same again (the resource now exists at version 1)", s, raw)
    rid = uid()
    def racer(i):
        body = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Basic", "id": f"{rid}-doc", "code": {"text": f"writer {i}"}},
             "request": {"method": "PUT", "url": f"Basic/{rid}-doc"}},
            {"resource": {"resourceType": "Basic", "id": rid, "code": {"text": f"writer {i}"}},
             "request": {"method": "PUT", "url": f"Basic/{rid}", "ifMatch": 'W/"0"'}}]}
        return call("POST", "", body)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(racer, range(8)))
    _, _, doc = call("GET", f"Basic/{rid}-doc")
    _, _, mark = call("GET", f"Basic/{rid}")
    doc, mark = js(doc) or {}, js(mark) or {}
    print(f"[8 transactions racing, each PUT Basic/<doc> + ifMatch W/\"0\" on one new marker] statuses "
          f"{sorted(a[0] for a in answers)} codes {sorted({c for a in answers for c in codes(a[2])})}; "
          f"stored: doc v{doc.get('meta', {}).get('versionId')} by {doc.get('code', {}).get('text')!r}, "
          f"marker v{mark.get('meta', {}).get('versionId')} by {mark.get('code', {}).get('text')!r}")

    # 6b. a marker deleted by hand (src/store/fhir.rs): 410 on read; W/"0" and stale versions refused; its
    # history's latest entry names the deletion's version, and an ifMatch of that version writes it again
    s, h, raw = call("DELETE", f"Basic/{mid}")
    report("DELETE the marker of 6a", s, raw)
    s, h, raw = call("GET", f"Basic/{mid}")
    report("  read deleted marker", s, raw)
    s, h, raw = call("GET", f"Basic/{mid}/_history?_count=1")
    latest = ((js(raw) or {}).get("entry") or [{}])[0]
    report("  _history?_count=1", s, raw,
           f"latest: method {latest.get('request', {}).get('method')}, etag {latest.get('response', {}).get('etag')}")
    for version in ("0", "1", latest.get("response", {}).get("etag", "?").strip('W/"')):
        tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": marker, "request": {"method": "PUT", "url": f"Basic/{mid}", "ifMatch": f'W/"{version}"'}}]}
        s, h, raw = call("POST", "", tx)
        report(f"  transaction PUT with ifMatch W/\"{version}\" on the deleted marker", s, raw,
               json.dumps([e.get("response", {}).get("status") for e in (js(raw) or {}).get("entry", [])]))
    s, h, raw = call("GET", f"Basic/{mid}")
    report("  read again", s, raw, f"versionId={(js(raw) or {}).get('meta', {}).get('versionId')}")

    # 7. meta.tag merge
    tid = uid()
    tp = {"resourceType": "Patient", "id": tid,
          "meta": {"tag": [{"system": "urn:t", "code": "A"}], "profile": ["http://example.org/p1"]}}
    call("PUT", f"Patient/{tid}", tp)
    tp["meta"] = {"tag": [{"system": "urn:t", "code": "B"}], "profile": ["http://example.org/p2"]}
    s, h, raw = call("PUT", f"Patient/{tid}", tp)
    m = (js(raw) or {}).get("meta", {})
    report("update without X-Meta-Snapshot-Mode", s, raw,
           f"tags={[t['code'] for t in m.get('tag', [])]} profiles={m.get('profile')}")
    tp["meta"] = {"tag": [{"system": "urn:t", "code": "C"}], "profile": ["http://example.org/p3"]}
    s, h, raw = call("PUT", f"Patient/{tid}", tp, {"X-Meta-Snapshot-Mode": "TAG"})
    m = (js(raw) or {}).get("meta", {})
    report("update with X-Meta-Snapshot-Mode: TAG", s, raw,
           f"tags={[t['code'] for t in m.get('tag', [])]} profiles={m.get('profile')}")
    tp["meta"] = {"tag": [{"system": "urn:t", "code": "D"}], "profile": ["http://example.org/p4"]}
    s, h, raw = call("PUT", f"Patient/{tid}", tp, {"X-Meta-Snapshot-Mode": "PROFILE,TAG,SECURITY_LABEL"})
    m = (js(raw) or {}).get("meta", {})
    report("update with X-Meta-Snapshot-Mode: PROFILE,TAG,SECURITY_LABEL", s, raw,
           f"tags={[t['code'] for t in m.get('tag', [])]} profiles={m.get('profile')}")
    s, h, raw = call("GET", f"Patient/{tid}/$meta")
    report("GET Patient/<id>/$meta", s, raw, f"tags={[t['code'] for t in (js(raw) or {}).get('parameter', [{}])[0].get('valueMeta', {}).get('tag', [])]}")
    params = {"resourceType": "Parameters", "parameter": [{"name": "meta", "valueMeta": {"tag": [{"system": "urn:t", "code": "D"}]}}]}
    s, h, raw = call("POST", f"Patient/{tid}/$meta-delete", params)
    report("POST Patient/<id>/$meta-delete tag D", s, raw)
    s, h, raw = call("GET", f"Patient/{tid}")
    m = (js(raw) or {}).get("meta", {})
    report("  read after $meta-delete", s, raw, f"tags={[t['code'] for t in m.get('tag', [])]} versionId={m.get('versionId')}")

    # 8. search (no cached results), _history
    fam = "Fam" + uid().replace("-", "")[:12]
    s, h, raw = call("GET", f"Patient?family={fam}")
    report("search Patient?family=X (none yet)", s, raw, f"total={(js(raw) or {}).get('total')}")
    call("POST", "Patient", {"resourceType": "Patient", "name": [{"family": fam}]})
    s, h, raw = call("GET", f"Patient?family={fam}")
    report("same search right after a matching create", s, raw, f"total={(js(raw) or {}).get('total')}")
    s, h, raw = call("GET", f"Patient/{pid}/_history")
    report("Patient/<id>/_history", s, raw, f"total={(js(raw) or {}).get('total')}")
    s, h, raw = call("GET", f"Patient/{pid}/_history/1")
    report("Patient/<id>/_history/1", s, raw)

    # 9. Binary as FHIR JSON
    bid = uid()
    payload = b"%PDF-1.4 smoke"
    binr = {"resourceType": "Binary", "id": bid, "contentType": "application/pdf",
            "data": base64.b64encode(payload).decode()}
    s, h, raw = call("PUT", f"Binary/{bid}", binr)
    report("PUT Binary (FHIR JSON)", s, raw, f"Content-Type={h.get('Content-Type')} body={raw[:120]!r}")
    s, h, raw = call("GET", f"Binary/{bid}", accept=FHIR_JSON)
    report("GET Binary Accept: application/fhir+json", s, raw,
           f"Content-Type={h.get('Content-Type')} body={raw[:160]!r}")
    s, h, raw = call("GET", f"Binary/{bid}", accept="application/json")
    report("GET Binary Accept: application/json", s, raw, f"Content-Type={h.get('Content-Type')} body={raw[:80]!r}")
    s, h, raw = call("GET", f"Binary/{bid}?_format=json", accept=None)
    report("GET Binary?_format=json", s, raw, f"Content-Type={h.get('Content-Type')} body={raw[:60]!r}")
    s, h, raw = call("GET", f"Binary/{bid}", accept=None)
    report("GET Binary (no Accept)", s, raw, f"Content-Type={h.get('Content-Type')} body={raw[:60]!r}")
    s, h, raw = call("GET", f"Binary/{bid}", accept="application/pdf")
    report("GET Binary Accept: application/pdf", s, raw, f"Content-Type={h.get('Content-Type')} body={raw[:60]!r}")
    pb = uid()
    s, h, raw = call("POST", "Binary", binr | {"id": pb})
    report("POST Binary (FHIR JSON)", s, raw, f"Location={h.get('Location')}")

    # 10. delete, expunge
    s, h, raw = call("DELETE", f"Patient/{tid}")
    report("DELETE Patient/<id>", s, raw)
    s, h, raw = call("GET", f"Patient/{tid}")
    report("  read deleted", s, raw)
    s, h, raw = call("POST", f"Patient/{tid}/$expunge", {"resourceType": "Parameters", "parameter": [
        {"name": "expungeDeletedResources", "valueBoolean": True},
        {"name": "expungePreviousVersions", "valueBoolean": True}]})
    report("Patient/<id>/$expunge", s, raw)
    s, h, raw = call("POST", "$expunge", {"resourceType": "Parameters", "parameter": [
        {"name": "expungeEverything", "valueBoolean": True}]})
    report("system $expunge expungeEverything", s, raw)
    s, h, raw = call("GET", "Patient?_summary=count")
    report("  Patient count after expungeEverything", s, raw, f"total={(js(raw) or {}).get('total')}")


if __name__ == "__main__":
    main()
