//! Hostile input against the real `ddcc-mediator serve` (embedded defaults: local store): malformed JSON,
//! deep nesting, huge strings, wrong types, duplicate and nested linkIds, control and bidi characters,
//! invalid UTF-8, wrong resources, oversized batches, wrong content types and encodings, wrong methods,
//! long URLs and headers, bad `$getQRCode` ids and path traversal on citizen tokens.
//!
//! Every request goes over a raw TCP socket (so nothing is normalised on the way: `..` segments, invalid
//! UTF-8, bare header values arrive as written). Each must get its 4xx status with a FHIR OperationOutcome
//! (naming the field where there is one), store nothing, and leave the service serving with bounded memory.
//! The corpus is the files in `tests/hostile/` plus the cases generated below.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use support::service::{batch, client, event, Service};

const GENERATE: &str = "/ddcc/generateHealthCertificate";
const SUBMIT: &str = "/ddcc/submitHealthEvent";

/// One hostile request and what it must get.
struct Case {
    name: String,
    method: &'static str,
    path: String,
    /// Extra header lines (`Name: value`), sent as written.
    headers: Vec<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Send the body chunked instead of with a Content-Length.
    chunked: bool,
    status: u16,
    /// Text the OperationOutcome must contain (a FHIRPath, a setting name…).
    mentions: Option<String>,
    /// Rejected by HTTP parsing (actix-http) before any handler runs: a bare 4xx, no OperationOutcome.
    protocol: bool,
}

impl Case {
    fn post(name: impl Into<String>, path: &str, body: Vec<u8>, status: u16) -> Self {
        Case {
            name: name.into(),
            method: "POST",
            path: path.into(),
            headers: Vec::new(),
            content_type: Some("application/fhir+json"),
            body,
            chunked: false,
            status,
            mentions: None,
            protocol: false,
        }
    }

    fn json(name: impl Into<String>, path: &str, body: &Value, status: u16) -> Self {
        Case::post(name, path, serde_json::to_vec(body).unwrap(), status)
    }

    fn get(name: impl Into<String>, path: impl Into<String>, status: u16) -> Self {
        Case {
            method: "GET",
            path: path.into(),
            content_type: None,
            ..Case::post(name, "/", Vec::new(), status)
        }
    }

    fn mentions(mut self, text: impl Into<String>) -> Self {
        self.mentions = Some(text.into());
        self
    }
}

/// A raw HTTP/1.1 exchange: the status, the headers (lower-case names) and the body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn exchange(service: &Service, key: &str, case: &Case) -> Raw {
    let mut stream = TcpStream::connect(("127.0.0.1", service.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {key}\r\n",
        case.method, case.path
    );
    if let Some(ct) = case.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for h in &case.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if case.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else if (case.method == "POST" || !case.body.is_empty())
        && !case.headers.iter().any(|h| h.starts_with("Content-Length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", case.body.len()));
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    if case.chunked {
        for chunk in case.body.chunks(64 * 1024) {
            wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
    } else {
        wire.extend_from_slice(&case.body);
    }
    // The server may answer (413) before reading everything: write on a thread, read here.
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&wire);
        let _ = writer.flush();
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived (unread request bytes) ends the exchange.
            Err(_) if !answer.is_empty() => break,
            Err(e) => panic!("{}: no answer: {e}", case.name),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sending.join();
    parse_raw(&answer).unwrap_or_else(|| {
        panic!(
            "{}: not an HTTP answer: {:?}",
            case.name,
            String::from_utf8_lossy(&answer)
        )
    })
}

fn parse_raw(answer: &[u8]) -> Option<Raw> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = answer[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Raw {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The corpus files, each a body for `generateHealthCertificate`: `<name>.<status>.json` (any bytes).
fn corpus_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/hostile")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let status: u16 = name
                .rsplit('.')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!("{name}: name the expected status: <what>.<status>.json")
                });
            Case::post(
                format!("corpus/{name}"),
                GENERATE,
                std::fs::read(&path).unwrap(),
                status,
            )
        })
        .collect()
}

fn item(link_id: &str) -> String {
    format!("QuestionnaireResponse.item.where(linkId='{link_id}')")
}

/// `value` nested `depth` levels deep in arrays.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut s = "[".repeat(depth);
    s.push_str(&"]".repeat(depth));
    s.into_bytes()
}

