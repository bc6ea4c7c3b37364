// Times the WHO reference mediator's (MED's) own encode path, per certificate.
//
// Runs MED's real code: its Babel build (`lib/`, what `npm start` runs) of src/routes/utils/qr/*.mjs (who, dcc,
// addContent, addAllContent: CWT, COSE sign, zlib, base45 via @pathcheck/dcc-sdk; the QR PNG via qrcode) and
// src/routes/utils/pdf.mjs (createQRPDF, createDDCC via pdf-lib, fontkit, canvas, JsBarcode). Nothing of MED is
// re-implemented here except the two steps that need a server, replaced by their output (see README.md):
//   - the QuestionnaireResponse → core data set transform (Matchbox map QRespToVSCoreDataSet) → `logicalModel`;
//   - the DocumentReference shells (Matchbox map CoreDataSetVSToAddBundle) → `docRefShells`;
//   - createPDBPDF's `details` object (that function is not exported and its caller posts to HAPI) → `cardDetails`.
//
// Usage:
//   node harness.mjs micro --med <MED dir> --event <QR.json> [--seconds S] [--case NAME]
//   node harness.mjs batch --med <MED dir> --batch <Bundle.json> --out <dir>
// Prints one JSON object on stdout. PRIVATE_KEY_FILE must name a PEM key (MED reads it at import time).

import { createRequire } from "node:module"
import { randomUUID } from "node:crypto"
import fs from "node:fs"
import path from "node:path"

const args = process.argv.slice(2)
const mode = args[0]
const opt = (name, dflt) => {
  const i = args.indexOf("--" + name)
  return i >= 0 ? args[i + 1] : dflt
}
const medDir = opt("med")
if (!medDir || !["micro", "batch"].includes(mode)) {
  console.error("usage: node harness.mjs micro|batch --med <MED checkout with lib/ and node_modules/> ...")
  process.exit(2)
}
if (!process.env.PRIVATE_KEY_FILE || !fs.existsSync(process.env.PRIVATE_KEY_FILE)) {
  // Without it MED silently makes an ephemeral key; say which key signs instead.
  console.error("PRIVATE_KEY_FILE must name the throwaway P-256 key (run.sh makes one)")
  process.exit(2)
}

const medRequire = createRequire(path.join(path.resolve(medDir), "package.json"))
const qr = medRequire("./lib/routes/utils/qr/index.js") // addContent, addAllContent
const who = medRequire("./lib/routes/utils/qr/who.js") // serialize, qrContent (makeCWT + signAndPack)
const dcc = medRequire("./lib/routes/utils/qr/dcc.js")
const pdf = medRequire("./lib/routes/utils/pdf.js") // createQRPDF, createDDCC
const qrcode = medRequire("qrcode") // the same module instance MED's addContent uses

// The QuestionnaireResponse → DDCCCoreDataSet transform that MED asks Matchbox for (IG map QRespToVSCoreDataSet:
// first answer of each top-level item; key order as in Matchbox's output). Not timed: it is Matchbox's work.
function logicalModel(qresp) {
  const a = {}
  for (const item of qresp.item || []) {
    const ans = (item.answer || [])[0]
    if (ans) a[item.linkId] = ans
  }
  const coding = (k) => {
    const c = a[k] && a[k].valueCoding
    if (!c) return undefined
    const out = { system: c.system, code: c.code }
    if (c.display !== undefined) out.display = c.display
    return out
  }
  const v = (k, type) => a[k] && a[k]["value" + type]
  const prune = (o) => {
    for (const k of Object.keys(o)) {
      if (o[k] === undefined) delete o[k]
      else if (o[k] && typeof o[k] === "object" && !Array.isArray(o[k])) {
        prune(o[k])
        if (Object.keys(o[k]).length === 0) delete o[k]
      }
    }
    return o
  }
  return prune({
    resourceType: "DDCCCoreDataSet",
    name: v("name", "String"),
    birthDate: v("birthDate", "Date"),
    identifier: { value: v("identifier", "String") },
    sex: a.sex && a.sex.valueCoding && a.sex.valueCoding.code,
    certificate: {
      issuer: { identifier: { value: v("pha", "String") } },
      hcid: { value: v("hcid", "String") },
      version: "RC2",
      period: { start: v("valid_from", "Date"), end: v("valid_until", "Date") }
    },
    vaccination: {
      vaccine: coding("vaccine"),
      brand: coding("brand"),
      manufacturer: coding("manufacturer"),
      maholder: coding("ma_holder"),
      lot: v("lot", "String"),
      date: v("date", "Date"),
      validFrom: v("vaccine_valid", "Date"),
      dose: v("dose", "Integer"),
      totalDoses: v("total_doses", "Integer"),
      country: coding("country"),
      centre: v("centre", "String"),
      practitioner: { value: v("hw", "String") },
      disease: coding("disease"),
      nextDose: v("due_date", "Date")
    }
  })
}

