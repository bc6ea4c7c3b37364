//! One rule per test, each on a copy of the WHO mediator's demo response (`examples/qr-demo-1`) with one
//! thing changed, so each asserts exactly the issue that change must produce.

use std::path::Path;

use serde_json::{json, Value};

use super::*;
use crate::domain::{Producer, Sex};
use crate::error::Issue;

const QR: &str = "QuestionnaireResponse";

fn demo() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/examples/qr-demo-1.QuestionnaireResponse.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("demo QR")).expect("JSON")
}

fn items(qr: &mut Value) -> &mut Vec<Value> {
    qr["item"].as_array_mut().expect("items")
}

fn item<'a>(qr: &'a mut Value, link_id: &str) -> &'a mut Value {
    items(qr)
        .iter_mut()
        .find(|i| i["linkId"] == link_id)
        .expect("item present")
}

/// Replaces the single answer of `link_id` with `answer`.
fn answer(mut qr: Value, link_id: &str, answer: Value) -> Value {
    item(&mut qr, link_id)["answer"] = json!([answer]);
    qr
}

fn without(mut qr: Value, link_ids: &[&str]) -> Value {
    items(&mut qr).retain(|i| !link_ids.iter().any(|l| i["linkId"] == *l));
    qr
}

fn submit(body: &Value) -> Result<Submission> {
    read_submission(body.to_string().as_bytes())
}