/// The generated cases.
fn generated_cases() -> Vec<Case> {
    let valid = event("HOSTILE-0001", &[]);
    let with = |link_id: &str, answer: Value| event("HOSTILE-0001", &[(link_id, answer)]);
    let mut cases = Vec::new();

    // Deep nesting: far past serde_json's recursion limit, as plain arrays, objects, and items.
    cases.push(Case::post(
        "10,000 nested arrays",
        GENERATE,
        nested_arrays(10_000),
        422,
    ));
    let mut objects = "{\"a\":".repeat(10_000);
    objects.push('1');
    objects.push_str(&"}".repeat(10_000));
    cases.push(Case::post(
        "10,000 nested objects",
        GENERATE,
        objects.into_bytes(),
        422,
    ));
    // Written as text: a serde_json Value that deep would overflow the stack here too.
    let mut text =
        String::from(r#"{"resourceType":"QuestionnaireResponse","status":"completed","item":["#);
    text.push_str(&r#"{"linkId":"g","item":["#.repeat(10_000));
    text.push_str(r#"{"linkId":"name","answer":[{"valueString":"x"}]}"#);
    text.push_str(&"]}".repeat(10_000));
    text.push_str("]}");
    cases.push(Case::post(
        "10,000 nested items",
        GENERATE,
        text.into_bytes(),
        422,
    ));
    let mut shallow = valid.clone();
    let mut nested = json!({"linkId": "dose", "answer": [{"valueInteger": 1}]});
    for level in 0..40 {
        nested = json!({"linkId": format!("group{level}"), "item": [nested]});
    }
    shallow["item"].as_array_mut().unwrap().push(nested);
    cases.push(Case::json("40 nested items", GENERATE, &shallow, 422).mentions("group"));
    cases.push(Case::post(
        "10,000 nested arrays in a batch",
        SUBMIT,
        nested_arrays(10_000),
        422,
    ));

    // Huge strings: within the body limit (the text limit names the field) and over it.
    let huge = "A".repeat(900_000);
    cases.push(
        Case::json(
            "900 kB hcid",
            GENERATE,
            &with("hcid", json!({"valueString": huge})),
            422,
        )
        .mentions(item("hcid")),
    );
    cases.push(
        Case::json(
            "1,001-character name",
            GENERATE,
            &with("name", json!({"valueString": "N".repeat(1_001)})),
            422,
        )
        .mentions(item("name")),
    );
    let mut long_linkid = valid.clone();
    long_linkid["item"][0]["linkId"] = json!("L".repeat(500_000));
    cases.push(Case::json(
        "500 kB unknown linkId",
        GENERATE,
        &long_linkid,
        422,
    ));
    cases.push(
        Case::post(
            "2 MB body with Content-Length",
            GENERATE,
            vec![b' '; 2 * 1024 * 1024],
            413,
        )
        .mentions("DDCC_BODY_LIMIT"),
    );
    cases.push(
        Case {
            chunked: true,
            ..Case::post(
                "2 MB chunked body",
                GENERATE,
                vec![b' '; 2 * 1024 * 1024],
                413,
            )
        }
        .mentions("DDCC_BODY_LIMIT"),
    );
    cases.push(Case::post(
        "Content-Length says 10 GB",
        GENERATE,
        Vec::new(),
        413,
    ));
    if let Some(c) = cases.last_mut() {
        c.headers.push("Content-Length: 10000000000".into());
        c.body = b"{}".to_vec();
    }

    // Wrong answer types, each named by its item.
    for (link_id, answer) in [
        ("birthDate", json!({"valueString": "1990-02-14"})),
        ("birthDate", json!({"valueDate": "1990-13-45"})),
        ("birthDate", json!({"valueDate": 19900214})),
        ("dose", json!({"valueString": "1"})),
        ("dose", json!({"valueInteger": -1})),
        ("dose", json!({"valueInteger": 1e300})),
        (
            "dose",
            json!({"valueInteger": 99999999999999999999u128 as f64}),
        ),
        ("vaccine", json!({"valueString": "mRNA"})),
        ("vaccine", json!({"valueCoding": "1119349007"})),
        (
            "sex",
            json!({"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "robot"}}),
        ),
        ("date", json!({"valueDate": "yesterday"})),
        ("hcid", json!({"valueInteger": 7})),
        ("hcid", json!({"valueString": ""})),
        ("name", json!({"valueBoolean": true})),
        ("name", json!({"valueString": null})),
    ] {
        cases.push(
            Case::json(
                format!("{link_id} answered with {answer}"),
                GENERATE,
                &with(link_id, answer),
                422,
            )
            .mentions(item(link_id)),
        );
    }
    let mut answer_object = valid.clone();
    answer_object["item"][0]["answer"] = json!({"valueString": "x"});
    // serde names no path for a wrongly typed element; the outcome names the resource and the JSON type.
    cases.push(
        Case::json("answer is an object", GENERATE, &answer_object, 422)
            .mentions("expected a sequence"),
    );
    let mut two_answers = valid.clone();
    two_answers["item"][0]["answer"] = json!([{"valueString": "a"}, {"valueString": "b"}]);
    cases.push(Case::json("two answers", GENERATE, &two_answers, 422).mentions(item("name")));
    let mut no_items = valid.clone();
    no_items["item"] = json!([]);
    cases.push(Case::json("no items", GENERATE, &no_items, 422).mentions(item("hcid")));
    let mut items_string = valid.clone();
    items_string["item"] = json!("all of them");
    cases.push(Case::json("item is a string", GENERATE, &items_string, 422));
    let mut status_draft = valid.clone();
    status_draft["status"] = json!("in-progress");
    cases.push(Case::json("status in-progress", GENERATE, &status_draft, 422).mentions("status"));

    // Duplicate and misplaced linkIds.
    let mut duplicate = valid.clone();
    let first = duplicate["item"][0].clone();
    duplicate["item"].as_array_mut().unwrap().push(first);
    cases.push(Case::json("duplicate name item", GENERATE, &duplicate, 422).mentions(item("name")));
    let mut nested_known = valid.clone();
    let hcid_item = json!({"linkId": "hcid", "answer": [{"valueString": "NESTED"}]});
    nested_known["item"][0]["item"] = json!([hcid_item]);
    cases.push(Case::json("hcid nested under name", GENERATE, &nested_known, 422).mentions("name"));
    let mut many = valid.clone();
    let filler: Vec<Value> = (0..20_000)
        .map(|i| json!({"linkId": format!("x{i}")}))
        .collect();
    many["item"].as_array_mut().unwrap().extend(filler);
    cases.push(Case::json("20,000 unknown items", GENERATE, &many, 422));
    let mut quote = valid.clone();
    quote["item"][0]["linkId"] = json!("name') or true or ('");
    cases.push(Case::json(
        "FHIRPath injection in linkId",
        GENERATE,
        &quote,
        422,
    ));

    // Control characters, bidi overrides, invalid UTF-8.
    for (what, text) in [
        ("NUL", "Zo\u{0}e"),
        ("line break", "Zoe\nAdmin"),
        ("escape sequence", "Zoe\u{1b}[31m"),
        ("right-to-left override", "Zoe \u{202E}dnarud"),
        ("first-strong isolate", "\u{2068}Zoe"),
        ("C1 control", "Zoe\u{85}"),
    ] {
        cases.push(
            Case::json(
                format!("{what} in name"),
                GENERATE,
                &with("name", json!({"valueString": text})),
                422,
            )
            .mentions(item("name")),
        );
    }
    cases.push(
        Case::json(
            "bidi override in hcid",
            GENERATE,
            &with("hcid", json!({"valueString": "ID\u{202E}123"})),
            422,
        )
        .mentions(item("hcid")),
    );
    // Invisible and line-separating characters that bidi and control checks once let through.
    for (what, text) in [
        ("right-to-left mark", "Zoe\u{200F}"),
        ("Arabic letter mark", "\u{061C}Zoe"),
        ("line separator", "Zoe\u{2028}Admin"),
        ("paragraph separator", "Zoe\u{2029}"),
        (
            "interlinear annotation",
            "Zoe\u{FFF9}hidden\u{FFFA}x\u{FFFB}",
        ),
    ] {
        cases.push(
            Case::json(
                format!("{what} in name"),
                GENERATE,
                &with("name", json!({"valueString": text})),
                422,
            )
            .mentions(item("name")),
        );
    }
    let mut invalid_utf8 =
        serde_json::to_vec(&with("name", json!({"valueString": "ZZZZ"}))).unwrap();
    let at = invalid_utf8.windows(4).position(|w| w == b"ZZZZ").unwrap();
    invalid_utf8[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
    cases.push(Case::post(
        "invalid UTF-8 in a string",
        GENERATE,
        invalid_utf8,
        422,
    ));
    cases.push(Case::post(
        "lone surrogate escape",
        GENERATE,
        br#"{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"\ud800"}]}"#
            .to_vec(),
        422,
    ));
    cases.push(Case::post(
        "UTF-16 body",
        GENERATE,
        "{\"resourceType\":\"QuestionnaireResponse\"}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect(),
        422,
    ));

    // Repeated keys (the last would win) and modifier extensions (which FHIR requires refusing).
    let text = serde_json::to_string(&valid).unwrap();
    let doubled = text.replacen(
        "\"valueString\":\"HOSTILE-0001\"",
        "\"valueString\":\"HOSTILE-0001\",\"valueString\":\"HOSTILE-9999\"",
        1,
    );
    assert_ne!(doubled, text);
    cases.push(
        Case::post(
            "repeated key in the hcid answer",
            GENERATE,
            doubled.into_bytes(),
            422,
        )
        .mentions("].answer[0].valueString"),
    );
    let doubled_type = text.replacen(
        "\"resourceType\":\"QuestionnaireResponse\"",
        "\"resourceType\":\"QuestionnaireResponse\",\"resourceType\":\"Patient\"",
        1,
    );
    cases.push(
        Case::post(
            "repeated resourceType",
            GENERATE,
            doubled_type.into_bytes(),
            422,
        )
        .mentions("QuestionnaireResponse.resourceType"),
    );
    let mut modifier = valid.clone();
    modifier["item"][0]["modifierExtension"] =
        json!([{"url": "http://example.org/void", "valueBoolean": true}]);
    cases.push(
        Case::json("modifierExtension on an item", GENERATE, &modifier, 422)
            .mentions("QuestionnaireResponse.item[0].modifierExtension"),
    );
    let mut modifier_in_batch = batch(vec![valid.clone()]);
    modifier_in_batch["entry"][0]["modifierExtension"] = json!([{"url": "http://example.org/x"}]);
    cases.push(
        Case::json(
            "modifierExtension on a batch entry",
            SUBMIT,
            &modifier_in_batch,
            422,
        )
        .mentions("Bundle.entry[0].modifierExtension"),
    );

    // Impossible dates.
    for (link_id, date) in [
        ("date", "9999-12-31"),
        ("date", "2099-01-01"),
        ("birthDate", "9999-12-31"),
    ] {
        cases.push(
            Case::json(
                format!("{link_id} {date}"),
                GENERATE,
                &with(link_id, json!({"valueDate": date})),
                422,
            )
            .mentions(item(link_id)),
        );
    }
    cases.push(
        Case::json(
            "born after the vaccination",
            GENERATE,
            &with("birthDate", json!({"valueDate": "2026-10-13"})),
            422,
        )
        .mentions("QuestionnaireResponse.item.where(linkId='birthDate' or linkId='date')"),
    );

    // Wrong resources and wrappers.
    let mut unknown_q = valid.clone();
    unknown_q["questionnaire"] = json!("http://example.org/Questionnaire/other");
    cases.push(
        Case::json("unknown questionnaire", GENERATE, &unknown_q, 422).mentions("questionnaire"),
    );
    let mut no_q = valid.clone();
    no_q.as_object_mut().unwrap().remove("questionnaire");
    cases.push(Case::json("no questionnaire", GENERATE, &no_q, 422).mentions("questionnaire"));
    let mut patient = valid.clone();
    patient["resourceType"] = json!("Patient");
    cases.push(Case::json("resourceType Patient", GENERATE, &patient, 422).mentions("Patient"));
    let mut no_type = valid.clone();
    no_type.as_object_mut().unwrap().remove("resourceType");
    cases.push(Case::json("no resourceType", GENERATE, &no_type, 422).mentions("resourceType"));
    let mut numeric_type = valid.clone();
    numeric_type["resourceType"] = json!(42);
    cases.push(Case::json(
        "numeric resourceType",
        GENERATE,
        &numeric_type,
        422,
    ));
    cases.push(
        Case::json(
            "Parameters without response",
            GENERATE,
            &json!({"resourceType": "Parameters", "parameter": [{"name": "other", "valueString": "x"}]}),
            422,
        )
        .mentions("Parameters.parameter.where(name='response')"),
    );
    cases.push(
        Case::json(
            "Parameters with two responses",
            GENERATE,
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "response", "resource": valid}, {"name": "response", "resource": valid}]}),
            422,
        )
        .mentions("Parameters.parameter.where(name='response')"),
    );
    cases.push(
        Case::json(
            "Parameters holding a Patient",
            GENERATE,
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "response", "resource": {"resourceType": "Patient"}}]}),
            422,
        )
        .mentions("Parameters.parameter.where(name='response').resource"),
    );
    cases.push(Case::json(
        "Parameters.parameter is an object",
        GENERATE,
        &json!({"resourceType": "Parameters", "parameter": {"name": "response"}}),
        422,
    ));
    cases.push(Case::json(
        "batch posted to generateHealthCertificate",
        GENERATE,
        &batch(vec![valid.clone()]),
        400,
    ));
    cases.push(Case::json(
        "single posted to submitHealthEvent",
        SUBMIT,
        &valid,
        400,
    ));
    cases.push(
        Case::json(
            "transaction Bundle",
            SUBMIT,
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": valid}]}),
            422,
        )
        .mentions("Bundle.type"),
    );
    cases.push(
        Case::json(
            "empty batch",
            SUBMIT,
            &json!({"resourceType": "Bundle", "type": "batch", "entry": []}),
            422,
        )
        .mentions("Bundle.entry"),
    );
    cases.push(Case::json(
        "batch entry is a string",
        SUBMIT,
        &json!({"resourceType": "Bundle", "type": "batch", "entry": ["x"]}),
        422,
    ));

    // Batches: thousands of entries over DDCC_MAX_BATCH_ENTRIES (1,000), and 1,000 invalid ones.
    let tiny = |i: usize| {
        json!({"request": {"method": "POST", "url": "QuestionnaireResponse/$generateHealthCertificate"},
               "resource": {"resourceType": "QuestionnaireResponse", "id": format!("e{i}")}})
    };
    let over: Vec<Value> = (0..5_000).map(tiny).collect();
    cases.push(
        Case::json(
            "batch of 5,000 entries",
            SUBMIT,
            &json!({"resourceType": "Bundle", "type": "batch", "entry": over}),
            413,
        )
        .mentions("DDCC_MAX_BATCH_ENTRIES"),
    );
    let one_over: Vec<Value> = (0..1_001).map(tiny).collect();
    cases.push(
        Case::json(
            "batch of 1,001 entries",
            SUBMIT,
            &json!({"resourceType": "Bundle", "type": "batch", "entry": one_over}),
            413,
        )
        .mentions("DDCC_MAX_BATCH_ENTRIES"),
    );

    // Content types and encodings.
    let body = serde_json::to_vec(&valid).unwrap();
    for (ct, status) in [
        (Some("text/plain"), 415),
        (Some("application/xml"), 415),
        (Some("application/fhir+xml"), 415),
        (Some("multipart/form-data; boundary=x"), 415),
        (Some("application/x-www-form-urlencoded"), 415),
        (Some(""), 415),
        (None, 415),
    ] {
        cases.push(Case {
            content_type: ct,
            ..Case::post(
                format!("Content-Type {ct:?}"),
                GENERATE,
                body.clone(),
                status,
            )
        });
    }
    let mut gzip_garbage = Case::post(
        "gzip-declared plain JSON",
        GENERATE,
        serde_json::to_vec(&with("hcid", json!({"valueString": "HOSTILE-GZ"}))).unwrap(),
        415,
    );
    gzip_garbage.headers.push("Content-Encoding: gzip".into());
    cases.push(gzip_garbage);
    let mut bomb = Case::post("gzip bomb (100 MiB of spaces)", GENERATE, gzip_bomb(), 415);
    bomb.headers.push("Content-Encoding: gzip".into());
    cases.push(bomb.mentions("Content-Encoding"));
    // Two Content-Encoding fields: the second counts as much as the first.
    let mut two_encodings = Case::post(
        "Content-Encoding identity, then gzip",
        GENERATE,
        serde_json::to_vec(&with("hcid", json!({"valueString": "HOSTILE-TWO-CE"}))).unwrap(),
        415,
    );
    two_encodings.headers.extend([
        "Content-Encoding: identity".into(),
        "Content-Encoding: gzip".into(),
    ]);
    cases.push(two_encodings.mentions("gzip"));
    let mut listed = Case::post(
        "Content-Encoding: identity, gzip",
        GENERATE,
        body.clone(),
        415,
    );
    listed
        .headers
        .push("Content-Encoding: identity, gzip".into());
    cases.push(listed);
    let mut unknown_encoding = Case::post("Content-Encoding: rot13", GENERATE, body.clone(), 415);
    unknown_encoding
        .headers
        .push("Content-Encoding: rot13".into());
    cases.push(unknown_encoding);

    // Methods.
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        cases.push(Case {
            method,
            ..Case::post(format!("{method} {GENERATE}"), GENERATE, body.clone(), 405)
        });
    }
    cases.push(Case {
        method: "DELETE",
        ..Case::get("DELETE /trust/jwks.json", "/trust/jwks.json", 405)
    });

    // Long URLs and headers within what HTTP parsing takes (the answer is the endpoint's 404/405).
    cases.push(Case::get(
        "8 kB path",
        format!("/ddcc/{}", "a".repeat(8_000)),
        404,
    ));
    cases.push(Case::get(
        "8 kB query on a POST endpoint",
        format!("{GENERATE}?{}", "q=1&".repeat(2_000)),
        405,
    ));
    let mut long_header = Case::post("100 kB custom header", GENERATE, b"{".to_vec(), 422);
    long_header
        .headers
        .push(format!("X-Filler: {}", "h".repeat(100_000)));
    cases.push(long_header);
    cases.push(Case {
        method: "BREW",
        ..Case::post("method BREW", GENERATE, body.clone(), 405)
    });
    // Past what HTTP parsing takes: actix-http answers itself, before any handler.
    cases.push(Case {
        protocol: true,
        ..Case::get("100 kB URL", format!("/ddcc/{}", "a".repeat(100_000)), 400)
    });
    let mut many_headers = Case {
        protocol: true,
        ..Case::get("200 header fields", "/health/live", 431)
    };
    many_headers
        .headers
        .extend((0..200).map(|i| format!("X-Filler-{i}: 1")));
    cases.push(many_headers);

    // $getQRCode with bad ids.
    for id in [
        "does-not-exist",
        "..%2F..%2Fapi-key",
        "%2e%2e",
        "..",
        "00000000-0000-0000-0000-000000000000",
        &"9".repeat(2_000),
        "%00",
        "%FF%FE",
        "a%2Fb",
    ] {
        cases.push(Case::get(
            format!("$getQRCode id {}", &id[..id.len().min(40)]),
            format!("/ddcc/DocumentReference/{id}/$getQRCode"),
            404,
        ));
    }

    // Path traversal and junk on citizen tokens: always the same bare 404 (not an OperationOutcome).
    for path in [
        "/certificates/../api-key",
        "/certificates/..%2F..%2Fapi-key/certificate.pdf",
        "/certificates/%2e%2e%2f%2e%2e%2flink-secret/ddcc-qr.png",
        "/certificates/../../etc/passwd/ddcc-qr.png",
        "/certificates/....//....//api-key/dcc-qr.png",
        "/certificates/x/..%2f..%2f..%2fapi-key",
        "/certificates/%00/certificate.pdf",
        "/certificates/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/certificate.pdf",
        "/certificates/store%2FBundle/certificate.pdf",
    ] {
        cases.push(Case::get(format!("citizen {path}"), path, 404));
    }
    cases
}

