//! `account test`: the step-by-step connection test [Verbindungsdaten
//! prüfen] of ARCHITECTURE.md "What it does", for a saved account (`Account.TestConnection`)
//! or for settings not saved yet (`Manager.TestSettings`).
//!
//! The report is for an admin on the phone with a mail provider: one line
//! per step with its outcome, duration and the daemon's message, so the
//! first failed step says where to look. Exit status 1 when a step failed,
//! so scripts can use it as a health check.

use std::collections::HashMap;

use zbus::{OwnedVariant, Variant};

use super::commands::{not_found, with_passwords, Ctl};
use super::output;
use super::settings::SettingsArgs;
use super::CtlError;
use crate::dbus::proxy::ManagerProxy;

/// One step dict as the daemon sends it (`name s`, `ok b`, `millis u`,
/// `message s`).
type Step = HashMap<String, OwnedVariant>;

impl Ctl {
    /// `account test ID`: test the saved settings of account `id`.
    pub async fn test_saved(&self, id: &str) -> Result<(), CtlError> {
        let account = self.account(id).await?;
        let steps = account
            .test_connection()
            .await
            .map_err(|e| not_found(id, e.into()))?;
        self.step_report(&steps)
    }

    /// `account test --kind … --host …`: test settings without saving
    /// them. The password is asked once (a typo shows up as a failed login).
    pub async fn test_settings(
        &self,
        settings: &SettingsArgs,
        password_stdin: bool,
        smtp_password: bool,
    ) -> Result<(), CtlError> {
        let dict = with_passwords(settings, password_stdin, smtp_password, false)?;
        let manager = ManagerProxy::new(&self.conn).await?;
        let steps = manager.test_settings(dict).await?;
        self.step_report(&steps)
    }

    /// Print the steps (table or JSON); an error when a step failed.
    fn step_report(&self, steps: &[Step]) -> Result<(), CtlError> {
        if self.json {
            let list: Vec<_> = steps.iter().map(output::json_object).collect();
            println!("{}", serde_json::Value::Array(list));
        } else {
            print!("{}", steps_text(steps));
        }
        match steps.iter().find(|s| !step_ok(s)) {
            Some(failed) => Err(CtlError::local(
                "TestFailed",
                format!(
                    "the connection test failed at step {}",
                    field(failed, "name")
                ),
            )),
            None => Ok(()),
        }
    }
}

/// The report as aligned lines: `ok|FAILED  name  N ms  message`.
pub fn steps_text(steps: &[Step]) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                if step_ok(s) { "ok" } else { "FAILED" }.to_string(),
                field(s, "name"),
                format!("{} ms", field(s, "millis")),
                field(s, "message"),
            ]
        })
        .collect();
    output::align(&rows, &[2])
}

/// A step without a boolean `ok` counts as failed: never report success
/// that the daemon did not state.
fn step_ok(step: &Step) -> bool {
    matches!(step.get("ok").map(|v| &**v), Some(Variant::Bool(true)))
}

fn field(step: &Step, key: &str) -> String {
    step.get(key)
        .map(|v| output::text(key, v))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, ok: bool, millis: u32, message: &str) -> Step {
        let v = |v: Variant<'_>| OwnedVariant::try_from(v).unwrap();
        let mut s = Step::new();
        s.insert("name".into(), v(Variant::from(name)));
        s.insert("ok".into(), v(Variant::from(ok)));
        s.insert("millis".into(), v(Variant::from(millis)));
        s.insert("message".into(), v(Variant::from(message)));
        s
    }

    #[test]
    fn one_aligned_line_per_step() {
        let text = steps_text(&[
            step("resolve", true, 1, "127.0.0.1"),
            step("login", false, 512, "authentication failed"),
        ]);
        assert_eq!(
            text,
            "ok      resolve    1 ms  127.0.0.1\n\
             FAILED  login    512 ms  authentication failed\n"
        );
    }

    #[test]
    fn missing_ok_is_a_failure() {
        let mut s = step("connect", true, 3, "");
        assert!(step_ok(&s));
        s.remove("ok");
        assert!(!step_ok(&s));
    }
}
