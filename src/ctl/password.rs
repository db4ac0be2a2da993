//! Passwords for postfachctl: from a terminal prompt or from stdin, never
//! from argv (visible to every local user in /proc/<pid>/cmdline).

use std::io::BufRead;

use super::CtlError;

/// A password on its way to the daemon; Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Read `count` passwords, one per line, from `input` (`--password-stdin`).
/// Only the line ending is removed: spaces can be part of a password.
pub fn read_lines(mut input: impl BufRead, count: usize) -> Result<Vec<Secret>, CtlError> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let mut line = String::new();
        let n = input
            .read_line(&mut line)
            .map_err(|e| CtlError::local("InvalidArgument", format!("cannot read stdin: {e}")))?;
        if n == 0 {
            return Err(CtlError::local(
                "InvalidArgument",
                format!("stdin ended before password {} of {count}", i + 1),
            ));
        }
        let pw = line.strip_suffix('\n').unwrap_or(&line);
        let pw = pw.strip_suffix('\r').unwrap_or(pw);
        if pw.is_empty() {
            return Err(CtlError::local(
                "InvalidArgument",
                format!("password {} of {count} on stdin is empty", i + 1),
            ));
        }
        out.push(Secret::new(pw.to_string()));
    }
    Ok(out)
}

/// Ask on the terminal; with `confirm`, twice, so that a typo in a password
/// that is going to be saved does not lock the account out. A connection
/// test asks once: a typo shows up as a failed login step.
pub fn prompt(label: &str, confirm: bool) -> Result<Secret, CtlError> {
    let no_tty = |e: std::io::Error| {
        CtlError::local(
            "InvalidArgument",
            format!("cannot ask for the password ({e}); pipe it in with --password-stdin"),
        )
    };
    let first = rpassword::prompt_password(format!("{label}: ")).map_err(no_tty)?;
    if first.is_empty() {
        return Err(CtlError::local("InvalidArgument", "the password is empty"));
    }
    if confirm {
        let again = rpassword::prompt_password(format!("{label} (again): ")).map_err(no_tty)?;
        if first != again {
            return Err(CtlError::local(
                "InvalidArgument",
                "the passwords do not match",
            ));
        }
    }
    Ok(Secret::new(first))
}

/// One password per label from stdin or, one after another, from prompts
/// (confirmed when `confirm`).
pub fn get(from_stdin: bool, labels: &[&str], confirm: bool) -> Result<Vec<Secret>, CtlError> {
    if from_stdin {
        read_lines(std::io::stdin().lock(), labels.len())
    } else {
        labels.iter().map(|l| prompt(l, confirm)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_spaces_and_drop_line_endings() {
        let v = read_lines(&b" a b \r\nsecond\n"[..], 2).unwrap();
        assert_eq!(v[0].expose(), " a b ");
        assert_eq!(v[1].expose(), "second");
        // No trailing newline on the last line is fine.
        assert_eq!(read_lines(&b"x"[..], 1).unwrap()[0].expose(), "x");
    }

    #[test]
    fn short_or_empty_input_is_an_error() {
        assert!(read_lines(&b"one\n"[..], 2).is_err());
        assert!(read_lines(&b"\n"[..], 1).is_err());
        assert!(read_lines(&b""[..], 1).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