/// A gzip stream of 100 MiB of spaces (about 100 kB compressed), far over the body limit once inflated.
fn gzip_bomb() -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1 << 20];
    for _ in 0..100 {
        encoder.write_all(&block).unwrap();
    }
    encoder.finish().unwrap()
}

/// Citizen downloads answer unknown tokens with a bare 404 (no hint of what exists); other answers are
/// OperationOutcomes.
fn is_citizen(case: &Case) -> bool {
    case.path.starts_with("/certificates/")
}

#[test]
fn hostile_requests_get_4xx_outcomes_store_nothing_and_the_service_keeps_serving() {
    let service = Service::start(&[]);
    let key = service.api_key();
    let store_before = service.stored_files();
    assert!(store_before.is_empty(), "a fresh store: {store_before:?}");
    let rss_start = service.rss_kib();

    let mut cases = corpus_cases();
    cases.extend(generated_cases());
    let mut failures = Vec::new();
    let mut rss_peak = rss_start;
    for case in &cases {
        let raw = exchange(&service, &key, case);
        rss_peak = rss_peak.max(service.rss_kib());
        let text = String::from_utf8_lossy(&raw.body);
        let short: String = text.chars().take(300).collect();
        if raw.status != case.status {
            failures.push(format!(
                "{}: status {} (want {}): {short}",
                case.name, raw.status, case.status
            ));
            continue;
        }
        if text.contains(&key) {
            failures.push(format!("{}: the answer holds the API key", case.name));
            continue;
        }
        // The citizen route's own 404 is bare; paths with more segments are no endpoint at all.
        if (is_citizen(case) && raw.body == b"not found\n") || case.protocol {
            continue;
        }
        let fhir = raw
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/fhir+json"));
        let outcome: Option<Value> = serde_json::from_slice(&raw.body).ok();
        let Some(outcome) = outcome.filter(|o| o["resourceType"] == "OperationOutcome" && fhir)
        else {
            failures.push(format!(
                "{}: not a FHIR OperationOutcome ({:?}): {short}",
                case.name,
                raw.header("content-type")
            ));
            continue;
        };
        if let Some(needle) = &case.mentions {
            if !outcome["issue"].to_string().contains(needle.as_str()) {
                failures.push(format!(
                    "{}: the outcome does not mention {needle:?}: {short}",
                    case.name
                ));
            }
        }
    }
    // The 1,000-entry batch of invalid entries: 200 with one 422 per entry, in order, nothing issued.
    let tiny: Vec<Value> = (0..1_000)
        .map(|i| json!({"resourceType": "QuestionnaireResponse", "id": format!("e{i}")}))
        .collect();
    let r = service.post_json(SUBMIT, Some(&key), &batch(tiny));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let entries = r.json()["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1_000);
    assert!(entries
        .iter()
        .all(|e| e["response"]["status"] == "422 Unprocessable Entity"
            && e["response"]["outcome"]["resourceType"] == "OperationOutcome"));
    rss_peak = rss_peak.max(service.rss_kib());

    println!(
        "hostile inputs tried: {} (+ one 1,000-entry batch); RSS start {} MiB, peak {} MiB, end {} MiB",
        cases.len(),
        rss_start / 1024,
        rss_peak / 1024,
        service.rss_kib() / 1024
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 60, "{} cases", cases.len());

    // Nothing stored, and the secrets are where they were.
    assert_eq!(
        service.stored_files(),
        store_before,
        "hostile input stored something"
    );
    assert!(service.data_dir.join("api-key").is_file());

    // Memory stays bounded: a gzip bomb and MB-sized bodies do not stay resident.
    assert!(
        rss_peak < rss_start + 512 * 1024,
        "RSS grew from {rss_start} KiB to {rss_peak} KiB"
    );

    // Still serving: a valid event is issued and stored.
    let r = service.post_json(GENERATE, Some(&key), &event("HOSTILE-VALID-1", &[]));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert!(service
        .stored_files()
        .iter()
        .any(|p| p.to_string_lossy().contains("/Bundle/")));
    let ready = service.get("/health/ready", None);
    assert_eq!(ready.status, 200);

    // A download token works exactly as issued: its upper-case spelling is no token.
    let pdf = r.json()["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "certificate")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&service.url)
        .to_owned();
    assert_eq!(service.get(&pdf, None).status, 200);
    let token = pdf.split('/').nth(2).unwrap();
    let upper = pdf.replace(token, &token.to_ascii_uppercase());
    assert_eq!(service.get(&upper, None).status, 404, "{upper}");
}

/// Reads one HTTP/1.1 answer (head and Content-Length body) from `stream`; `None` when the connection
/// ended first.
fn read_answer(stream: &mut TcpStream) -> Option<Raw> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(split) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..split]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= split + 4 + length {
                return parse_raw(&data[..split + 4 + length]);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Waits up to `limit` for the server to close `stream`; how long that took, or `None` if it stayed open.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = std::time::Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

fn connect(service: &Service) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", service.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

#[test]
fn connections_are_bounded_in_time_and_number() {
    let timeout = 4;
    let service = Service::start(&[
        ("DDCC_REQUEST_TIMEOUT", timeout.to_string()),
        ("DDCC_MAX_CONNECTIONS_PER_CLIENT", "8".into()),
    ]);
    let key = service.api_key();
    let limit = Duration::from_secs(timeout + 6);
    // A chunked body whose last chunk never comes, answered 200, 401 and (body deadline) 408: each
    // connection is closed once answered.
    for (what, request, status) in [
        (
            "GET /health/live",
            "GET /health/live HTTP/1.1\r\nHost: x\r\n".to_owned(),
            200,
        ),
        (
            "POST without credentials",
            format!("POST {GENERATE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"),
            401,
        ),
        (
            "POST with a key",
            format!(
                "POST {GENERATE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/fhir+json\r\n"
            ),
            408,
        ),
    ] {
        let mut stream = connect(&service);
        let wire = format!("{request}Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n");
        stream.write_all(wire.as_bytes()).unwrap();
        let answer = read_answer(&mut stream).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(answer.status, status, "{what}");
        let closed = closed_within(&mut stream, limit);
        assert!(closed.is_some(), "{what}: still open {limit:?} after the answer");
    }
    // A kept-alive connection whose next request head never completes.
    let mut stream = connect(&service);
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut stream).unwrap().status, 200);
    stream.write_all(b"GET /health/li").unwrap();
    let closed = closed_within(&mut stream, limit);
    assert!(
        closed.is_some(),
        "a half-sent second request holds the connection"
    );

    // At most 8 connections from one address: the 9th is closed at once, without an answer.
    let mut open: Vec<TcpStream> = (0..8).map(|_| connect(&service)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut ninth = connect(&service);
    let _ = ninth.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
    let closed = closed_within(&mut ninth, Duration::from_secs(3));
    assert!(
        closed.is_some(),
        "a 9th connection from one address is served"
    );
    // Once the others are gone, the address is served again.
    for stream in &mut open {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    drop(open);
    std::thread::sleep(Duration::from_millis(500));
    let metrics = service.get("/metrics", None);
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("ddcc_connections_refused_total ") && !l.ends_with(" 0")),
        "{text}"
    );
}

