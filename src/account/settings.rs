//! Building and changing an [`Account`] from settings keys: every key is
//! checked by [`super::validate`], defaults (ports, Office 365 hosts) are
//! filled in, and the result must be complete before it reaches the store.

use std::collections::HashSet;

use super::validate::*;
use super::{
    default_port, default_smtp_port, Account, Encryption, SecretChanges, SettingValue, KEYS,
    MAX_POLL_INTERVAL, O365_IMAP, O365_POP3, O365_SMTP,
};
use crate::error::{Error, Result};

impl Account {
    /// Build a new account from CreateAccount settings. `kind`, `host` (unless
    /// an Office 365 kind) and `address` are required; the rest default.
    pub fn create(
        id: String,
        settings: &[(String, SettingValue)],
    ) -> Result<(Account, SecretChanges)> {
        let kind = match settings.iter().find(|(k, _)| k == "kind") {
            Some((_, v)) => parse_kind(v)?,
            None => {
                return Err(Error::invalid(
                    "kind",
                    "missing; one of pop3, imap, pop3-office365, imap-office365",
                ))
            }
        };
        let mut account = Account {
            id,
            // Accounts belong to a tenant [Mandant]; single-tenant CRMs need
            // not name one.
            tenant: "default".into(),
            name: String::new(),
            address: String::new(),
            kind,
            host: String::new(),
            port: 0,
            encryption: Encryption::Tls,
            username: String::new(),
            private_owner: String::new(),
            delete_on_server: false,
            poll_interval: 300,
            smtp_host: String::new(),
            smtp_port: 0,
            smtp_encryption: Encryption::Tls,
            smtp_login: true,
            smtp_username: String::new(),
            drafts_folder: String::new(),
            trash_folder: String::new(),
            sent_folder: String::new(),
            save_sent_copy: false,
            tls_pin: String::new(),
            allow_plaintext_auth: false,
            restore_reset: false,
            folders: Vec::new(),
            folders_synced_at: 0,
        };
        let secrets = account.apply_keys(settings)?;
        account.fill_defaults(settings);
        account.check_complete()?;
        Ok((account, secrets))
    }

    /// Apply Update changes to a copy and return it; `self` is untouched, so
    /// a bad key leaves the stored account as it was.
    pub fn updated(&self, changes: &[(String, SettingValue)]) -> Result<(Account, SecretChanges)> {
        let mut next = self.clone();
        let secrets = next.apply_keys(changes)?;
        next.fill_defaults(changes);
        next.check_complete()?;
        Ok((next, secrets))
    }

    fn apply_keys(&mut self, settings: &[(String, SettingValue)]) -> Result<SecretChanges> {
        let mut secrets = SecretChanges::default();
        let mut seen = HashSet::new();
        for (key, value) in settings {
            if !seen.insert(key.as_str()) {
                return Err(Error::invalid(key, "given twice"));
            }
            match key.as_str() {
                "tenant" => self.tenant = name_field(key, value, true)?,
                "name" => self.name = name_field(key, value, true)?,
                "address" => {
                    let a = string(key, value)?;
                    check_address(key, &a)?;
                    self.address = a;
                }
                "kind" => self.kind = parse_kind(value)?,
                "host" => self.host = host(key, value)?,
                "port" => self.port = port(key, value)?,
                "encryption" => self.encryption = encryption(key, value)?,
                "username" => self.username = name_field(key, value, true)?,
                "password" => secrets.password = Some(secret(key, value)?),
                "private_owner" => self.private_owner = user_shorthand(key, value)?,
                "delete_on_server" => {
                    self.delete_on_server = boolean(key, value)?;
                    // The admin decided again after a restore safety reset
                    // (`crate::store` reset): the mark has done its job.
                    if self.delete_on_server {
                        self.restore_reset = false;
                    }
                }
                "poll_interval" => {
                    let v = match value {
                        SettingValue::U32(v) => *v,
                        other => return Err(wrong_type(key, "u (uint32)", other)),
                    };
                    if v > MAX_POLL_INTERVAL {
                        return Err(Error::invalid(
                            key,
                            format!("{v} s is more than a week ({MAX_POLL_INTERVAL} s)"),
                        ));
                    }
                    self.poll_interval = v;
                }
                "smtp_host" => self.smtp_host = host(key, value)?,
                "smtp_port" => self.smtp_port = port(key, value)?,
                "smtp_encryption" => self.smtp_encryption = encryption(key, value)?,
                "smtp_login" => self.smtp_login = boolean(key, value)?,
                "smtp_username" => self.smtp_username = name_field(key, value, true)?,
                "smtp_password" => secrets.smtp_password = Some(secret(key, value)?),
                "drafts_folder" => self.drafts_folder = folder(key, value)?,
                "trash_folder" => self.trash_folder = folder(key, value)?,
                "sent_folder" => self.sent_folder = folder(key, value)?,
                "save_sent_copy" => self.save_sent_copy = boolean(key, value)?,
                "tls_pin" => self.tls_pin = pin(key, value)?,
                "allow_plaintext_auth" => self.allow_plaintext_auth = boolean(key, value)?,
                _ => {
                    return Err(Error::invalid(
                        key,
                        format!("unknown settings key; known keys: {}", KEYS.join(", ")),
                    ))
                }
            }
        }
        Ok(secrets)
    }

