//! Connection test, step by step (DESIGN.md §1 [Verbindungsdaten prüfen]).

/// One step of a connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was tried: `resolve`, `connect`, `tls`, `greeting`, `login`, …
    pub name: String,
    pub ok: bool,
    /// What happened, in words an admin understands.
    pub message: String,
    pub millis: u32,
}
