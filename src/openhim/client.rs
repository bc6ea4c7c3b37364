//! The OpenHIM core API client: token authentication (every core from 4.x to 8.x) or Basic (7.1+).
//!
//! Token scheme: `GET /authenticate/<user>` gives the user's salt; `passhash = sha512hex(salt ‖ password)`
//! (computed once); each request carries a fresh random `auth-salt`, `auth-ts` (now, ISO 8601) and
//! `auth-token = sha512hex(passhash ‖ auth-salt ‖ auth-ts)`. The core accepts a timestamp within ±10 s of
//! its clock, so headers are built per request, never cached.

use base64::Engine as _;
use reqwest::{Client, Method};
use serde_json::Value;
use sha2::{Digest, Sha512};
use tokio::sync::Mutex;

use crate::configuration::{OpenHimAuth, OpenHimConfig};
use crate::error::error_chain;
use crate::error::{Error, Result};
use crate::service::rfc3339_ms;

#[derive(Debug)]
pub struct OpenHimClient {
    http: Client,
    base: String,
    username: String,
    password: String,
    auth: OpenHimAuth,
    /// sha512hex(salt ‖ password), once fetched.
    passhash: Mutex<Option<String>>,
}

impl OpenHimClient {
    pub fn new(config: &OpenHimConfig) -> Result<Self> {
        let http = Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .danger_accept_invalid_certs(config.trust_self_signed)
            .build()
            .map_err(|e| Error::Config(format!("OpenHIM HTTP client: {e}")))?;
        Ok(OpenHimClient {
            http,
            base: config.url.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            auth: config.auth,
            passhash: Mutex::new(None),
        })
    }

    fn unavailable(reason: String) -> Error {
        Error::Unavailable {
            service: "OpenHIM",
            reason,
        }
    }

    /// An error for an unexpected answer.
    pub fn refused(&self, what: &str, status: u16, body: &str) -> Error {
        let body: String = body.chars().take(200).collect();
        Self::unavailable(format!("{what} answered HTTP {status}: {body}"))
    }

    /// Sends an authenticated API request; returns the status and the body text.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String)> {
        self.send_as(method, path, path, body).await
    }

    /// As [`send`](Self::send), with `operation` (e.g. `/transactions/<id>`) naming the call in its span
    /// instead of a path that holds an id.
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        operation: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String)> {
        let method_name = method.clone();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match self.auth {
            OpenHimAuth::Basic => {
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", self.username, self.password));
                request.header(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {credentials}"),
                )
            }
            OpenHimAuth::Token => {
                let passhash = self.passhash().await?;
                let salt = uuid::Uuid::new_v4().to_string();
                let ts = rfc3339_ms(time::OffsetDateTime::now_utc());
                let token = sha512_hex(&format!("{passhash}{salt}{ts}"));
                request
                    .header("auth-username", &self.username)
                    .header("auth-ts", ts)
                    .header("auth-salt", salt)
                    .header("auth-token", token)
            }
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = crate::telemetry::send(
            crate::telemetry::Dependency::OpenHim,
            method_name.as_str(),
            operation,
            request,
        )
        .await
        .map_err(|e| Self::unavailable(format!("unreachable: {}", error_chain(&e))))?;
        let status = response.status().as_u16();
        if status == 401 {
            // A changed password or salt: fetch it again next time.
            *self.passhash.lock().await = None;
        }
        let text = response
            .text()
            .await
            .map_err(|e| Self::unavailable(format!("unreadable answer: {e}")))?;
        Ok((status, text))
    }

    async fn passhash(&self) -> Result<String> {
        let mut cached = self.passhash.lock().await;
        if let Some(hash) = cached.as_ref() {
            return Ok(hash.clone());
        }
        let url = format!("{}/authenticate/{}", self.base, self.username);
        // The path holds the API user's name: the span says only what the call is for.
        let response = crate::telemetry::send(
            crate::telemetry::Dependency::OpenHim,
            "GET",
            "authenticate",
            self.http.get(&url),
        )
        .await
        .map_err(|e| Self::unavailable(format!("unreachable: {}", error_chain(&e))))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err(self.refused("GET /authenticate", status, &text));
        }
        let salt = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("salt").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| Self::unavailable("GET /authenticate gave no salt".into()))?;
        let hash = sha512_hex(&format!("{salt}{}", self.password));
        *cached = Some(hash.clone());
        Ok(hash)
    }
}

fn sha512_hex(text: &str) -> String {
    hex::encode(Sha512::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passhash_matches_the_root_user_vector() {
        // openhim-core src/server.js: the root user's passwordHash (openhim-vault-cose.md A2).
        let hash = super::sha512_hex("d9bcb40e-ae65-478f-962e-5e5e5e7d0a01openhim-password");
        assert!(hash.starts_with("943a856b"), "{hash}");
    }
}