fn event(qr: &Value) -> VaccinationEvent {
    match submit(qr) {
        Ok(Submission::Single(Ok(event))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The issues of an invalid single response.
fn issues(qr: &Value) -> Vec<Issue> {
    match submit(qr) {
        Ok(Submission::Single(Err(Error::Invalid(issues)))) => issues,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Asserts that `qr` yields exactly one issue, with this code and expression.
fn one_issue(qr: &Value, code: &str, expression: &str) -> Issue {
    let found = issues(qr);
    assert_eq!(found.len(), 1, "{found:#?}");
    let issue = found.into_iter().next().expect("one");
    assert_eq!(issue.code, code, "{issue:?}");
    assert_eq!(issue.expression.as_deref(), Some(expression), "{issue:?}");
    issue
}

fn value_at(link_id: &str) -> String {
    format!("{QR}.item.where(linkId='{link_id}').answer[0].value")
}

fn item_at(link_id: &str) -> String {
    format!("{QR}.item.where(linkId='{link_id}')")
}

#[test]
fn the_demo_response_is_valid() {
    let e = event(&demo());
    assert_eq!(e.holder.name.as_str(), "Eddie Murphy");
    assert_eq!(e.holder.sex, Some(Sex::Male));
    assert_eq!(e.vaccination.dose.get(), 1);
    assert!(matches!(e.vaccination.producer, Producer::Both { .. }));
}

#[test]
fn wrong_answer_types_are_named() {
    let issue = one_issue(
        &answer(demo(), "dose", json!({"valueString": "1"})),
        "value",
        &value_at("dose"),
    );
    assert!(issue.message.contains("valueInteger"), "{}", issue.message);
    one_issue(
        &answer(
            demo(),
            "date",
            json!({"valueDateTime": "2021-07-08T10:00:00Z"}),
        ),
        "value",
        &value_at("date"),
    );
    one_issue(
        &answer(demo(), "country", json!({"valueString": "USA"})),
        "value",
        &value_at("country"),
    );
    one_issue(
        &answer(demo(), "name", json!({"valueCoding": {"code": "x"}})),
        "value",
        &value_at("name"),
    );
    // The right element with the wrong JSON type.
    one_issue(
        &answer(demo(), "dose", json!({"valueInteger": "1"})),
        "value",
        &value_at("dose"),
    );
    one_issue(
        &answer(demo(), "lot", json!({"valueString": 123})),
        "value",
        &value_at("lot"),
    );
    one_issue(
        &answer(demo(), "birthDate", json!({"valueDate": 1986})),
        "value",
        &value_at("birthDate"),
    );
    one_issue(
        &answer(demo(), "vaccine", json!({"valueCoding": "1119349007"})),
        "value",
        &value_at("vaccine"),
    );
}

#[test]
fn dates_must_be_real_and_the_vaccination_date_full() {
    let issue = one_issue(
        &answer(demo(), "date", json!({"valueDate": "2021-02-30"})),
        "value",
        &value_at("date"),
    );
    assert!(
        issue.message.contains("real calendar day"),
        "{}",
        issue.message
    );
    assert!(
        !issue.message.contains("2021-02-30"),
        "answers are not echoed"
    );
    one_issue(
        &answer(demo(), "birthDate", json!({"valueDate": "1986-13"})),
        "value",
        &value_at("birthDate"),
    );
    let issue = one_issue(
        &answer(demo(), "date", json!({"valueDate": "2021-07"})),
        "value",
        &value_at("date"),
    );
    assert!(issue.message.contains("full date"), "{}", issue.message);
    // Partial dates are fine elsewhere, and kept as given.
    let e = event(&answer(demo(), "birthDate", json!({"valueDate": "1986"})));
    assert_eq!(
        e.holder.birth_date.map(|d| d.to_string()).as_deref(),
        Some("1986")
    );
}

#[test]
fn doses_are_positive_and_within_the_series() {
    one_issue(
        &answer(demo(), "dose", json!({"valueInteger": 0})),
        "value",
        &value_at("dose"),
    );
    one_issue(
        &answer(demo(), "dose", json!({"valueInteger": -1})),
        "value",
        &value_at("dose"),
    );
    one_issue(
        &answer(demo(), "dose", json!({"valueInteger": 1.5})),
        "value",
        &value_at("dose"),
    );
    one_issue(
        &answer(demo(), "dose", json!({"valueInteger": 3_000_000_000u64})),
        "value",
        &value_at("dose"),
    );
    one_issue(
        &answer(demo(), "total_doses", json!({"valueInteger": 0})),
        "value",
        &value_at("total_doses"),
    );
    one_issue(
        &answer(demo(), "dose", json!({"valueInteger": 3})),
        "value",
        &format!("{QR}.item.where(linkId='dose' or linkId='total_doses')"),
    );
    assert_eq!(
        event(&answer(demo(), "dose", json!({"valueInteger": 2})))
            .vaccination
            .dose
            .get(),
        2
    );
    // Without total_doses any positive dose is fine (boosters).
    let e = event(&answer(
        without(demo(), &["total_doses"]),
        "dose",
        json!({"valueInteger": 3}),
    ));
    assert_eq!(e.vaccination.total_doses, None);
}

#[test]
fn country_must_be_an_assigned_alpha3_code() {
    let coded =
        |code: &str| json!({"valueCoding": {"system": "urn:iso:std:iso:3166", "code": code}});
    one_issue(
        &answer(demo(), "country", coded("XXX")),
        "code-invalid",
        &value_at("country"),
    );
    let issue = one_issue(
        &answer(demo(), "country", coded("US")),
        "code-invalid",
        &value_at("country"),
    );
    assert!(issue.message.contains("alpha-2"), "{}", issue.message);
    let issue = one_issue(
        &answer(demo(), "country", coded("usa")),
        "code-invalid",
        &value_at("country"),
    );
    assert!(issue.message.contains("upper-case"), "{}", issue.message);
    one_issue(
        &answer(
            demo(),
            "country",
            json!({"valueCoding": {"system": "http://example.org", "code": "USA"}}),
        ),
        "code-invalid",
        &value_at("country"),
    );
    let e = event(&answer(
        demo(),
        "country",
        json!({"valueCoding": {"code": "CHE"}}),
    ));
    assert_eq!(e.vaccination.country.alpha2(), "CH");
}

#[test]
fn sex_must_be_an_administrative_gender() {
    one_issue(
        &answer(
            demo(),
            "sex",
            json!({"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "M"}}),
        ),
        "code-invalid",
        &value_at("sex"),
    );
    one_issue(
        &answer(
            demo(),
            "sex",
            json!({"valueCoding": {"system": "http://snomed.info/sct", "code": "male"}}),
        ),
        "code-invalid",
        &value_at("sex"),
    );
    let e = event(&answer(
        demo(),
        "sex",
        json!({"valueCoding": {"code": "unknown"}}),
    ));
    assert_eq!(e.holder.sex, Some(Sex::Unknown));
}

#[test]
fn manufacturer_or_market_authorization_holder_is_required() {
    one_issue(
        &without(demo(), &["manufacturer", "ma_holder"]),
        "required",
        &format!("{QR}.item.where(linkId='manufacturer' or linkId='ma_holder')"),
    );
    let e = event(&without(demo(), &["manufacturer"]));
    assert!(matches!(
        e.vaccination.producer,
        Producer::MarketAuthorizationHolder(_)
    ));
    let e = event(&without(demo(), &["ma_holder"]));
    assert!(matches!(e.vaccination.producer, Producer::Manufacturer(_)));
    // A broken manufacturer is reported once, not again as "neither given".
    let broken = answer(
        without(demo(), &["ma_holder"]),
        "manufacturer",
        json!({"valueString": "x"}),
    );
    one_issue(&broken, "value", &value_at("manufacturer"));
}

#[test]
fn every_required_question_must_be_answered() {
    let required = [
        "name", "vaccine", "brand", "lot", "date", "dose", "country", "centre", "pha", "hcid",
    ];
    for link_id in required {
        let issue = one_issue(&without(demo(), &[link_id]), "required", &item_at(link_id));
        assert!(issue.message.contains(link_id), "{}", issue.message);
    }
    // All missing at once: one issue each.
    let found = issues(&without(demo(), &required));
    assert_eq!(found.len(), required.len(), "{found:#?}");
    // Listed but unanswered is the same problem.
    let mut qr = demo();
    item(&mut qr, "lot")["answer"] = json!([]);
    one_issue(&qr, "required", &item_at("lot"));
    // An optional question listed without an answer is simply unanswered.
    let mut qr = demo();
    item(&mut qr, "hw")["answer"] = json!([]);
    assert_eq!(event(&qr).vaccination.health_worker, None);
}

#[test]
fn each_question_is_answered_once_at_top_level() {
    let mut qr = demo();
    item(&mut qr, "dose")["answer"] = json!([{"valueInteger": 1}, {"valueInteger": 2}]);
    one_issue(&qr, "structure", &format!("{}.answer", item_at("dose")));

    let mut qr = demo();
    let copy = item(&mut qr, "lot").clone();
    items(&mut qr).push(copy);
    one_issue(&qr, "duplicate", &item_at("lot"));

    let mut qr = demo();
    item(&mut qr, "name")["item"] =
        json!([{"linkId": "given", "answer": [{"valueString": "Eddie"}]}]);
    one_issue(&qr, "structure", &format!("{}.item", item_at("name")));

    let mut qr = demo();
    item(&mut qr, "name")["answer"][0]["item"] = json!([{"linkId": "x"}]);
    one_issue(
        &qr,
        "structure",
        &format!("{}.answer[0].item", item_at("name")),
    );

    one_issue(
        &answer(demo(), "lot", json!({})),
        "required",
        &value_at("lot"),
    );
    one_issue(
        &answer(
            demo(),
            "lot",
            json!({"valueString": "A", "valueInteger": 1}),
        ),
        "structure",
        &value_at("lot"),
    );
}

#[test]
fn unknown_link_ids_are_reported_with_a_hint() {
    let mut qr = demo();
    items(&mut qr).push(json!({"linkId": "birthdate", "answer": [{"valueDate": "1986-09-19"}]}));
    let issue = one_issue(&qr, "not-supported", &format!("{QR}.item[22]"));
    assert!(
        issue.message.contains("did you mean 'birthDate'"),
        "{}",
        issue.message
    );

    let mut qr = demo();
    items(&mut qr).push(json!({"linkId": "version", "answer": [{"valueString": "RC-2.0"}]}));
    one_issue(&qr, "not-supported", &format!("{QR}.item[22]"));
}

#[test]
fn text_is_single_line_bounded_and_not_blank() {
    one_issue(
        &answer(demo(), "name", json!({"valueString": "Eddie\nMurphy"})),
        "value",
        &value_at("name"),
    );
    one_issue(
        &answer(demo(), "centre", json!({"valueString": "Site\u{202E}etiS"})),
        "value",
        &value_at("centre"),
    );
    one_issue(
        &answer(demo(), "name", json!({"valueString": "   "})),
        "value",
        &value_at("name"),
    );
    let long = "L".repeat(MAX_TEXT_CHARS + 1);
    one_issue(
        &answer(demo(), "lot", json!({"valueString": long})),
        "too-long",
        &value_at("lot"),
    );
    let limit = "Ł".repeat(MAX_TEXT_CHARS);
    assert_eq!(
        event(&answer(demo(), "lot", json!({"valueString": limit})))
            .vaccination
            .lot
            .as_str()
            .chars()
            .count(),
        MAX_TEXT_CHARS
    );
    // Codings are checked part by part.
    one_issue(
        &answer(
            demo(),
            "brand",
            json!({"valueCoding": {"system": "http://x", "code": "A\tB"}}),
        ),
        "value",
        &value_at("brand"),
    );
    one_issue(
        &answer(
            demo(),
            "brand",
            json!({"valueCoding": {"system": "http://x"}}),
        ),
        "required",
        &value_at("brand"),
    );
    // Surrounding spaces are trimmed.
    assert_eq!(
        event(&answer(
            demo(),
            "name",
            json!({"valueString": " Eddie Murphy "})
        ))
        .holder
        .name
        .as_str(),
        "Eddie Murphy"
    );
}

#[test]
fn validity_period_must_not_end_before_it_starts() {
    let qr = answer(demo(), "valid_from", json!({"valueDate": "2022-07-09"}));
    one_issue(
        &qr,
        "value",
        &format!("{QR}.item.where(linkId='valid_from' or linkId='valid_until')"),
    );
    // Compared at the precision both have.
    let qr = answer(demo(), "valid_until", json!({"valueDate": "2021-07"}));
    assert!(event(&qr).certificate.valid_until.is_some());
}

#[test]
fn questionnaire_and_status_are_checked() {
    let mut qr = demo();
    qr["questionnaire"] = json!("http://smart.who.int/ddcc/DDCCVSCoreDataSetQuestionnaire|1.0.0");
    event(&qr);
    qr["questionnaire"] = json!("http://smart.who.int/ddcc/DDCCTRCoreDataSetQuestionnaire");
    one_issue(&qr, "not-supported", &format!("{QR}.questionnaire"));
    qr.as_object_mut().expect("object").remove("questionnaire");
    one_issue(&qr, "required", &format!("{QR}.questionnaire"));

    let mut qr = demo();
    qr["status"] = json!("entered-in-error");
    one_issue(&qr, "value", &format!("{QR}.status"));
    qr.as_object_mut().expect("object").remove("status");
    one_issue(&qr, "required", &format!("{QR}.status"));
}

#[test]
fn parse_questionnaire_response_matches_read_submission() {
    let qr: QuestionnaireResponse = serde_json::from_value(demo()).expect("typed");
    assert_eq!(
        parse_questionnaire_response(&qr).expect("valid"),
        event(&demo())
    );
}

fn body_error(body: &[u8]) -> Vec<Issue> {
    match read_submission(body) {
        Err(Error::Invalid(issues)) => issues,
        other => panic!("expected a body-level Invalid, got {other:?}"),
    }
}

#[test]
fn unusable_bodies_are_named() {
    assert!(body_error(b"{not json")
        .iter()
        .any(|i| i.code == "structure" && i.message.contains("not valid JSON")));
    assert!(body_error(b"")
        .iter()
        .any(|i| i.message.contains("not valid JSON")));
    assert!(body_error(b"[1,2]")
        .iter()
        .any(|i| i.message.contains("JSON object")));
    assert!(body_error(b"{}")
        .iter()
        .any(|i| i.code == "required" && i.message.contains("resourceType")));
    let issues = body_error(br#"{"resourceType":"Patient"}"#);
    assert!(issues
        .iter()
        .any(|i| i.code == "not-supported" && i.message.contains("\"Patient\"")));
    let issues = body_error(br#"{"resourceType":"Bundle","type":"document","entry":[]}"#);
    assert_eq!(issues[0].expression.as_deref(), Some("Bundle.type"));
    let issues = body_error(br#"{"resourceType":"Bundle","type":"batch"}"#);
    assert_eq!(issues[0].expression.as_deref(), Some("Bundle.entry"));
    let issues = body_error(br#"{"resourceType":"Bundle","type":"batch","entry":"x"}"#);
    assert_eq!(
        (issues[0].code, issues[0].expression.as_deref()),
        ("structure", Some("Bundle"))
    );
}

#[test]
fn parameters_must_carry_one_response() {
    let wrap = |parameter: Value| json!({"resourceType": "Parameters", "parameter": parameter});
    let single_err = |body: &Value| match submit(body) {
        Ok(Submission::Single(Err(Error::Invalid(issues)))) => issues,
        other => panic!("expected Single(Invalid), got {other:?}"),
    };
    let at = "Parameters.parameter.where(name='response')";
    let issues = single_err(&wrap(json!([{"name": "immunization", "valueString": "x"}])));
    assert_eq!(
        (issues[0].code, issues[0].expression.as_deref()),
        ("required", Some(at))
    );
    let issues = single_err(&wrap(
        json!([{"name": "response", "resource": demo()}, {"name": "response", "resource": demo()}]),
    ));
    assert_eq!(issues[0].code, "duplicate");
    let issues = single_err(&wrap(
        json!([{"name": "response", "resource": {"resourceType": "Patient"}}]),
    ));
    assert_eq!(
        (issues[0].code, issues[0].expression.as_deref()),
        ("invalid", Some(&*format!("{at}.resource")))
    );
    let issues = single_err(&wrap(json!([{"name": "response"}])));
    assert_eq!(issues[0].code, "required");

    // Inside Parameters, expressions say so.
    let bad = answer(demo(), "dose", json!({"valueInteger": 0}));
    let issues = single_err(&wrap(json!([{"name": "response", "resource": bad}])));
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Parameters.parameter.where(name='response').resource.item.where(linkId='dose').answer[0].value")
    );
}

#[test]
fn batch_entries_are_independent() {
    let bad = answer(demo(), "dose", json!({"valueInteger": 0}));
    let post = json!({"method": "POST", "url": GENERATE_URL});
    let body = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": demo(), "request": post},
        {"resource": {"resourceType": "Parameters", "parameter": [{"name": "response", "resource": bad}]}, "request": post},
        {"resource": demo(), "request": {"method": "PUT", "url": GENERATE_URL}},
        {"resource": demo()},
        {"request": post},
        {"resource": {"resourceType": "Patient"}, "request": post},
    ]});
    let Ok(Submission::Batch(outcomes)) = submit(&body) else {
        panic!("expected a batch");
    };
    assert_eq!(outcomes.len(), 6);
    assert!(outcomes[0].is_ok());
    let Err(Error::Invalid(issues)) = &outcomes[1] else {
        panic!("{:?}", outcomes[1])
    };
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Bundle.entry[1].resource.parameter.where(name='response').resource.item.where(linkId='dose').answer[0].value")
    );
    assert!(
        matches!(&outcomes[2], Err(Error::NotSupported(m)) if m.starts_with("Bundle.entry[2].request"))
    );
    assert!(matches!(&outcomes[3], Err(Error::NotSupported(m)) if m.contains("no request")));
    let Err(Error::Invalid(issues)) = &outcomes[4] else {
        panic!("{:?}", outcomes[4])
    };
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Bundle.entry[4].resource")
    );
    let Err(Error::Invalid(issues)) = &outcomes[5] else {
        panic!("{:?}", outcomes[5])
    };
    assert_eq!(
        (issues[0].code, issues[0].expression.as_deref()),
        ("invalid", Some("Bundle.entry[5].resource"))
    );
}

#[test]
fn codes_need_their_code_system_except_sex_and_country() {
    let qr = answer(
        demo(),
        "vaccine",
        json!({"valueCoding": {"code": "1119349007"}}),
    );
    let issue = one_issue(&qr, "required", &value_at("vaccine"));
    assert!(issue.message.contains("system"), "{issue:?}");

    let qr = answer(demo(), "sex", json!({"valueCoding": {"code": "male"}}));
    let qr = answer(qr, "country", json!({"valueCoding": {"code": "USA"}}));
    assert_eq!(event(&qr).vaccination.country.alpha3(), "USA");
}

#[test]
fn repeated_keys_anywhere_are_refused_naming_the_path() {
    let text = demo().to_string();
    // A second valueDate in the first answer that has one, and a second resourceType.
    let doubled = text.replacen(
        "\"valueDate\":\"1986-09-19\"",
        "\"valueDate\":\"1986-09-19\",\"valueDate\":\"2001-01-01\"",
        1,
    );
    assert_ne!(doubled, text);
    let issues = body_error(doubled.as_bytes());
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].code, "structure");
    let at = issues[0].expression.as_deref().unwrap();
    assert!(
        at.starts_with("QuestionnaireResponse.item[") && at.ends_with("].answer[0].valueDate"),
        "{at}"
    );
    assert!(issues[0].message.contains("\"valueDate\""));
    let issues = body_error(
        br#"{"resourceType":"QuestionnaireResponse","resourceType":"Bundle","type":"batch"}"#,
    );
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("QuestionnaireResponse.resourceType")
    );
    // In a batch entry, the whole batch is refused: its meaning is unknown.
    let batch = format!(
        r#"{{"resourceType":"Bundle","type":"batch","entry":[{{"request":{{"method":"POST","method":"POST","url":"{GENERATE_URL}"}},"resource":{text}}}]}}"#
    );
    let issues = body_error(batch.as_bytes());
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Bundle.entry[0].request.method")
    );
}

#[test]
fn modifier_extensions_are_refused() {
    let mut qr = demo();
    item(&mut qr, "dose")["modifierExtension"] =
        json!([{"url": "http://example.org/not-really", "valueBoolean": true}]);
    let issues = match submit(&qr) {
        Err(Error::Invalid(issues)) => issues,
        other => panic!("expected a body-level Invalid, got {other:?}"),
    };
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].code, "extension");
    let at = issues[0].expression.as_deref().unwrap();
    assert!(
        at.starts_with("QuestionnaireResponse.item[") && at.ends_with("].modifierExtension"),
        "{at}"
    );
    // Plain extensions are fine.
    let mut qr = demo();
    qr["extension"] = json!([{"url": "http://example.org/note", "valueString": "x"}]);
    event(&qr);
}

