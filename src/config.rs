//! Daemon config file: raw TOML -> validated Config.