// The two QR DocumentReferences as map CoreDataSetVSToAddBundle shapes them (category who/dcc, three empty
// content slots) for MED's addAllContent to fill. Fresh ids, as the map's uuid() gives.
const CAT = "http://worldhealthorganization.github.io/ddcc/CodeSystem/DDCC-QR-Category-Usage-CodeSystem"
const FMT = "http://worldhealthorganization.github.io/ddcc/CodeSystem/DDCC-QR-Format-CodeSystem"
function docRefShells() {
  const pid = randomUUID()
  const shell = (code) => ({
    resource: {
      resourceType: "DocumentReference",
      id: randomUUID(),
      status: "current",
      category: [{ coding: [{ system: CAT, code }] }],
      subject: { reference: "Patient/" + pid },
      content: [
        { attachment: { contentType: "application/json" }, format: { system: FMT, code: "serialized" } },
        { attachment: { contentType: "image/png" }, format: { system: FMT, code: "image" } },
        { attachment: { contentType: "application/pdf" }, format: { system: FMT, code: "pdf" } }
      ]
    }
  })
  return { resourceType: "Bundle", type: "transaction", entry: [shell("who"), shell("dcc")] }
}

// createPDBPDF's `details` for a new folder (no earlier doses): the same field choices, the WHO QR PNG of this event.
function cardDetails(lm, whoPng64) {
  const v = lm.vaccination
  const dose = {
    date: v.date,
    lot: v.lot,
    vaccine: (v.vaccine && v.vaccine.display) || v.vaccine.code,
    brand: (v.brand && v.brand.display) || v.brand.code,
    manufacturer:
      (v.manufacturer && (v.manufacturer.display || v.manufacturer.code)) ||
      (v.maholder && (v.maholder.display || v.maholder.code)),
    hw: v.practitioner && v.practitioner.value,
    site: v.centre,
    country: (v.country && v.country.display) || v.country.code,
    doses: typeof v.totalDoses === "number" ? v.totalDoses.toString() : v.totalDoses,
    qr: whoPng64
  }
  const details = {
    hcid: lm.certificate.hcid.value,
    name: lm.name,
    id: lm.identifier && lm.identifier.value,
    sex: lm.sex,
    birthDate: lm.birthDate
  }
  if (v.dose === 1) {
    details.dose1 = dose
    if (v.nextDose) details.dose1.date_due = v.nextDose
  } else if (v.dose === 2) {
    details.dose2 = dose
  }
  return details
}

const slot = (docRef, code) => docRef.content.find((c) => c.format && c.format.code === code).attachment

// One whole certificate the way MED makes it: both QR DocumentReferences filled by addAllContent (per
// DocRef: payload, HC1, QR PNG, one-page QR PDF), then the citizen card PDF with the WHO QR.
async function wholeCertificate(lm) {
  const bundle = docRefShells()
  await qr.addAllContent(bundle, lm)
  const whoRef = bundle.entry[0].resource
  const card = await pdf.createDDCC(cardDetails(lm, slot(whoRef, "image").data))
  return { bundle, card }
}