#[test]
fn vaccination_and_birth_must_have_happened_birth_first() {
    for (link_id, date) in [
        ("date", "9999-12-31"),
        ("date", "2099-01-01"),
        ("birthDate", "9999-12-31"),
        ("birthDate", "2099"),
    ] {
        let issue = one_issue(
            &answer(demo(), link_id, json!({"valueDate": date})),
            "value",
            &value_at(link_id),
        );
        assert!(issue.message.contains("in the future"), "{}", issue.message);
    }
    // Tomorrow is within the clock skew; the day after is not.
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: time::Date| json!({"valueDate": d.to_string()});
    event(&answer(
        demo(),
        "date",
        day(today + time::Duration::days(1)),
    ));
    one_issue(
        &answer(demo(), "date", day(today + time::Duration::days(2))),
        "value",
        &value_at("date"),
    );
    // Born after the vaccination (demo: vaccinated 2021-07-08), at the precision given.
    one_issue(
        &answer(demo(), "birthDate", json!({"valueDate": "2021-07-09"})),
        "value",
        &format!("{QR}.item.where(linkId='birthDate' or linkId='date')"),
    );
    one_issue(
        &answer(demo(), "birthDate", json!({"valueDate": "2022"})),
        "value",
        &format!("{QR}.item.where(linkId='birthDate' or linkId='date')"),
    );
    event(&answer(
        demo(),
        "birthDate",
        json!({"valueDate": "2021-07-08"}),
    ));
    event(&answer(demo(), "birthDate", json!({"valueDate": "2021"})));
}

#[test]
fn invisible_and_line_separating_characters_are_refused() {
    for c in [
        '\u{200E}', '\u{200F}', '\u{061C}', '\u{2028}', '\u{2029}', '\u{FFF9}', '\u{FFFA}',
        '\u{FFFB}', '\u{FEFF}', '\u{206A}',
    ] {
        one_issue(
            &answer(
                demo(),
                "name",
                json!({"valueString": format!("Eddie{c} Murphy")}),
            ),
            "value",
            &value_at("name"),
        );
    }
    // Joiners are part of some scripts (Persian, Indic): allowed.
    event(&answer(
        demo(),
        "name",
        json!({"valueString": "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}"}),
    ));
}

#[test]
fn the_response_language_chooses_a_built_in_certificate_language_and_others_are_no_error() {
    use crate::render::pdf::Language;
    let with = |tag: &str| {
        let mut qr = demo();
        qr["language"] = json!(tag);
        event(&qr).language
    };
    assert_eq!(with("fr-CH"), Some(Language::French));
    assert_eq!(with("ar"), Some(Language::Arabic));
    // Not one of the six: accepted, printed in the configured language.
    assert_eq!(with("de"), None);
    assert_eq!(event(&demo()).language, None);
}
