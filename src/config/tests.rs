//! Unit tests of config parsing and validation.

use super::*;

fn err(text: &str) -> (String, String) {
    match Config::parse(text) {
        Err(Error::InvalidArgument { key, message }) => (key, message),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn empty_file_gives_defaults() {
    let c = Config::parse("").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.access.admin_groups, vec!["postfach-admin".to_string()]);
    assert_eq!(c.fetch.max_concurrent_connects, 8);
    assert_eq!(c.fetch.connect_timeout, Duration::from_secs(15));
    assert_eq!(c.fetch.read_timeout, Duration::from_secs(60));
    assert_eq!(c.fetch.max_message_size, 100 * 1024 * 1024);
    assert_eq!(c.fetch.deadline.floor, Duration::from_secs(120));
    assert_eq!(c.fetch.deadline.min_rate, 16 * 1024);
}

#[test]
fn full_file_is_read() {
    let c = Config::parse(
        r#"
[log]
level = "postfach=debug,info"

[access]
admin_groups = ["wheel", "postfach-admin"]
frontend_groups = ["crm"]

[access.users]
alice = "AL"
bob = "BOB"

[tls]
extra_ca_file = "/etc/postfach/ca.pem"

[fetch]
max_concurrent_connects = 3
connect_timeout = 5
read_timeout = 120
max_message_size = 26214400
deadline_floor = 300
deadline_min_rate = 4096
"#,
    )
    .unwrap();
    assert_eq!(c.log_level.as_deref(), Some("postfach=debug,info"));
    assert_eq!(c.access.admin_groups, ["wheel", "postfach-admin"]);
    assert_eq!(c.access.frontend_groups, ["crm"]);
    assert_eq!(c.access.users.get("alice").map(String::as_str), Some("AL"));
    assert_eq!(c.access.users.len(), 2);
    assert_eq!(
        c.tls.extra_ca_file.as_deref(),
        Some(Path::new("/etc/postfach/ca.pem"))
    );
    assert_eq!(c.fetch.max_concurrent_connects, 3);
    assert_eq!(c.fetch.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.fetch.read_timeout, Duration::from_secs(120));
    assert_eq!(c.fetch.max_message_size, 25 * 1024 * 1024);
    assert_eq!(c.fetch.deadline.floor, Duration::from_secs(300));
    assert_eq!(c.fetch.deadline.min_rate, 4096);
}

#[test]
fn empty_admin_groups_is_allowed() {
    let c = Config::parse("[access]\nadmin_groups = []\n").unwrap();
    assert!(c.access.admin_groups.is_empty());
}

#[test]
fn unknown_key_names_its_path_and_line() {
    let (key, msg) = err("[access]\nadmin_group = [\"x\"]\n");
    assert_eq!(key, "access.admin_group");
    assert!(msg.contains("line 2"), "{msg}");
    let (key, _) = err("[fetsh]\nread_timeout = 1\n");
    assert_eq!(key, "fetsh");
}

#[test]
fn wrong_type_names_its_path_and_line() {
    let (key, msg) = err("[log]\nlevel = \"info\"\n[fetch]\n\nread_timeout = \"60s\"\n");
    assert_eq!(key, "fetch.read_timeout");
    assert!(msg.contains("line 5"), "{msg}");
    let (key, _) = err("[access.users]\nalice = 5\n");
    assert_eq!(key, "access.users.alice");
}

#[test]
fn syntax_error_has_line() {
    let (_, msg) = err("[fetch]\nread_timeout = = 3\n");
    assert!(msg.contains("line 2"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg:?}");
}

#[test]
fn out_of_range_values_are_rejected() {
    assert_eq!(err("[fetch]\nread_timeout = 0\n").0, "fetch.read_timeout");
    assert_eq!(
        err("[fetch]\nconnect_timeout = 15000\n").0,
        "fetch.connect_timeout"
    );
    assert_eq!(
        err("[fetch]\nmax_concurrent_connects = 0\n").0,
        "fetch.max_concurrent_connects"
    );
    assert_eq!(err("[fetch]\nread_timeout = -1\n").0, "fetch.read_timeout");
}

/// A limit below 1 MiB would refuse ordinary mail with an attachment, a
/// rate of 0 would never end a fetch: both name the key and the range.
#[test]
fn fetch_limits_have_sane_bounds() {
    let (key, msg) = err("[fetch]\nmax_message_size = 100000\n");
    assert_eq!(key, "fetch.max_message_size");
    assert!(msg.contains("allowed are 1048576 to 4294967295"), "{msg}");
    assert_eq!(
        err("[fetch]\nmax_message_size = 5000000000\n").0,
        "fetch.max_message_size"
    );
    assert_eq!(
        err("[fetch]\ndeadline_floor = 0\n").0,
        "fetch.deadline_floor"
    );
    assert_eq!(
        err("[fetch]\ndeadline_floor = 100000\n").0,
        "fetch.deadline_floor"
    );
    let (key, msg) = err("[fetch]\ndeadline_min_rate = 0\n");
    assert_eq!(key, "fetch.deadline_min_rate");
    assert!(msg.contains("allowed are 1024 to"), "{msg}");
    assert_eq!(
        Config::parse("[fetch]\nmax_message_size = 1048576\n")
            .unwrap()
            .fetch
            .max_message_size,
        1024 * 1024
    );
}

#[test]
fn bad_values_are_rejected() {
    assert_eq!(err("[log]\nlevel = \"=[\"\n").0, "log.level");
    assert_eq!(
        err("[access]\nadmin_groups = [\"\"]\n").0,
        "access.admin_groups"
    );
    assert_eq!(
        err("[access]\nfrontend_groups = [\"crm users\"]\n").0,
        "access.frontend_groups"
    );
    assert_eq!(
        err("[access.users]\nalice = \" \"\n").0,
        "access.users.alice"
    );
    assert_eq!(
        err("[tls]\nextra_ca_file = \"ca.pem\"\n").0,
        "tls.extra_ca_file"
    );
}

#[test]
fn load_reports_missing_file_and_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    match Config::load(&missing) {
        Err(Error::NotFound(m)) => assert!(m.contains("nope.toml"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Config::load_or_default(&missing).unwrap(),
        Config::default()
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[fetch]\nbogus = 1\n").unwrap();
    match Config::load(&bad) {
        Err(Error::InvalidArgument { key, message }) => {
            assert_eq!(key, "fetch.bogus");
            assert!(message.contains("bad.toml, line 2"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // load_or_default must not hide a broken file.
    assert!(Config::load_or_default(&bad).is_err());
}

#[test]
fn load_checks_the_extra_ca_file_exists() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&cfg, format!("[tls]\nextra_ca_file = {:?}\n", ca)).unwrap();
    assert!(matches!(
        Config::load(&cfg),
        Err(Error::InvalidArgument { ref key, .. }) if key == "tls.extra_ca_file"
    ));
    std::fs::write(&ca, "pem").unwrap();
    assert_eq!(Config::load(&cfg).unwrap().tls.extra_ca_file, Some(ca));
}

/// The shipped example must parse, give the defaults, and every commented
/// key in it must be a real key (uncommented, it still parses).
#[test]
fn packaged_example_is_valid() {
    let text = include_str!("../../packaging/postfach.toml.example");
    assert_eq!(Config::parse(text).unwrap(), Config::default());
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = Config::parse(&uncommented).unwrap();
    assert_eq!(c.log_level.as_deref(), Some("info"));
    assert_eq!(c.access.users.len(), 1);
    assert!(c.tls.extra_ca_file.is_some());
    assert_eq!(c.fetch, FetchConfig::default());
}
