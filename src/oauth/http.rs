//! The HTTP client the `oauth2` crate sends its requests through.
//!
//! reqwest over rustls with the daemon's own trust (system roots plus
//! `[tls] extra_ca_file`, crate::net::TlsContext), and these rules:
//! - no redirects: a token endpoint that redirects would carry our form
//!   (refresh token, device code) to another host (the `oauth2` crate's
//!   own advice against SSRF);
//! - connect and whole-request timeouts from `[fetch]`, so a silent
//!   endpoint cannot hold a sign-in or a login forever;
//! - a body cap: Microsoft's answers are a few KiB, and nothing a server
//!   sends may grow our memory without bound;
//! - a 5xx or 429 is a transport failure, not an OAuth answer: the
//!   endpoint is down or busy, so the caller backs off and retries, and
//!   the device-code poll keeps polling (RFC 8628 §3.5 asks for back-off on
//!   connection trouble). The body of such a reply is not read.

use std::future::Future;
use std::pin::Pin;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::error::{Error, Result};
use crate::net::{Timeouts, TlsContext};

/// Largest body read from a token endpoint.
pub const MAX_BODY: usize = 256 * 1024;

/// Why a request got no usable answer; all of these are transient.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Send(#[from] reqwest::Error),
    #[error("the server answered HTTP {0}")]
    Unavailable(u16),
    #[error("the server's answer is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("cannot build the request: {0}")]
    Build(String),
}

/// A reqwest client set up as the module docs say.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new(tls: &TlsContext, t: &Timeouts) -> Result<Http> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls.https_config()?)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(t.connect)
            .timeout(t.connect + t.read)
            .user_agent(concat!("postfach/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::connection_by("cannot set up the HTTPS client", e))?;
        Ok(Http { client })
    }

    async fn send(&self, request: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| {
            // The error names the URL only; the form is not part of it.
            HttpError::Build(e.to_string())
        })?;
        let mut response = self.client.execute(request).await?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(HttpError::Unavailable(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = oauth2::http::Response::builder().status(status);
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        answer
            .body(body)
            .map_err(|e| HttpError::Build(e.to_string()))
    }
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
