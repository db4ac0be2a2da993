//! Wiring: store, scheduler, bus, signals, sd_notify, shutdown.