#[test]
fn metrics_labels_come_from_a_closed_set() {
    let service = Service::start(&[]);
    for i in 0..200 {
        let method = format!("M{i}{}", "X".repeat(1_000));
        let mut stream = connect(&service);
        let wire =
            format!("{method} /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(wire.as_bytes()).unwrap();
        let answer = read_answer(&mut stream).expect("an answer");
        assert_eq!(answer.status, 405);
    }
    let metrics = service.get("/metrics", None);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(!text.contains("XXXX"), "a method as sent is a label");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(
        metrics.body.len() < 64 * 1024,
        "{} bytes",
        metrics.body.len()
    );
}

#[test]
fn the_audit_trail_is_bounded_in_record_size_and_refusal_rate() {
    let service = Service::start(&[("DDCC_AUDIT_REFUSAL_RATE", "5/h".into())]);
    let huge = "C".repeat(100_000);
    for _ in 0..40 {
        let r = client()
            .post(format!("{}{GENERATE}", service.url))
            .header("Content-Type", "application/fhir+json")
            .header("X-OpenHIM-ClientID", &huge)
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(service.data_dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                assert!(l.len() < 4096, "an audit line of {} bytes", l.len());
                serde_json::from_str(l).expect("whole JSON lines")
            })
            .collect()
    };
    assert_eq!(lines().len(), 5, "5 refusals are recorded one by one");
    // The 35 others are counted, and summarised before the next event.
    let r = service.post_json(
        GENERATE,
        Some(&service.api_key()),
        &event("AUDIT-BOUND-1", &[]),
    );
    assert_eq!(r.status, 201);
    let events = lines();
    assert_eq!(events.len(), 7, "{events:#?}");
    assert!(
        events[5]["outcomeDesc"]
            .as_str()
            .unwrap()
            .starts_with("35 refused request(s) from 1 client address(es)"),
        "{:#}",
        events[5]
    );
    assert_eq!(events[5]["agent"][0]["network"]["address"], "127.0.0.1");
    assert_eq!(events[6]["outcome"], "0");
    let metrics = String::from_utf8_lossy(&service.get("/metrics", None).body).into_owned();
    assert!(
        metrics.contains("ddcc_audit_refusals_summarised_total 35"),
        "{metrics}"
    );
    assert!(
        !std::fs::read_to_string(service.data_dir.join("audit.jsonl"))
            .unwrap()
            .contains("CCCCCCCCCC")
    );
}