async function micro() {
  const event = JSON.parse(fs.readFileSync(opt("event"), "utf8"))
  const qresp =
    event.resourceType === "Parameters" ? event.parameter.find((p) => p.name === "response").resource : event
  const lm = logicalModel(qresp)
  // Each case: warm-up for 1 s (at least 3 runs: JIT, font parsing), then at least `seconds` and 5 runs measured.
  const seconds = Number(opt("seconds", "2"))

  // Fixed inputs for the single-stage cases, made once by MED's own code.
  const dccId = randomUUID()
  const whoHc1 = await who.qrContent(who.serialize(lm))
  const dccHc1 = await dcc.qrContent(dcc.serialize(lm, dccId))
  const whoPng64 = (await qrcode.toDataURL(whoHc1, { errorCorrectionLevel: "Q" })).replace(
    /^data:image\/.+;base64,/,
    ""
  )
  const details = cardDetails(lm, whoPng64)
  const sample = await wholeCertificate(lm)

  const cases = {
    // per payload: the WHO (DDCC core data set) and the EU DCC payload each iteration, halved below
    "sign+hc1 (who+dcc)": async () => {
      await who.qrContent(who.serialize(lm))
      await dcc.qrContent(dcc.serialize(lm, dccId))
    },
    "qr+png (who HC1)": () => qrcode.toDataURL(whoHc1, { errorCorrectionLevel: "Q" }),
    "qr pdf (one page, who PNG)": () => pdf.createQRPDF(whoPng64),
    "card pdf (createDDCC)": () => pdf.createDDCC(details),
    "one QR docref (addContent who: HC1+PNG+QR PDF)": () => qr.addContent(docRefShells().entry[0].resource, lm),
    "whole certificate (addAllContent who+dcc + createDDCC)": () => wholeCertificate(lm)
  }
  const only = opt("case")
  const results = {}
  for (const [name, fn] of Object.entries(cases)) {
    if (only && name !== only) continue
    const w0 = process.hrtime.bigint()
    for (let i = 0; i < 3 || process.hrtime.bigint() - w0 < 1e9; i++) await fn()
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    let iterations = 0
    while (iterations < 5 || process.hrtime.bigint() - t0 < BigInt(Math.round(seconds * 1e9))) {
      await fn()
      iterations++
    }
    const wallNs = Number(process.hrtime.bigint() - t0)
    const cpu = process.cpuUsage(cpu0)
    const per = name.startsWith("sign+hc1") ? 2 : 1 // per payload
    results[name] = {
      iterations,
      per_unit: per,
      wall_ms: wallNs / 1e6 / iterations / per,
      cpu_ms: (cpu.user + cpu.system) / 1e3 / iterations / per
    }
  }
  return {
    node: process.version,
    hc1_chars: { who: whoHc1.length, dcc: dccHc1.length },
    png_bytes: Buffer.from(whoPng64, "base64").length,
    card_pdf_bytes: sample.card.length,
    results
  }
}

// A batch of events in one process, like `ddcc-mediator issue`: each certificate's artefacts written to files.
async function batch() {
  const t0 = process.hrtime.bigint()
  const bundle = JSON.parse(fs.readFileSync(opt("batch"), "utf8"))
  const out = opt("out")
  let n = 0
  for (const entry of bundle.entry) {
    const r = entry.resource
    const qresp = r.resourceType === "Parameters" ? r.parameter.find((p) => p.name === "response").resource : r
    const lm = logicalModel(qresp)
    const { bundle: docs, card } = await wholeCertificate(lm)
    const dir = path.join(out, "entry-" + String(n).padStart(3, "0"))
    fs.mkdirSync(dir, { recursive: true })
    for (const e of docs.entry) {
      const kind = e.resource.category[0].coding[0].code
      for (const [code, file] of [
        ["serialized", kind + ".json"],
        ["image", kind + ".png"],
        ["pdf", kind + ".pdf"]
      ]) {
        fs.writeFileSync(path.join(dir, file), Buffer.from(slot(e.resource, code).data, "base64"))
      }
    }
    fs.writeFileSync(path.join(dir, "certificate.pdf"), card)
    n++
  }
  return { node: process.version, certificates: n, in_process_wall_ms: Number(process.hrtime.bigint() - t0) / 1e6 }
}

const result = mode === "micro" ? await micro() : await batch()
process.stdout.write(JSON.stringify(result) + "\n")
