//! Connection test, step by step.
