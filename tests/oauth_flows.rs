//! Office 365 sign-in (crate::oauth) against the test authorization server
//! (tests/common/oauth_server): both flows, slow_down, expiry, a declined
//! sign-in, a wrong state, the endpoint down and back, a restart between
//! Connect and completion, refresh-token rotation and revocation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

#[path = "common/oauth_server/mod.rs"]
mod oauth_server;

use std::sync::Arc;
use std::time::Duration;

use oauth_server::{token, OAuthServer, CLIENT_ID};
use postfach::account::{Account, SettingValue};
use postfach::config::Office365Config;
use postfach::error::Error;
use postfach::net::{Timeouts, TlsContext};
use postfach::oauth::Office365;
use postfach::store::{SecretKind, Store};

const USER: &str = "anna@contoso.test";

struct Setup {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    account: Account,
    o365: Office365,
}

fn config(server: &OAuthServer) -> Office365Config {
    Office365Config {
        client_id: Some(CLIENT_ID.into()),
        authority: server.authority(),
        ..Office365Config::default()
    }
}

fn office365(server: &OAuthServer, store: &Arc<Store>) -> Office365 {
    let t = Timeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_secs(10),
        ..Timeouts::default()
    };
    Office365::new(
        &config(server),
        &TlsContext::new(None).unwrap(),
        &t,
        store.clone(),
    )
    .unwrap()
}

fn setup(server: &OAuthServer) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let s = |v: &str| SettingValue::Str(v.into());
    let settings = vec![
        ("kind".to_string(), s("imap-office365")),
        ("address".to_string(), s(USER)),
        ("username".to_string(), s(USER)),
    ];
    let account = store
        .create_account(|id| Account::create(id, &settings))
        .unwrap();
    let o365 = office365(server, &store);
    Setup {
        dir,
        store,
        account,
        o365,
    }
}

/// The stored refresh token, read the way the daemon reads it.
fn stored_refresh(store: &Store, account: &str) -> Option<String> {
    let secret = store.secret(account, SecretKind::OAuthTokens).unwrap()?;
    let v: serde_json::Value = serde_json::from_str(secret.expose()).unwrap();
    Some(v["refresh_token"].as_str().unwrap().to_string())
}

/// Plays the user in the browser: opens the authorize URL, returns where
/// Microsoft redirects to.
async fn browse(authorize_url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(authorize_url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "{authorize_url}");
    r.headers()["location"].to_str().unwrap().to_string()
}

async fn sign_in(s: &Setup) {
    let start = s.o365.start_browser(&s.account).await.unwrap();
    let redirect = browse(&start.authorize_url).await;
    s.o365
        .complete_browser(&s.account, &redirect)
        .await
        .unwrap();
}

async fn wait_for_polls(server: &OAuthServer, n: usize) {
    for _ in 0..600 {
        if server.with(|st| st.polls()) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} polls");
}

#[tokio::test]
async fn device_flow_waits_for_the_user_and_honours_slow_down() {
    let server = OAuthServer::start();
    let s = setup(&server);
    let start = s.o365.start_device(&s.account).await.unwrap();
    assert!(
        start.verification_uri.ends_with("/devicelogin"),
        "{start:?}"
    );
    assert_eq!(start.expires_in, 900);
    assert_eq!(
        s.o365.pending_flow(&s.account.id).await.unwrap(),
        Some("device")
    );
    server.with(|st| st.slow_down_next = 1);
    let finish = s.o365.finish_device(&s.account);
    let user = async {
        // pending, then slow_down, then pending at the longer interval
        wait_for_polls(&server, 3).await;
        server.with(|st| st.approve(&start.user_code, USER));
    };
    let (done, ()) = tokio::join!(finish, user);
    done.unwrap();
    assert!(s.o365.is_authorized(&s.account.id).await.unwrap());
    assert_eq!(s.o365.pending_flow(&s.account.id).await.unwrap(), None);
    assert_eq!(server.with(|st| st.too_fast), 0, "polled faster than asked");
    let access = s.o365.access_token(&s.account).await.unwrap();
    assert_eq!(token::verify(access.secret()).as_deref(), Some(USER));
    let scope = server.with(|st| st.refresh.values().next().unwrap().1.clone());
    assert_eq!(
        scope,
        "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access"
    );
}