#[test]
fn large_batch_answers_carry_references_instead_of_documents() {
    let service = Service::start(&[("DDCC_MAX_RESPONSE_BYTES", "65536".into())]);
    let key = service.api_key();
    let entries: Vec<Value> = (0..10)
        .map(|i| event(&format!("BATCH-BOUND-{i:02}"), &[]))
        .collect();
    let r = service.post_json(SUBMIT, Some(&key), &batch(entries.clone()));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body.len() <= 65_536, "{} bytes", r.body.len());
    assert_eq!(
        r.header("preference-applied").as_deref(),
        Some("return=minimal")
    );
    let answer = r.json();
    let answered = answer["entry"].as_array().unwrap();
    assert_eq!(answered.len(), 10);
    for entry in answered {
        assert_eq!(entry["response"]["status"], "201 Created");
        assert!(entry["resource"].is_null());
        assert!(entry["response"]["location"]
            .as_str()
            .unwrap()
            .starts_with("Bundle/"));
        assert!(entry["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "certificate"));
    }
    // Posting one entry again returns its document.
    let one = service.post_json(GENERATE, Some(&key), &entries[3]);
    assert_eq!(one.status, 200);
    assert_eq!(
        format!("Bundle/{}", one.json()["id"].as_str().unwrap()),
        answered[3]["response"]["location"].as_str().unwrap()
    );
    // A small batch is answered in full, unless the caller prefers less.
    let small = batch(vec![event("BATCH-BOUND-SMALL", &[])]);
    let full = service.post_json(SUBMIT, Some(&key), &small);
    assert_eq!(
        full.json()["entry"][0]["resource"]["resourceType"],
        "Bundle"
    );
    let minimal = client()
        .post(format!("{}{SUBMIT}", service.url))
        .bearer_auth(&key)
        .header("Content-Type", "application/fhir+json")
        .header("Prefer", "return=minimal")
        .body(small.to_string())
        .send()
        .unwrap();
    let minimal: Value = minimal.json().unwrap();
    assert!(minimal["entry"][0]["resource"].is_null());
    assert_eq!(minimal["entry"][0]["response"]["status"], "200 OK");
}
