//! The endpoints' logic: what Microsoft's v2.0 endpoints answer, as far as
//! a mail client sees it (JSON errors with `AADSTS` descriptions, HTTP 400).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::http::{Reply, Request};
use super::{random, token, CLIENT_ID, TENANT};

pub enum DeviceStatus {
    Pending,
    Approved(String),
    Denied,
}

pub struct Device {
    pub user_code: String,
    pub scope: String,
    pub expires_at: Instant,
    pub interval: u64,
    pub last_poll: Option<Instant>,
    pub status: DeviceStatus,
}

struct Code {
    user: String,
    scope: String,
    challenge: String,
    redirect_uri: String,
}

/// Everything the server knows; tests change it through
/// [`super::OAuthServer::with`].
pub struct State {
    base: String,
    pub down: bool,
    /// Access token life in seconds and least length in bytes.
    pub access_life: u64,
    pub access_len: usize,
    /// What devicecode hands out.
    pub device_life: u64,
    pub device_interval: u64,
    /// Answer this many more polls with slow_down.
    pub slow_down_next: u32,
    /// The next browser sign-in is declined by the user.
    pub decline_browser: bool,
    pub devices: HashMap<String, Device>,
    codes: HashMap<String, Code>,
    /// Live refresh tokens and their (user, scope).
    pub refresh: HashMap<String, (String, String)>,
    /// Every request to the token endpoint, by grant type.
    pub token_requests: Vec<String>,
    /// Polls that came sooner than the interval asked for.
    pub too_fast: u32,
}

impl State {
    pub fn new(base: String) -> State {
        State {
            base,
            down: false,
            access_life: 3600,
            access_len: 0,
            device_life: 900,
            device_interval: 1,
            slow_down_next: 0,
            decline_browser: false,
            devices: HashMap::new(),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            token_requests: Vec::new(),
            too_fast: 0,
        }
    }

    /// The user signs in at the verification page with this code.
    pub fn approve(&mut self, user_code: &str, user: &str) {
        self.device(user_code).status = DeviceStatus::Approved(user.to_string());
    }

    pub fn deny(&mut self, user_code: &str) {
        self.device(user_code).status = DeviceStatus::Denied;
    }

    pub fn expire(&mut self, user_code: &str) {
        self.device(user_code).expires_at = Instant::now();
    }

    /// Polls of the device code so far.
    pub fn polls(&self) -> usize {
        self.token_requests
            .iter()
            .filter(|g| g.ends_with("device_code"))
            .count()
    }

    fn device(&mut self, user_code: &str) -> &mut Device {
        self.devices
            .values_mut()
            .find(|d| d.user_code == user_code)
            .expect("no such user code")
    }

    /// The admin revokes every refresh token of the user.
    pub fn revoke(&mut self, user: &str) {
        self.refresh.retain(|_, (u, _)| u != user);
    }

    fn issue(&mut self, user: &str, scope: &str) -> Reply {
        let refresh = random(40);
        self.refresh
            .insert(refresh.clone(), (user.to_string(), scope.to_string()));
        Reply::json(
            200,
            json!({
                "token_type": "Bearer",
                "scope": scope,
                "expires_in": self.access_life,
                "ext_expires_in": self.access_life,
                "access_token": token::mint(user, self.access_life, self.access_len),
                "refresh_token": refresh,
            }),
        )
    }
}

fn error(code: &str, description: &str) -> Reply {
    Reply::json(
        400,
        json!({
            "error": code,
            "error_description": format!("{description}\r\nTrace ID: 5f0c\r\nCorrelation ID: 77a1\r\nTimestamp: 2026-12-02 10:00:00Z"),
            "error_codes": [],
        }),
    )
}

pub fn handle(state: &Mutex<State>, req: Request) -> Reply {
    let mut s = state.lock().unwrap();
    if s.down {
        return Reply::json(503, json!({}));
    }
    let prefix = format!("/{TENANT}/oauth2/v2.0/");
    let Some(endpoint) = req.route().strip_prefix(&prefix) else {
        return Reply::json(404, json!({"error": "not_found"}));
    };
    match (req.method.as_str(), endpoint) {
        ("POST", "devicecode") => devicecode(&mut s, &req.form()),
        ("GET", "authorize") => authorize(&mut s, &req.query()),
        ("POST", "token") => token_endpoint(&mut s, &req.form()),
        _ => Reply::json(404, json!({"error": "not_found"})),
    }
}

fn client_ok(form: &HashMap<String, String>) -> Result<(), Reply> {
    if form.get("client_id").map(String::as_str) == Some(CLIENT_ID) {
        return Ok(());
    }
    Err(error(
        "unauthorized_client",
        "AADSTS700016: Application with identifier 'x' was not found in the directory 'organizations'.",
    ))
}

