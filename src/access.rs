//! Callers -> roles; which user sees which mail (ARCHITECTURE.md "The D-Bus API" "Who may
//! call", invariant 6).
//!
//! The bus policy file lets every local user talk to the daemon; the daemon
//! decides, per call, from the caller's real credentials as the bus daemon
//! reports them (`GetConnectionCredentials`: uid and groups), never from
//! anything the caller claims. Group and user names from the config are
//! resolved to ids once per (re)load, so a renamed group takes effect on
//! SIGHUP.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::{Error, Result};

/// Who is calling, as the bus daemon saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gids: Vec<u32>,
}

/// What a caller may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// root, `admin_groups`, or the session's own user on a session bus:
    /// configures everything and may read every mailbox.
    Admin,
    /// A trusted CRM frontend (`frontend_groups`): acts for the CRM user
    /// named in each call; the CRM's own login authenticated that user.
    Frontend,
    /// A Unix user mapped by `[access.users]` to one CRM user, who may act
    /// only as itself.
    User(String),
}

/// The resolved access rules.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    admin_gids: HashSet<u32>,
    frontend_gids: HashSet<u32>,
    users: HashMap<u32, String>,
    /// On a session bus, the daemon's own uid is admin.
    session_owner: Option<u32>,
}

impl Policy {
    /// Resolve the config's names. Names that do not exist on this system
    /// are skipped with a warning: a missing group grants nothing.
    pub fn new(
        admin_groups: &[String],
        frontend_groups: &[String],
        users: &BTreeMap<String, String>,
        session_owner: Option<u32>,
    ) -> Policy {
        let group_ids = |names: &[String]| -> HashSet<u32> {
            names
                .iter()
                .filter_map(|n| match nix::unistd::Group::from_name(n) {
                    Ok(Some(g)) => Some(g.gid.as_raw()),
                    _ => {
                        tracing::warn!(group = %n, "access: group not found; it grants nothing");
                        None
                    }
                })
                .collect()
        };
        let users = users
            .iter()
            .filter_map(|(unix, crm)| match nix::unistd::User::from_name(unix) {
                Ok(Some(u)) => Some((u.uid.as_raw(), crm.clone())),
                _ => {
                    tracing::warn!(user = %unix, "access: Unix user not found; mapping ignored");
                    None
                }
            })
            .collect();
        Policy {
            admin_gids: group_ids(admin_groups),
            frontend_gids: group_ids(frontend_groups),
            users,
            session_owner,
        }
    }

    /// The caller's role, or None for everyone else.
    pub fn role(&self, c: &Caller) -> Option<Role> {
        if c.uid == 0
            || Some(c.uid) == self.session_owner
            || c.gids.iter().any(|g| self.admin_gids.contains(g))
        {
            return Some(Role::Admin);
        }
        if c.gids.iter().any(|g| self.frontend_gids.contains(g)) {
            return Some(Role::Frontend);
        }
        self.users.get(&c.uid).map(|u| Role::User(u.clone()))
    }

    /// The role, or AccessDenied.
    pub fn require_role(&self, c: &Caller) -> Result<Role> {
        self.role(c).ok_or_else(|| {
            Error::AccessDenied(format!(
                "uid {} is not allowed to use postfach (not root, not in admin_groups or frontend_groups, not in [access.users])",
                c.uid
            ))
        })
    }

    /// Admin only: configuration, backup, restore.
    pub fn require_admin(&self, c: &Caller) -> Result<()> {
        match self.require_role(c)? {
            Role::Admin => Ok(()),
            _ => Err(Error::AccessDenied(format!(
                "uid {} may not change the configuration: only root and admin_groups may",
                c.uid
            ))),
        }
    }

    /// Who reads account settings (`Properties.Get/GetAll` on an account,
    /// `GetManagedObjects`): admins and frontends every account, a mapped
    /// user the public ones and its own private ones; everyone else
    /// nothing.
    ///
    /// Frontends serve every tenant of the installation: the CRM's own
    /// login decides which tenant a CRM user works in, as it decides which
    /// user a frontend names in Mailbox calls.
    pub fn account_reader(&self, c: &Caller) -> Result<Reader> {
        match self.role(c) {
            Some(Role::Admin | Role::Frontend) => Ok(Reader::All),
            Some(Role::User(u)) => Ok(Reader::User(u)),
            None => Err(Error::AccessDenied(format!(
                "uid {} is not allowed to read accounts (not root, not in admin_groups or frontend_groups, not in [access.users])",
                c.uid
            ))),
        }
    }

    /// The CRM user a Mailbox call acts as. Admins and frontends may name
    /// any user; admins may name "" (everything). A mapped user may only
    /// name itself. The name is checked for its length before anything
    /// else, so a long one is refused by its size and never echoed.
    pub fn viewer(&self, c: &Caller, named: &str) -> Result<Viewer> {
        let role = self.require_role(c)?;
        if named.len() > crate::account::MAX_USER {
            crate::account::check_user("user", named)?;
        }
        match role {
            Role::Admin if named.is_empty() => Ok(Viewer::All),
            Role::Admin | Role::Frontend => {
                crate::account::check_user("user", named)?;
                if named.is_empty() {
                    return Err(Error::invalid(
                        "user",
                        "empty; a frontend acts for a named CRM user",
                    ));
                }
                Ok(Viewer::User(named.to_string()))
            }
            Role::User(me) if me == named => Ok(Viewer::User(me)),
            Role::User(me) => Err(Error::AccessDenied(format!(
                "uid {} acts as CRM user {me:?} only, not as {named:?}",
                c.uid
            ))),
        }
    }
}

