//! tracing: journald under systemd, else stderr.
