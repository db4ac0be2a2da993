//! The D-Bus API of DESIGN.md §3.
