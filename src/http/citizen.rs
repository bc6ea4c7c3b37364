//! The citizen web pages: `GET /certificates/{token}` (the certificate's summary, its QR codes, downloads)
//! and `GET /check` (upload or paste a QR code; the verdict of `POST /ddcc/verify`).
//!
//! Plain HTML built here, with the stylesheet and script compiled into the binary (`assets/web/`): no
//! framework, no third-party request, a Content-Security-Policy that allows only this origin's files, and
//! no inline script or style. Personal pages are `Cache-Control: private, no-store` and send no Referer,
//! so the token leaves the browser only towards this service. Links are relative, so the pages work under
//! any `DDCC_PUBLIC_URL` path.

use crate::document::stored;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use serde_json::Value;

use super::reply::Reply;
use super::AppState;
use crate::store::Store as _;

const STYLESHEET: &str = include_str!("../../assets/web/citizen.css");
const CHECK_SCRIPT: &str = include_str!("../../assets/web/check.js");
const ICON: &str = include_str!("../../assets/web/icon.svg");

/// Only this origin's stylesheet, script, images and `POST /ddcc/verify`; nothing inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `429` when `limiter` has no token left for the client of `req` (the pages and `POST /ddcc/verify`).
/// The client is the connection's peer: where `serve` learns client addresses from trusted proxies, this is
/// the one place to ask it instead.
pub(super) fn throttled(
    req: &HttpRequest,
    state: &super::AppState,
    limiter: Option<&crate::service::ratelimit::RateLimiter>,
    what: &str,
) -> Option<Reply> {
    let (limiter, client) = (limiter?, state.client_of(req)?);
    let wait = limiter.check(client).err()?;
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Some(
        Reply::outcome(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many {what} from this address; retry later"),
        )
        .header(header::RETRY_AFTER, seconds.max(1).to_string()),
    )
}

/// Text made safe for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `assets` is the relative path to `/assets/` from the page.
fn page(title: &str, assets: &str, body: &str, script: bool) -> String {
    let script = if script {
        format!("<script src=\"{assets}check.js\" defer></script>")
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\" dir=\"ltr\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n\
         <link rel=\"icon\" href=\"{assets}icon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"{assets}citizen.css\">\n{script}\n</head>\n<body>\n{body}\n\
         <footer><p>Digital Documentation of COVID-19 Certificates: Vaccination Status (WHO DDCC:VS)</p></footer>\n\
         </body>\n</html>\n",
        title = escape(title),
    )
}

/// The headers of every page; `personal`: the page shows a person's data.
fn html(status: StatusCode, body: String, personal: bool) -> Reply {
    let cache = if personal {
        "private, no-store"
    } else {
        "public, max-age=300"
    };
    Reply::new(status, "text/html; charset=utf-8", body.into_bytes())
        .header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY.into(),
        )
        .header(header::CACHE_CONTROL, cache.into())
        .header(header::REFERRER_POLICY, "no-referrer".into())
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into())
}

pub(super) async fn stylesheet() -> Reply {
    Reply::new(
        StatusCode::OK,
        "text/css; charset=utf-8",
        STYLESHEET.as_bytes().to_vec(),
    )
    .header(header::CACHE_CONTROL, "public, max-age=3600".into())
    .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into())
}

/// The page icon (else browsers ask for /favicon.ico).
pub(super) async fn icon() -> Reply {
    Reply::new(StatusCode::OK, "image/svg+xml", ICON.as_bytes().to_vec())
        .header(header::CACHE_CONTROL, "public, max-age=3600".into())
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into())
}

pub(super) async fn check_script() -> Reply {
    Reply::new(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        CHECK_SCRIPT.as_bytes().to_vec(),
    )
    .header(header::CACHE_CONTROL, "public, max-age=3600".into())
    .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff".into())
}

/// `GET /check`: upload or paste a QR code.
pub(super) async fn check_page() -> Reply {
    let body = "<header><p>Certificate check</p><h1>Check a vaccination certificate</h1></header>\n\
        <main>\n<p>Choose a photo or image of a certificate's QR code (PNG), or its PDF, or paste the text of \
        the QR code (it starts with <code>HC1:</code>). It is checked by this service; nothing is kept.</p>\n\
        <form id=\"check\" action=\"ddcc/verify\" method=\"post\">\n\
        <label for=\"file\">QR code image (PNG) or certificate PDF</label>\n\
        <input id=\"file\" name=\"file\" type=\"file\" accept=\"image/png,application/pdf\">\n\
        <label for=\"hc1\">Or the text of the QR code</label>\n\
        <textarea id=\"hc1\" name=\"hc1\" spellcheck=\"false\" autocomplete=\"off\" placeholder=\"HC1:…\"></textarea>\n\
        <div class=\"actions\"><button type=\"submit\">Check</button></div>\n</form>\n\
        <noscript><p class=\"warning\">This check needs JavaScript.</p></noscript>\n\
        <section id=\"verdict\" class=\"verdict\" aria-live=\"polite\"><h2>Result</h2><p>No certificate checked yet.</p></section>\n\
        </main>";
    html(
        StatusCode::OK,
        page("Check a vaccination certificate", "assets/", body, true),
        false,
    )
}

/// The DDCC core data set (the JSON attachment of the `who` QR DocumentReference) of a document Bundle.
fn core_data_set(document: &Value) -> Option<Value> {
    let reference = stored::resources_of(document, "DocumentReference")
        .find(|r| stored::qr_kind(r) == Some("who"))?;
    serde_json::from_slice(&stored::attachment(reference, "application/json")?).ok()
}

