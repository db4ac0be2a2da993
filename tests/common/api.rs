//! D-Bus client helpers for the API tests: a connection to a test daemon's
//! bus, comparable snapshots of what the ObjectManager shows, and error
//! names.

use zbus::Connection;

use super::daemon::Daemon;

/// A client connection on the daemon's private bus.
pub async fn bus(d: &Daemon) -> Connection {
    zbus::connection::Builder::address(d.bus().address())
        .build()
        .await
        .expect("connect to the test bus")
}

/// Every account property the ObjectManager shows, one sorted line each —
/// without the runtime ones (State, LastError, LastFetchAt, Progress),
/// which the account tasks change on their own.
pub async fn snapshot(conn: &Connection) -> String {
    let om = zbus::fdo::ObjectManagerProxy::builder(conn)
        .destination("org.postfach.Postfach1")
        .path("/org/postfach/Postfach1")
        .build()
        .await
        .expect("ObjectManager proxy");
    let objects = om.get_managed_objects().await.expect("GetManagedObjects");
    let runtime = [" State=", " LastError=", " LastFetchAt=", " Progress="];
    let mut lines: Vec<String> = objects
        .iter()
        .flat_map(|(path, ifaces)| {
            ifaces.iter().flat_map(move |(iface, props)| {
                props
                    .iter()
                    .map(move |(k, v)| format!("{path} {iface} {k}={v:?}"))
            })
        })
        .filter(|l| !runtime.iter().any(|r| l.contains(r)))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// Equal snapshots, or a panic that shows only the lines that differ.
pub fn same(now: &str, before: &str, what: &str) {
    let a: Vec<&str> = now.lines().collect();
    let b: Vec<&str> = before.lines().collect();
    let gone: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
    let new: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "{what}: gone {gone:#?}, new {new:#?}"
    );
}

/// The D-Bus error name and message of a failed call.
pub fn error_parts(e: zbus::Error) -> (String, String) {
    match e {
        zbus::Error::MethodError(name, msg, _) => (name.to_string(), msg.unwrap_or_default()),
        zbus::Error::FDO(e) => {
            use zbus::DBusError;
            (
                e.name().to_string(),
                e.description().unwrap_or_default().to_string(),
            )
        }
        other => (format!("{other:?}"), String::new()),
    }
}
