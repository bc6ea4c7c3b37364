#!/usr/bin/env python3
"""The WHO reference mediator (MED) and ddcc-mediator, measured side by side in one sitting.

See README.md beside this file for what is measured. Rounds interleave the two: in every round the reference's
micro cases, ours (criterion), the reference's 200-event batch, ours (`ddcc-mediator issue`). Medians over rounds.
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MED_REPO = "WorldHealthOrganization/ddcc-transactions-mediator"
MED_COMMIT = "f9b1201"  # the newest commit; the last source change is 87d676a (spec/who-reference-mediator.md §0)
# canvas 2.9.0 (MED's lock) does not compile against Node 20's V8 (v8::AccessorSignature is gone) and has no
# Node 20 prebuilt binary; 2.11.2 is within MED's declared "canvas": "^2.8.0" and builds with nan 2.22.2
# (within canvas's "nan": "^2.17.0"). Everything else is exactly MED's package-lock.
CANVAS, NAN = "canvas@2.11.2", "nan@2.22.2"

OURS_PIPELINE = {
    "sign": "cwt+sign ddcc+dcc (local ES256)",  # two payloads per iteration
    "png": "qr png",
    "whole": "whole pipeline: payloads, QR PNG, document, PDF (local signer)",
}
OURS_PDF = {"pdf": "certificate_pdf (2 QR, Latin holder)"}

REF_CASES = {
    "sign": "sign+hc1 (who+dcc)",
    "png": "qr+png (who HC1)",
    "qrpdf": "qr pdf (one page, who PNG)",
    "pdf": "card pdf (createDDCC)",
    "one": "one QR docref (addContent who: HC1+PNG+QR PDF)",
    "whole": "whole certificate (addAllContent who+dcc + createDDCC)",
}


def sh(cmd, **kw):
    print("+", " ".join(cmd) if isinstance(cmd, list) else cmd, file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def prepare_med(cache, med_git):
    """A checkout of MED with its own dependencies (npm ci from its package-lock) and its Babel build, cached."""
    med = os.path.join(cache, "med-" + MED_COMMIT)
    ready = os.path.join(med, ".bench-ready")
    if os.path.exists(ready):
        return med
    if not med_git or not os.path.isdir(med_git):
        sys.exit(
            f"need a git clone of https://github.com/{MED_REPO} (--med-git DIR), e.g.\n"
            f"  git clone https://github.com/{MED_REPO} ~/src/ddcc-transactions-mediator"
        )
    if subprocess.run(["pkg-config", "--exists", "cairo", "pangocairo", "pixman-1"]).returncode != 0:
        sys.exit(
            "canvas (MED's barcode raster) builds from source here: "
            "apt-get install libcairo2-dev libpango1.0-dev libjpeg-dev libgif-dev librsvg2-dev"
        )
    shutil.rmtree(med, ignore_errors=True)
    os.makedirs(med)
    archive = subprocess.run(["git", "-C", med_git, "archive", MED_COMMIT], check=True, capture_output=True).stdout
    sh(["tar", "-x", "-C", med], input=archive)
    env = dict(os.environ, PUPPETEER_SKIP_CHROMIUM_DOWNLOAD="1", PUPPETEER_SKIP_DOWNLOAD="1")
    # --ignore-scripts: canvas is rebuilt below; puppeteer (of the unused node-html-to-image) would fetch Chromium.
    sh(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=med, env=env)
    for spec in (NAN, CANVAS):
        name = spec.split("@")[0]
        tgz = sh(["npm", "pack", spec, "--silent"], cwd=cache, capture_output=True, text=True).stdout.strip()
        dest = os.path.join(med, "node_modules", name)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        sh(["tar", "-xzf", os.path.join(cache, tgz), "-C", dest, "--strip-components=1"])
    sh(["npm", "rebuild", "canvas"], cwd=med, env=env)
    sh(["npx", "babel", "src", "--out-dir", "lib"], cwd=med)  # MED's `npm run build`
    open(ready, "w").close()
    return med


def newest(pattern):
    files = [f for f in glob.glob(pattern) if not f.endswith(".d")]
    if not files:
        sys.exit(f"no {pattern}: build it with `cargo bench --no-run` (release)")
    return max(files, key=os.path.getmtime)


def run_timed(cmd, **kw):
    """Wall seconds and user+sys CPU seconds of a child process (its own rusage, from wait4)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({status}): {cmd}")
    return wall, ru.ru_utime + ru.ru_stime