/// Whether the document has a QR DocumentReference of `kind` (`who`, `dcc`).
fn has_qr(document: &Value, kind: &str) -> bool {
    stored::resources(document).any(|r| stored::qr_kind(r) == Some(kind))
}

/// The display of a coded value, else its code.
fn coded(value: Option<&Value>) -> Option<String> {
    let value = value?;
    value
        .get("display")
        .or_else(|| value.get("code"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The rows of the summary: (label, value), in print order, the missing ones left out.
fn summary(data: &Value, document: &Value) -> Vec<(&'static str, String)> {
    let text = |pointer: &str| {
        data.pointer(pointer)
            .and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .filter(|s| !s.is_empty())
    };
    let vaccination = data.get("vaccination");
    let dose = match (text("/vaccination/dose"), text("/vaccination/totalDoses")) {
        (Some(d), Some(t)) => Some(format!("{d} of {t}")),
        (d, _) => d,
    };
    let country = vaccination
        .and_then(|v| v.pointer("/country/code"))
        .and_then(Value::as_str)
        .map(|code| {
            crate::codes::iso3166::name_alpha3(code)
                .map(str::to_owned)
                .unwrap_or_else(|| code.to_owned())
        });
    // The issuer by name: the Organization of the document, else the issuer identifier.
    let issuer = stored::resources_of(document, "Organization")
        .next()
        .and_then(|o| o.get("name").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| text("/certificate/issuer/identifier/value"));
    let validity = match (
        text("/certificate/period/start"),
        text("/certificate/period/end"),
    ) {
        (Some(s), Some(e)) => Some(format!("{s} to {e}")),
        (Some(s), None) => Some(format!("from {s}")),
        _ => None,
    };
    [
        ("Name", text("/name")),
        ("Date of birth", text("/birthDate")),
        (
            "Vaccine",
            coded(vaccination.and_then(|v| v.get("brand")))
                .or_else(|| coded(vaccination.and_then(|v| v.get("vaccine")))),
        ),
        ("Date of vaccination", text("/vaccination/date")),
        ("Dose", dose),
        ("Country of vaccination", country),
        ("Issued by", issuer),
        ("Certificate valid", validity),
        ("Certificate ID", text("/certificate/hcid/value")),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|v| (label, v)))
    .collect()
}

/// `GET /certificates/{token}`: the holder's page. Rate-limited as the downloads are (the same bucket),
/// and an unknown token is the same bare 404.
pub(super) async fn certificate_page(
    req: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Reply {
    if let Some(refused) = throttled(&req, &state, state.downloads.as_ref(), "downloads") {
        return refused;
    }
    let nothing = || {
        Reply::new(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"not found\n".to_vec(),
        )
    };
    let token = token.into_inner();
    let Some(bundle_id) = state.issuer.links.bundle_id(&token) else {
        return nothing();
    };
    let issuer = state.issuer.clone();
    let document = match state
        .run(async move { issuer.store.read("Bundle", &bundle_id).await })
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => return nothing(),
        Err(e) => return Reply::error(&e),
    };
    let data = core_data_set(&document).unwrap_or(Value::Null);
    let rows: String = summary(&data, &document)
        .iter()
        .map(|(label, value)| format!("<dt>{label}</dt><dd>{}</dd>\n", escape(value)))
        .collect();
    // Relative to /certificates/{token}: the files are under ./{token}/, the assets under ../assets/.
    let file = |name: &str| format!("{token}/{name}");
    let mut codes = String::new();
    let mut buttons = format!(
        "<a class=\"button\" id=\"download-pdf\" href=\"{}\" download=\"certificate.pdf\">Download the certificate (PDF)</a>\n",
        file("certificate.pdf")
    );
    for (kind, name, caption) in [
        ("who", "ddcc-qr.png", "WHO DDCC QR code"),
        ("dcc", "dcc-qr.png", "EU Digital COVID Certificate QR code"),
    ] {
        if has_qr(&document, kind) {
            codes.push_str(&format!(
                "<figure><img src=\"{src}\" alt=\"{caption}\" width=\"288\" height=\"288\">\
                 <figcaption>{caption}</figcaption></figure>\n",
                src = file(name)
            ));
            buttons.push_str(&format!(
                "<a class=\"button secondary\" href=\"{src}\" download=\"{name}\">Download the {caption} (PNG)</a>\n",
                src = file(name)
            ));
        }
    }
    // A certificate signed with the development key must not pass for a real one.
    let development = if matches!(
        *state.issuer.signer,
        crate::service::signer::ServiceSigner::Local(_)
    ) {
        "<p class=\"warning\" id=\"development-key\"><strong>Development key:</strong> this certificate \
         is signed with a development key of a test installation. It is not a valid certificate.</p>\n"
    } else {
        ""
    };
    let body = format!(
        "<header><p>Vaccination certificate</p><h1>Your vaccination certificate</h1></header>\n<main>\n\
         {development}<h2>Summary</h2>\n<dl>\n{rows}</dl>\n\
         <h2>QR codes</h2>\n<p>Show one of these codes to a verifier; they are signed and cannot be altered.</p>\n\
         <div class=\"codes\">\n{codes}</div>\n\
         <h2>Downloads</h2>\n<div class=\"actions\">\n{buttons}</div>\n\
         <p><a href=\"../check\">Check a certificate</a></p>\n</main>"
    );
    html(
        StatusCode::OK,
        page("Your vaccination certificate", "../assets/", &body, false),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">O'Brien & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Brien &amp; co&lt;/a&gt;"
        );
    }
}