fn devicecode(s: &mut State, form: &HashMap<String, String>) -> Reply {
    if let Err(r) = client_ok(form) {
        return r;
    }
    let device_code = random(48);
    let user_code = random(8).to_uppercase();
    s.devices.insert(
        device_code.clone(),
        Device {
            user_code: user_code.clone(),
            scope: form.get("scope").cloned().unwrap_or_default(),
            expires_at: Instant::now() + Duration::from_secs(s.device_life),
            interval: s.device_interval,
            last_poll: None,
            status: DeviceStatus::Pending,
        },
    );
    Reply::json(
        200,
        json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": format!("{}/devicelogin", s.base),
            "expires_in": s.device_life,
            "interval": s.device_interval,
            "message": format!("To sign in, enter the code {user_code}."),
        }),
    )
}

fn authorize(s: &mut State, q: &HashMap<String, String>) -> Reply {
    let (Some(redirect_uri), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return Reply::json(400, json!({"error": "invalid_request"}));
    };
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let enc =
        |v: &str| oauth2::url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    if std::mem::take(&mut s.decline_browser) {
        return Reply::redirect(format!(
            "{redirect_uri}{sep}error=access_denied&error_description={}&state={}",
            enc("AADSTS65004: User declined to consent to access the app."),
            enc(state)
        ));
    }
    let ok = q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("response_type").map(String::as_str) == Some("code")
        && q.get("code_challenge_method").map(String::as_str) == Some("S256");
    let (true, Some(challenge), Some(user)) = (ok, q.get("code_challenge"), q.get("login_hint"))
    else {
        return Reply::json(400, json!({"error": "invalid_request"}));
    };
    let code = random(40);
    s.codes.insert(
        code.clone(),
        Code {
            user: user.clone(),
            scope: q.get("scope").cloned().unwrap_or_default(),
            challenge: challenge.clone(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    Reply::redirect(format!(
        "{redirect_uri}{sep}code={code}&state={}&session_state=1f2e",
        enc(state)
    ))
}

fn token_endpoint(s: &mut State, form: &HashMap<String, String>) -> Reply {
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    s.token_requests.push(grant.clone());
    if let Err(r) = client_ok(form) {
        return r;
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    match grant.as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" => poll(s, &get("device_code")),
        "authorization_code" => {
            let Some(code) = s.codes.remove(&get("code")) else {
                return error("invalid_grant", "AADSTS54005: OAuth2 Authorization code was already redeemed.");
            };
            let verifier = B64.encode(Sha256::digest(get("code_verifier").as_bytes()));
            if verifier != code.challenge {
                return error("invalid_grant", "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.");
            }
            if get("redirect_uri") != code.redirect_uri {
                return error("invalid_grant", "AADSTS50011: The redirect URI does not match.");
            }
            s.issue(&code.user, &code.scope)
        }
        "refresh_token" => match s.refresh.remove(&get("refresh_token")) {
            Some((user, scope)) => s.issue(&user, &scope),
            None => error(
                "invalid_grant",
                "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed.",
            ),
        },
        _ => Reply::json(400, json!({"error": "unsupported_grant_type"})),
    }
}

fn poll(s: &mut State, device_code: &str) -> Reply {
    let Some(d) = s.devices.get_mut(device_code) else {
        return error("expired_token", "AADSTS70019: Verification code expired.");
    };
    let now = Instant::now();
    if d.expires_at <= now {
        s.devices.remove(device_code);
        return error("expired_token", "AADSTS70019: Verification code expired.");
    }
    // RFC 8628 §3.5: polling faster than the interval earns slow_down.
    let early = d.last_poll.is_some_and(|last| {
        now.duration_since(last) + Duration::from_millis(50) < Duration::from_secs(d.interval)
    });
    d.last_poll = Some(now);
    if early {
        s.too_fast += 1;
        d.interval += 5;
        return error("slow_down", "AADSTS70000: slow down");
    }
    if s.slow_down_next > 0 {
        s.slow_down_next -= 1;
        d.interval += 5;
        return error("slow_down", "AADSTS70000: slow down");
    }
    match &d.status {
        DeviceStatus::Pending => error(
            "authorization_pending",
            "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ),
        DeviceStatus::Denied => {
            s.devices.remove(device_code);
            error(
                "access_denied",
                "AADSTS70000: The user denied the authorization request.",
            )
        }
        DeviceStatus::Approved(user) => {
            let (user, scope) = (user.clone(), d.scope.clone());
            s.devices.remove(device_code);
            s.issue(&user, &scope)
        }
    }
}
