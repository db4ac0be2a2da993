//! Our own POP3 client (DESIGN.md §2 says why not async-pop).