#[tokio::test]
async fn device_flow_declined_or_expired_needs_a_new_connect() {
    let server = OAuthServer::start();
    let s = setup(&server);
    // The user declines.
    let start = s.o365.start_device(&s.account).await.unwrap();
    server.with(|st| st.deny(&start.user_code));
    let e = s.o365.finish_device(&s.account).await.unwrap_err();
    assert!(matches!(e, Error::NeedsAuthorization(_)), "{e:?}");
    assert!(e.to_string().contains("declined"), "{e}");
    assert_eq!(s.o365.pending_flow(&s.account.id).await.unwrap(), None);
    // The code expires at the server while we poll.
    let start = s.o365.start_device(&s.account).await.unwrap();
    let finish = s.o365.finish_device(&s.account);
    let expire = async {
        wait_for_polls(&server, 3).await;
        server.with(|st| st.expire(&start.user_code));
    };
    let (e, ()) = tokio::join!(finish, expire);
    let e = e.unwrap_err();
    assert!(matches!(e, Error::NeedsAuthorization(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS70019"), "{e}");
    // The code's own life runs out before anyone signs in.
    server.with(|st| st.device_life = 2);
    s.o365.start_device(&s.account).await.unwrap();
    let e = s.o365.finish_device(&s.account).await.unwrap_err();
    assert!(matches!(e, Error::NeedsAuthorization(_)), "{e:?}");
    assert!(!s.o365.is_authorized(&s.account.id).await.unwrap());
}

#[tokio::test]
async fn device_flow_outlasts_the_token_endpoint_going_down() {
    let server = OAuthServer::start();
    let s = setup(&server);
    let start = s.o365.start_device(&s.account).await.unwrap();
    let finish = s.o365.finish_device(&s.account);
    let outage = async {
        wait_for_polls(&server, 1).await;
        server.down();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = server.with(|st| st.polls());
        server.up();
        server.with(|st| st.approve(&start.user_code, USER));
        wait_for_polls(&server, before + 1).await;
    };
    let (done, ()) = tokio::join!(finish, outage);
    done.unwrap();
    assert!(s.o365.is_authorized(&s.account.id).await.unwrap());
}

#[tokio::test]
async fn browser_flow_checks_state_and_pkce() {
    let server = OAuthServer::start();
    let s = setup(&server);
    let start = s.o365.start_browser(&s.account).await.unwrap();
    let url = oauth2::url::Url::parse(&start.authorize_url).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["login_hint"], USER);
    assert!(q["scope"].contains("offline_access"));
    let redirect = browse(&start.authorize_url).await;
    // A redirect with another state is refused and changes nothing.
    let forged = redirect.replace("state=", "state=x");
    match s.o365.complete_browser(&s.account, &forged).await {
        Err(Error::InvalidArgument { key, message }) => {
            assert_eq!(key, "redirect_url");
            assert!(message.contains("state"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!s.o365.is_authorized(&s.account.id).await.unwrap());
    // The real redirect still completes.
    s.o365
        .complete_browser(&s.account, &redirect)
        .await
        .unwrap();
    assert!(s.o365.is_authorized(&s.account.id).await.unwrap());
    // It works once: the pending sign-in is gone.
    let e = s
        .o365
        .complete_browser(&s.account, &redirect)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
}

#[tokio::test]
async fn browser_flow_declined_consent_is_a_clear_error() {
    let server = OAuthServer::start();
    let s = setup(&server);
    server.with(|st| st.decline_browser = true);
    let start = s.o365.start_browser(&s.account).await.unwrap();
    let redirect = browse(&start.authorize_url).await;
    let e = s
        .o365
        .complete_browser(&s.account, &redirect)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NeedsAuthorization(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("declined to consent") && text.contains("AADSTS65004"),
        "{text}"
    );
    assert!(!text.contains("Trace ID"), "{text}");
}

#[tokio::test]
async fn a_restart_between_connect_and_completion_loses_nothing() {
    let server = OAuthServer::start();
    let s = setup(&server);
    let start = s.o365.start_browser(&s.account).await.unwrap();
    let redirect = browse(&start.authorize_url).await;
    let (dir, account) = (s.dir, s.account);
    drop((s.o365, s.store));
    // A new daemon on the same store completes the sign-in.
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let o365 = office365(&server, &store);
    o365.complete_browser(&account, &redirect).await.unwrap();
    assert!(o365.is_authorized(&account.id).await.unwrap());
    drop((o365, store));
    // The same for the device flow: polling resumes after the restart.
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let o365 = office365(&server, &store);
    let start = o365.start_device(&account).await.unwrap();
    drop((o365, store));
    server.with(|st| st.approve(&start.user_code, USER));
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let o365 = office365(&server, &store);
    assert_eq!(
        o365.pending_flow(&account.id).await.unwrap(),
        Some("device")
    );
    o365.finish_device(&account).await.unwrap();
    assert_eq!(o365.pending_flow(&account.id).await.unwrap(), None);
}

#[tokio::test]
async fn refresh_rotates_and_commits_the_new_refresh_token() {
    let server = OAuthServer::start();
    server.with(|st| st.access_life = 4);
    let s = setup(&server);
    sign_in(&s).await;
    let first = s.o365.access_token(&s.account).await.unwrap();
    let old = stored_refresh(&s.store, &s.account.id).unwrap();
    // Fresh for half its life: the same token, no request.
    let asked = server.with(|st| st.token_requests.len());
    let again = s.o365.access_token(&s.account).await.unwrap();
    assert_eq!(again.secret(), first.secret());
    assert_eq!(server.with(|st| st.token_requests.len()), asked);
    // Past half its life it is refreshed ahead of expiry.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let next = s.o365.access_token(&s.account).await.unwrap();
    assert_ne!(next.secret(), first.secret());
    assert_eq!(token::verify(next.secret()).as_deref(), Some(USER));
    let new = stored_refresh(&s.store, &s.account.id).unwrap();
    assert_ne!(new, old);
    server.with(|st| {
        assert!(
            !st.refresh.contains_key(&old),
            "the old refresh token still works"
        );
        assert!(
            st.refresh.contains_key(&new),
            "the store does not hold the live one"
        );
    });
}

#[tokio::test]
async fn a_revoked_grant_needs_authorization_without_a_retry_storm() {
    let server = OAuthServer::start();
    let s = setup(&server);
    sign_in(&s).await;
    server.with(|st| st.revoke(USER));
    let e = s.o365.refresh(&s.account).await.unwrap_err();
    assert!(matches!(e, Error::NeedsAuthorization(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS50173"), "{e}");
    assert!(!s.o365.is_authorized(&s.account.id).await.unwrap());
    let asked = server.with(|st| st.token_requests.len());
    for _ in 0..3 {
        let e = s.o365.access_token(&s.account).await.unwrap_err();
        assert!(matches!(e, Error::NeedsAuthorization(_)), "{e:?}");
    }
    assert_eq!(
        server.with(|st| st.token_requests.len()),
        asked,
        "asked the server again"
    );
}

#[tokio::test]
async fn a_token_endpoint_that_is_down_is_transient() {
    let server = OAuthServer::start();
    let s = setup(&server);
    sign_in(&s).await;
    let before = stored_refresh(&s.store, &s.account.id).unwrap();
    server.down();
    let e = s.o365.refresh(&s.account).await.unwrap_err();
    assert!(matches!(e, Error::Connection { .. }), "{e:?}");
    assert!(!e.to_string().contains(&before), "{e}");
    assert_eq!(stored_refresh(&s.store, &s.account.id).unwrap(), before);
    server.up();
    let access = s.o365.refresh(&s.account).await.unwrap();
    assert_eq!(token::verify(access.secret()).as_deref(), Some(USER));
}

#[tokio::test]
async fn a_wrong_app_registration_is_a_clear_error() {
    let server = OAuthServer::start();
    let s = setup(&server);
    let mut c = config(&server);
    c.client_id = Some("not-our-app".into());
    let store = s.store.clone();
    let o365 = Office365::new(
        &c,
        &TlsContext::new(None).unwrap(),
        &Timeouts::default(),
        store,
    )
    .unwrap();
    let e = o365.start_device(&s.account).await.unwrap_err();
    assert!(matches!(e, Error::Authentication(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS700016"), "{e}");
    // No client_id at all: every flow says what to configure.
    let o365 = Office365::new(
        &Office365Config::default(),
        &TlsContext::new(None).unwrap(),
        &Timeouts::default(),
        s.store.clone(),
    )
    .unwrap();
    let e = o365.start_browser(&s.account).await.unwrap_err();
    assert!(e.to_string().contains("client_id"), "{e}");
}
