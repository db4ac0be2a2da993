//! HTTP/1.1 plumbing of the test authorization server (hyper): a request
//! read whole into [`Request`], a [`Reply`] back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub struct Request {
    pub method: String,
    /// Path with the query.
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn form(&self) -> HashMap<String, String> {
        oauth2::url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn query(&self) -> HashMap<String, String> {
        let q = self.path.split_once('?').map_or("", |(_, q)| q);
        oauth2::url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    pub fn bearer(&self) -> Option<String> {
        self.headers
            .get("authorization")?
            .strip_prefix("Bearer ")
            .map(str::to_string)
    }
}

pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply {
            status,
            location: None,
            body: value.to_string(),
        }
    }

    pub fn redirect(to: String) -> Reply {
        Reply {
            status: 302,
            location: Some(to),
            body: String::new(),
        }
    }
}

/// Serves connections from `listener` until the task is aborted.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes().to_vec())
                        .unwrap_or_default();
                    let headers = parts
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_ascii_lowercase(),
                                v.to_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect();
                    let request = Request {
                        method: parts.method.to_string(),
                        path: parts
                            .uri
                            .path_and_query()
                            .map_or("/".to_string(), |p| p.to_string()),
                        headers,
                        body,
                    };
                    let reply = handler(request).await;
                    let mut answer = hyper::Response::builder()
                        .status(reply.status)
                        .header("content-type", "application/json");
                    if let Some(to) = reply.location {
                        answer = answer.header("location", to);
                    }
                    Ok::<_, Infallible>(answer.body(Full::new(Bytes::from(reply.body))).unwrap())
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
