//! Callers -> roles; which user sees which mail. (filled by the foundation issue)