/// Whose view of the accounts a settings read answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// Admins and frontends: every account.
    All,
    /// A mapped CRM user: public accounts and its own private ones. Any
    /// other private account does not exist for it.
    User(String),
}

impl Reader {
    /// Whether this reader sees an account whose private owner is
    /// `private_owner` ("" = public).
    pub fn sees(&self, private_owner: &str) -> bool {
        match self {
            Reader::All => true,
            Reader::User(u) => private_owner.is_empty() || private_owner == u,
        }
    }
}

/// Whose view a Mailbox call answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// An admin without a named user: every mail.
    All,
    /// A CRM user.
    User(String),
}

impl Viewer {
    /// Invariant 6: a public account's mail is seen by everyone; a private
    /// account's only by its owner — unless the mail is assigned to a
    /// contact, which makes it visible to all users again. `private_owner`
    /// is the account's CURRENT owner, so a change takes effect at once.
    pub fn can_see(&self, private_owner: &str, contact: &str) -> bool {
        match self {
            Viewer::All => true,
            Viewer::User(u) => {
                private_owner.is_empty() || !contact.is_empty() || private_owner == u
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let mut p = Policy::default();
        p.admin_gids.insert(100);
        p.frontend_gids.insert(200);
        p.users.insert(1001, "alice".into());
        p.session_owner = Some(4242);
        p
    }

    fn caller(uid: u32, gids: &[u32]) -> Caller {
        Caller {
            uid,
            gids: gids.to_vec(),
        }
    }

    #[test]
    fn roles_follow_uid_and_groups() {
        let p = policy();
        assert_eq!(p.role(&caller(0, &[])), Some(Role::Admin));
        assert_eq!(p.role(&caller(4242, &[])), Some(Role::Admin));
        assert_eq!(p.role(&caller(5, &[7, 100])), Some(Role::Admin));
        assert_eq!(p.role(&caller(5, &[200])), Some(Role::Frontend));
        assert_eq!(p.role(&caller(1001, &[])), Some(Role::User("alice".into())));
        assert_eq!(p.role(&caller(1002, &[300])), None);
        assert!(matches!(
            p.require_admin(&caller(5, &[200])),
            Err(Error::AccessDenied(_))
        ));
    }

    #[test]
    fn mapped_user_acts_only_as_itself() {
        let p = policy();
        assert_eq!(
            p.viewer(&caller(1001, &[]), "alice"),
            Ok(Viewer::User("alice".into()))
        );
        assert!(matches!(
            p.viewer(&caller(1001, &[]), "bob"),
            Err(Error::AccessDenied(_))
        ));
        assert!(matches!(
            p.viewer(&caller(1001, &[]), ""),
            Err(Error::AccessDenied(_))
        ));
        assert_eq!(
            p.viewer(&caller(5, &[200]), "bob"),
            Ok(Viewer::User("bob".into()))
        );
        assert!(p.viewer(&caller(5, &[200]), "").is_err());
        assert_eq!(p.viewer(&caller(0, &[]), ""), Ok(Viewer::All));
    }

    #[test]
    fn account_readers_follow_the_roles() {
        let p = policy();
        assert_eq!(p.account_reader(&caller(0, &[])), Ok(Reader::All));
        assert_eq!(p.account_reader(&caller(5, &[200])), Ok(Reader::All));
        let alice = p.account_reader(&caller(1001, &[])).unwrap();
        assert_eq!(alice, Reader::User("alice".into()));
        assert!(alice.sees("") && alice.sees("alice") && !alice.sees("bob"));
        assert!(Reader::All.sees("bob"));
        assert!(matches!(
            p.account_reader(&caller(1002, &[300])),
            Err(Error::AccessDenied(_))
        ));
    }

    #[test]
    fn a_long_user_is_refused_by_its_size() {
        let p = policy();
        let long = "\u{1}".repeat(100_000);
        for c in [caller(0, &[]), caller(5, &[200]), caller(1001, &[])] {
            match p.viewer(&c, &long) {
                Err(Error::InvalidArgument { key, message }) => {
                    assert_eq!(key, "user");
                    assert!(message.len() < 200, "{message}");
                }
                other => panic!("{c:?}: {other:?}"),
            }
        }
        // Without a role, the answer is about the caller, not the argument.
        assert!(matches!(
            p.viewer(&caller(1002, &[]), &long),
            Err(Error::AccessDenied(_))
        ));
    }

    #[test]
    fn visibility_matrix() {
        let alice = Viewer::User("alice".into());
        let bob = Viewer::User("bob".into());
        // public, unassigned / assigned
        assert!(alice.can_see("", "") && bob.can_see("", ""));
        assert!(alice.can_see("", "c1") && bob.can_see("", "c1"));
        // private to alice
        assert!(alice.can_see("alice", ""));
        assert!(!bob.can_see("alice", ""));
        assert!(bob.can_see("alice", "c1"));
        assert!(Viewer::All.can_see("alice", ""));
    }
}
