//! The restore safety reset (ARCHITECTURE.md "What it does", "Restore safety").
//!
//! A restored backup, or a store copied to another machine or path, is a
//! second installation that reads the same mailboxes as the first. If both
//! deleted mail on the server, the test installation would take mail away
//! from the real one. So whenever the store may be such a copy, every
//! account that had delete-on-server gets it switched off and is marked
//! `restore_reset` (the `RestoreReset` property); an admin who wants
//! deletion back sets `delete_on_server` again, which clears the mark.
//!
//! The reset is one durable transaction over all accounts: a kill -9 leaves
//! either every account reset or none. Callers that must also record
//! something about why (the copied-store check) do it in the same
//! transaction through [`reset_in`].

use redb::{ReadableTable, WriteTransaction};

use super::schema::ACCOUNTS;
use super::Store;
use crate::account::Account;
use crate::error::{Context, Result};

impl Store {
    /// Switch delete-on-server off and set `restore_reset` on every account
    /// that had delete-on-server, in one durable transaction; a warning per
    /// account names it and `reason` (which must hold no secret). Returns the
    /// ids that were reset, oldest first.
    pub fn restore_safety_reset(&self, reason: &str) -> Result<Vec<String>> {
        let tx = self.write()?;
        let reset = reset_in(&tx)?;
        tx.commit().context("commit restore safety reset")?;
        log_reset(&reset, reason);
        Ok(reset.accounts)
    }
}

/// What one reset changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reset {
    /// The accounts whose delete-on-server was switched off, oldest first.
    pub accounts: Vec<String>,
    /// Outbox mails held (`super::outbox::hold_in`): queued or sending
    /// mails of the original installation, now failed, not sent from here.
    pub held: usize,
}

/// The reset inside the caller's transaction; the caller commits and then
/// calls [`log_reset`].
pub(super) fn reset_in(tx: &WriteTransaction) -> Result<Reset> {
    let mut table = tx.open_table(ACCOUNTS).context("open accounts")?;
    let mut changed: Vec<Account> = Vec::new();
    for row in table.iter().context("read accounts")? {
        let (_, v) = row.context("read accounts")?;
        let account: Account =
            serde_json::from_slice(v.value()).context("stored account is unreadable")?;
        if account.delete_on_server {
            changed.push(account);
        }
    }
    for account in &mut changed {
        account.delete_on_server = false;
        account.restore_reset = true;
        let json = serde_json::to_vec(&*account).context("encode account")?;
        table
            .insert(account.id.as_str(), json.as_slice())
            .context("write account")?;
    }
    drop(table);
    let mut ids: Vec<String> = changed.into_iter().map(|a| a.id).collect();
    // Creation order: `a` + counter, so shorter ids are older.
    ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    let held = super::outbox::hold_in(tx)?;
    Ok(Reset {
        accounts: ids,
        held,
    })
}

/// One journal warning per reset account: its id and why, nothing else;
/// one more when outbox mails were held.
pub(super) fn log_reset(reset: &Reset, reason: &str) {
    if reset.held > 0 {
        tracing::warn!(
            held = reset.held,
            reason,
            "{} outbox mail(s) not sent from here ({reason}): they are failed and can be sent again",
            reset.held
        );
    }
    for id in &reset.accounts {
        tracing::warn!(
            account = %id,
            reason,
            "delete-on-server switched off for account {id} ({reason}); set delete_on_server \
             again to re-enable it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::SettingValue;
    use crate::store::tests::pop3;

    fn with_delete(store: &Store, delete: bool) -> Account {
        let a = store.create_account(|id| pop3(id, Some("pw"))).unwrap();
        let change = [("delete_on_server".to_string(), SettingValue::Bool(delete))];
        store
            .update_account(&a.id, |cur| cur.updated(&change))
            .unwrap()
    }

    #[test]
    fn reset_switches_off_exactly_the_deleting_accounts_durably() {
        let dir = tempfile::tempdir().unwrap();
        let (keep, del1, del2) = {
            let store = Store::open(dir.path()).unwrap();
            let keep = with_delete(&store, false);
            let del1 = with_delete(&store, true);
            let del2 = with_delete(&store, true);
            let ids = store.restore_safety_reset("test").unwrap();
            assert_eq!(ids, vec![del1.id.clone(), del2.id.clone()]);
            // A second reset finds nothing left to switch off.
            assert!(store.restore_safety_reset("test").unwrap().is_empty());
            (keep, del1, del2)
        };
        let store = Store::open(dir.path()).unwrap();
        let k = store.account(&keep.id).unwrap().unwrap();
        assert_eq!(k, keep, "an account without delete-on-server is untouched");
        for id in [&del1.id, &del2.id] {
            let a = store.account(id).unwrap().unwrap();
            assert!(!a.delete_on_server && a.restore_reset, "{a:?}");
        }
    }

    #[test]
    fn update_with_delete_on_server_clears_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = with_delete(&store, true);
        store.restore_safety_reset("test").unwrap();
        // Another change keeps the mark: the admin has not decided yet.
        let rename = [("name".to_string(), SettingValue::Str("Vertrieb".into()))];
        let b = store.update_account(&a.id, |c| c.updated(&rename)).unwrap();
        assert!(b.restore_reset && !b.delete_on_server);
        let off = [("delete_on_server".to_string(), SettingValue::Bool(false))];
        let c = store.update_account(&a.id, |c| c.updated(&off)).unwrap();
        assert!(c.restore_reset, "switching it off again says nothing new");
        let on = [("delete_on_server".to_string(), SettingValue::Bool(true))];
        let d = store.update_account(&a.id, |c| c.updated(&on)).unwrap();
        assert!(d.delete_on_server && !d.restore_reset);
    }

    /// A cloned or restored installation must not send the original's
    /// queue a second time: queued mail becomes failed with the reason,
    /// sent and failed mail stay as they were, and nothing is due.
    #[test]
    fn reset_holds_the_queued_outbox() {
        use crate::store::{OutboxRecord, OutboxState, Summary, HELD};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = with_delete(&store, false);
        let queue = |subject: &str| {
            let summary = Summary {
                subject: subject.into(),
                ..Summary::default()
            };
            let rec = OutboxRecord {
                from: "a@example.org".into(),
                rcpt: vec!["b@example.org".into()],
                ..OutboxRecord::default()
            };
            store
                .add_outbox(&a, b"Subject: x\r\n\r\nx\r\n".to_vec(), summary, rec)
                .unwrap()
        };
        let waiting = queue("wartet");
        let gone = queue("raus");
        let mut sent = store.outbox_record(gone).unwrap().unwrap();
        sent.state = OutboxState::Sent;
        store
            .set_outbox_record(gone, OutboxState::Queued, &sent)
            .unwrap();
        assert_eq!(store.pending_outbox(OutboxState::Queued).unwrap().len(), 1);

        store.restore_safety_reset("test").unwrap();
        let held = store.outbox_record(waiting).unwrap().unwrap();
        assert_eq!(held.state, OutboxState::Failed);
        assert_eq!(held.error, HELD);
        assert!(held.done_at > 0);
        assert_eq!(store.outbox_record(gone).unwrap().unwrap(), sent);
        assert!(store
            .pending_outbox(OutboxState::Queued)
            .unwrap()
            .is_empty());
        assert!(store
            .pending_outbox(OutboxState::Sending)
            .unwrap()
            .is_empty());
    }
}
