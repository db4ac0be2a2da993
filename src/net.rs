//! TCP, TLS, STARTTLS upgrade, verification, pins, timeouts.