def criterion(binary, names, home, warmup, measure):
    """Criterion's median per iteration (ns) for each exactly named case, read from its estimates.json."""
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, CRITERION_HOME=home)
    out = {}
    for key, name in names.items():
        sh(
            [binary, "--bench", "--exact", name, "--noplot", "--warm-up-time", str(warmup),
             "--measurement-time", str(measure)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home_parent(home),
        )
        for bj in glob.glob(os.path.join(home, "**", "new", "benchmark.json"), recursive=True):
            with open(bj) as f:
                if json.load(f).get("full_id") == name:
                    with open(os.path.join(os.path.dirname(bj), "estimates.json")) as e:
                        out[key] = json.load(e)["median"]["point_estimate"]
        if key not in out:
            sys.exit(f"criterion wrote no estimate for {name!r}")
    return out


def home_parent(home):
    os.makedirs(home, exist_ok=True)
    return os.path.dirname(home)


def make_batch(event_file, n, dest):
    with open(event_file) as f:
        qr = json.load(f)
    entries = []
    for i in range(n):
        e = json.loads(json.dumps(qr))
        for item in e["item"]:
            if item["linkId"] == "hcid":
                item["answer"] = [{"valueString": f"BENCH-HCID-{i:04d}"}]
        entries.append({
            "request": {"method": "POST", "url": "QuestionnaireResponse/$generateHealthCertificate"},
            "resource": {"resourceType": "Parameters", "parameter": [{"name": "response", "resource": e}]},
        })
    with open(dest, "w") as f:
        json.dump({"resourceType": "Bundle", "type": "batch", "entry": entries}, f)


def med(values):
    return statistics.median(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--med-git", default=f"/work/.mirror/{MED_REPO.replace('/', '+')}/repo",
                    help="a git clone of MED (only needed for the first run)")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/ddcc-bench-reference"))
    ap.add_argument("--target", default=os.path.join(REPO, "target", "release"),
                    help="where the release build of ours is (deps/pipeline-*, deps/pdf-*, ddcc-mediator)")
    ap.add_argument("--event", default=os.path.join(REPO, "examples", "vaccination-event.json"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=2.0, help="reference: measured seconds per case per round")
    ap.add_argument("--measurement-time", type=float, default=3.0, help="criterion, per case per round")
    ap.add_argument("--out", default=None, help="markdown table (the raw numbers go to the .json beside it)")
    ap.add_argument("--from-json", help="only re-write the table from a sitting's .json (no measuring)")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            data = json.load(f)
        report = summarise(data["rounds"], data["batch"], data["binaries"], data["head"], data["args"])
        print(report)
        if a.out:
            with open(a.out, "w") as f:
                f.write(report)
        return

    os.makedirs(a.cache, exist_ok=True)
    med_dir = prepare_med(a.cache, a.med_git)
    # tmpfs when there is one: the batch's files, not the disk's fsyncs, are what is compared
    work = tempfile.mkdtemp(prefix="ddcc-ref-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        # Our binaries copied first, so that a rebuild during the sitting cannot change them between rounds.
        sources = [newest(os.path.join(a.target, "deps", "pipeline-*")),
                   newest(os.path.join(a.target, "deps", "pdf-*")), os.path.join(a.target, "ddcc-mediator")]
        built = [(src, time.strftime("%H:%M", time.gmtime(os.path.getmtime(src)))) for src in sources]
        head = head_of(a.target)
        pipeline_bin, pdf_bin, mediator = (shutil.copy2(src, os.path.join(work, os.path.basename(src)))
                                           for src in sources)
        key = os.path.join(work, "throwaway-p256.pem")  # the reference's signer: a local P-256 key, like ours
        sh(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
        batch = os.path.join(work, "batch.json")
        make_batch(a.event, a.batch, batch)
        node_env = dict(os.environ, PRIVATE_KEY_FILE=key, LOG_LEVEL="warn")
        harness = os.path.join(HERE, "harness.mjs")
        # ours signs with its local dev key; made once, outside the measurement
        sh([mediator, "issue", a.event, "--out", os.path.join(work, "warm"), "--key-dir",
            os.path.join(work, "keys")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        rounds = []
        for r in range(a.rounds):
            rec = {"round": r + 1, "start": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   "loadavg_start": os.getloadavg()}
            ref = json.loads(sh(["node", harness, "micro", "--med", med_dir, "--event", a.event,
                                 "--seconds", str(a.seconds)], env=node_env, capture_output=True,
                                text=True).stdout)
            rec["reference"] = ref
            ours = criterion(pipeline_bin, OURS_PIPELINE, os.path.join(work, "criterion"), 1, a.measurement_time)
            ours.update(criterion(pdf_bin, OURS_PDF, os.path.join(work, "criterion"), 1, a.measurement_time))
            rec["ours_ns"] = ours
            out_ref = os.path.join(work, f"ref-{r}")
            wall, cpu = run_timed(["node", harness, "batch", "--med", med_dir, "--batch", batch, "--out", out_ref],
                                  env=node_env, stdout=subprocess.DEVNULL)
            rec["reference_batch"] = {"wall_s": wall, "cpu_s": cpu}
            out_ours = os.path.join(work, f"ours-{r}")
            wall, cpu = run_timed([mediator, "issue", batch, "--out", out_ours, "--key-dir",
                                   os.path.join(work, "keys")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            rec["ours_batch"] = {"wall_s": wall, "cpu_s": cpu}
            for d in (out_ref, out_ours):
                n = len(glob.glob(os.path.join(d, "entry-*")))
                if n != a.batch:
                    sys.exit(f"{d}: {n} certificates, expected {a.batch}")
                shutil.rmtree(d)
            rec["loadavg_end"] = os.getloadavg()
            rounds.append(rec)
            print(json.dumps(rec), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report = summarise(rounds, a.batch, built, head, " ".join(sys.argv[1:]))
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report)
        with open(re.sub(r"\.md$", "", a.out) + ".json", "w") as f:
            json.dump({"rounds": rounds, "binaries": built, "head": head, "batch": a.batch,
                       "args": " ".join(sys.argv[1:])}, f, indent=1)


def head_of(target):
    """The commit of the checkout the release build lives in (the build may include uncommitted changes)."""
    tree = os.path.dirname(os.path.dirname(os.path.abspath(target)))
    got = subprocess.run(["git", "-C", tree, "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return f"`{got.stdout.strip()[:80]}`" if got.returncode == 0 else "unknown"


def summarise(rounds, n, built, head, argv):
    def ref(key, field):
        return med([r["reference"]["results"][REF_CASES[key]][field] for r in rounds])

    def ours(key, div=1):
        return med([r["ours_ns"][key] / div / 1e6 for r in rounds])

    rb_cpu = med([r["reference_batch"]["cpu_s"] * 1e3 / n for r in rounds])
    rb_wall = med([r["reference_batch"]["wall_s"] * 1e3 / n for r in rounds])
    ob_cpu = med([r["ours_batch"]["cpu_s"] * 1e3 / n for r in rounds])
    ob_wall = med([r["ours_batch"]["wall_s"] * 1e3 / n for r in rounds])
    whole = ("whole certificate, like for like (reference: `addAllContent` of the who and dcc DocumentReferences, "
             "each payload + HC1 + PNG + one-page PDF, then `createDDCC`; ours: two payloads, two QRs, the "
             "document, the citizen PDF)")
    rows = [
        ("sign + HC1, per payload (reference: who and dcc `qrContent` ÷ 2; ours: `cwt+sign ddcc+dcc` ÷ 2)",
         "sign", ours("sign", 2)),
        ("QR symbol + PNG (the WHO/DDCC payload)", "png", ours("png")),
        ("PDF, as issue 19's row (reference: `createQRPDF`, the one-page QR PDF; ours: the citizen PDF)",
         "qrpdf", ours("pdf")),
        ("PDF, like for like (reference: `createDDCC`, the 2-page citizen card; ours: the citizen PDF)",
         "pdf", ours("pdf")),
        ("whole certificate, as issue 19's row (reference: `addContent` of one DocumentReference: HC1 + PNG + "
         "one-page PDF; ours: two payloads, two QRs, the document, the citizen PDF)", "one", ours("whole")),
        (whole, "whole", ours("whole")),
    ]
    day = rounds[0]["start"][:10]
    loads = [r["loadavg_start"][0] for r in rounds] + [r["loadavg_end"][0] for r in rounds]
    lines = [
        f"# The WHO reference mediator and ddcc-mediator, one sitting ({day}, rounds started "
        f"{rounds[0]['start'][11:16]}–{rounds[-1]['start'][11:16]} UTC)",
        "",
        f"`bench/reference/run.py {argv}`: method and what each row calls in `bench/reference/README.md`. "
        f"Medians of {len(rounds)} interleaved rounds; 1-minute load average {min(loads):.1f}–{max(loads):.1f} "
        f"on the shared 2-core machine.",
        "",
        "| per certificate | reference CPU | reference wall | ours | reference CPU / ours |",
        "|---|---|---|---|---|",
    ]
    for label, key, o in rows:
        rc, rw = ref(key, "cpu_ms"), ref(key, "wall_ms")
        lines.append(f"| {label} | {rc:.2f} ms | {rw:.2f} ms | {o:.3f} ms | {rc / o:.0f}× |")
    lines += [
        "",
        f"| as a process, a {n}-event batch, per certificate | reference (one Node process) | ours "
        "(`ddcc-mediator issue`) | reference / ours |",
        "|---|---|---|---|",
        f"| CPU (user+sys) | {rb_cpu:.1f} ms | {ob_cpu:.2f} ms | {rb_cpu / ob_cpu:.0f}× |",
        f"| wall | {rb_wall:.1f} ms | {ob_wall:.2f} ms | {rb_wall / ob_wall:.0f}× |",
        "",
        "Per round (reference CPU ms of the whole certificate / ours ms / load average at the round's start):",
        "",
    ]
    for r in rounds:
        lines.append(
            f"- round {r['round']} ({r['start'][11:19]} UTC): "
            f"{r['reference']['results'][REF_CASES['whole']]['cpu_ms']:.1f} / {r['ours_ns']['whole'] / 1e6:.3f}; "
            f"batch wall {r['reference_batch']['wall_s']:.1f} s / {r['ours_batch']['wall_s']:.2f} s; "
            f"load {r['loadavg_start'][0]:.2f}"
        )
    first = rounds[0]["reference"]
    lines += [
        "",
        f"Reference: Node {first['node']}, WHO HC1 {first['hc1_chars']['who']} characters, EU DCC "
        f"{first['hc1_chars']['dcc']}; its QR PNG {first['png_bytes']} bytes, its card PDF "
        f"{first['card_pdf_bytes']} bytes.",
        "Ours: " + ", ".join(f"`{src}` (built {at} UTC)" for src, at in built)
        + f"; that checkout's HEAD when they were copied: {head} (its working tree may hold uncommitted changes).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