    /// Fill ports and Office 365 hosts that the settings left out. A port
    /// is re-derived when the encryption changed but the port was not given.
    fn fill_defaults(&mut self, given: &[(String, SettingValue)]) {
        let has = |k: &str| given.iter().any(|(key, _)| key == k);
        if self.kind.is_office365() {
            let (h, p) = if self.kind.is_imap() {
                O365_IMAP
            } else {
                O365_POP3
            };
            if self.host.is_empty() {
                self.host = h.into();
                if !has("port") {
                    self.port = p;
                }
            }
            if self.smtp_host.is_empty() {
                self.smtp_host = O365_SMTP.0.into();
                if !has("smtp_port") {
                    self.smtp_port = O365_SMTP.1;
                }
                if !has("smtp_encryption") {
                    self.smtp_encryption = Encryption::Starttls;
                }
            }
        }
        if self.port == 0 || ((has("encryption") || has("kind")) && !has("port")) {
            self.port = default_port(self.kind, self.encryption);
        }
        if self.smtp_port == 0 || (has("smtp_encryption") && !has("smtp_port")) {
            self.smtp_port = default_smtp_port(self.smtp_encryption);
        }
        if self.username.is_empty() {
            self.username = self.address.clone();
        }
        if self.smtp_username.is_empty() {
            self.smtp_username = self.username.clone();
        }
        if self.name.is_empty() {
            self.name = self.address.clone();
        }
    }

    fn check_complete(&self) -> Result<()> {
        if self.address.is_empty() {
            return Err(Error::invalid(
                "address",
                "missing; the account's e-mail address is required",
            ));
        }
        if self.host.is_empty() {
            return Err(Error::invalid(
                "host",
                "missing; the incoming server's host name is required",
            ));
        }
        if !self.kind.is_imap()
            && (!self.drafts_folder.is_empty()
                || !self.trash_folder.is_empty()
                || !self.sent_folder.is_empty()
                || self.save_sent_copy)
        {
            let key = if !self.drafts_folder.is_empty() {
                "drafts_folder"
            } else if !self.trash_folder.is_empty() {
                "trash_folder"
            } else if !self.sent_folder.is_empty() {
                "sent_folder"
            } else {
                "save_sent_copy"
            };
            return Err(Error::invalid(key, "folders exist only on IMAP accounts"));
        }
        if self.save_sent_copy && self.sent_folder.is_empty() {
            return Err(Error::invalid("save_sent_copy", "needs sent_folder"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Kind;

    fn s(k: &str, v: &str) -> (String, SettingValue) {
        (k.to_string(), SettingValue::Str(v.to_string()))
    }

    #[test]
    fn defaults_follow_kind_and_encryption() {
        let (a, secrets) = Account::create(
            "a1".into(),
            &[
                s("kind", "pop3"),
                s("host", "Mail.Example.COM"),
                s("address", "x@example.com"),
                s("password", "pw"),
            ],
        )
        .unwrap();
        assert_eq!(
            (a.kind, a.port, a.encryption),
            (Kind::Pop3, 995, Encryption::Tls)
        );
        assert_eq!(a.host, "mail.example.com");
        assert_eq!(
            (a.username.as_str(), a.name.as_str()),
            ("x@example.com", "x@example.com")
        );
        assert_eq!(secrets.password.as_deref(), Some("pw"));
        assert!(
            !format!("{secrets:?}").contains("pw\""),
            "secrets are redacted in Debug"
        );
        let (b, _) = a.updated(&[s("encryption", "starttls")]).unwrap();
        assert_eq!(b.port, 110, "the port follows a new encryption");
        let (c, _) = b
            .updated(&[(String::from("port"), SettingValue::U16(1110))])
            .unwrap();
        assert_eq!(c.port, 1110);
    }

    #[test]
    fn office365_gets_microsofts_endpoints() {
        let (a, _) = Account::create(
            "a2".into(),
            &[
                s("kind", "imap-office365"),
                s("address", "crm@contoso.example"),
            ],
        )
        .unwrap();
        assert_eq!((a.host.as_str(), a.port), ("outlook.office365.com", 993));
        assert_eq!(
            (a.smtp_host.as_str(), a.smtp_port, a.smtp_encryption),
            ("smtp.office365.com", 587, Encryption::Starttls)
        );
        let (p, _) = Account::create(
            "a3".into(),
            &[
                s("kind", "pop3-office365"),
                s("address", "crm@contoso.example"),
            ],
        )
        .unwrap();
        assert_eq!((p.host.as_str(), p.port), ("outlook.office365.com", 995));
    }

    #[test]
    fn a_bad_update_leaves_the_account_as_it_was() {
        let (a, _) = Account::create(
            "a4".into(),
            &[
                s("kind", "imap"),
                s("host", "h.example"),
                s("address", "x@example.com"),
            ],
        )
        .unwrap();
        let before = a.clone();
        let err = a
            .updated(&[
                s("name", "new"),
                (String::from("port"), SettingValue::U32(70000)),
            ])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { ref key, .. } if key == "port"));
        assert_eq!(a, before);
    }
}
