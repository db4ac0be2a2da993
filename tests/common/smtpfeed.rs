//! New mail arriving the way real mail does: a thread that hands mails to
//! the run's Postfix over SMTP (its plain loopback port,
//! `POSTFACH_TEST_SMTP_PLAIN_PORT`), which delivers them to Dovecot over
//! LMTP. Each mail has a unique Message-ID; the feeder remembers the ones
//! Postfix accepted (250 after the final dot), which Postfix must deliver.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::unique;

/// The Postfix port without required TLS (scripts/testenv).
fn plain_port() -> u16 {
    std::env::var("POSTFACH_TEST_SMTP_PLAIN_PORT")
        .expect("POSTFACH_TEST_SMTP_PLAIN_PORT: run the tests with scripts/test")
        .parse()
        .expect("a port number")
}

/// One SMTP session to the run's Postfix.
pub struct Smtp {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Smtp {
    pub fn connect() -> Smtp {
        let w = TcpStream::connect(("127.0.0.1", plain_port())).expect("connect to Postfix");
        w.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set a read timeout");
        let r = BufReader::new(w.try_clone().expect("clone the socket"));
        let mut s = Smtp { r, w };
        s.expect(220);
        s.cmd("EHLO feeder.postfach.test", 250);
        s
    }

    /// Reads a (multi-line) reply; panics unless its code is `code`.
    fn expect(&mut self, code: u16) {
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).expect("read an SMTP reply");
            assert!(
                line.starts_with(&code.to_string()),
                "Postfix answered {line:?}, not {code}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }

    fn cmd(&mut self, line: &str, code: u16) {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write an SMTP command");
        self.expect(code);
    }

    /// Sends one mail to `to` with this Message-ID (without brackets).
    pub fn send(&mut self, to: &str, message_id: &str) {
        self.cmd("MAIL FROM:<feeder@postfach.test>", 250);
        self.cmd(&format!("RCPT TO:<{to}>"), 250);
        self.cmd("DATA", 354);
        let body = "Crash-loop filler line.\r\n".repeat(40);
        let mail = format!(
            "From: Feeder <feeder@postfach.test>\r\nTo: <{to}>\r\n\
             Subject: feed {message_id}\r\nMessage-ID: <{message_id}>\r\n\r\n{body}.\r\n"
        );
        self.w.write_all(mail.as_bytes()).expect("write the mail");
        self.expect(250);
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.w.write_all(b"QUIT\r\n");
    }
}

/// A thread that sends a mail to each recipient in turn, one every
/// `every`, until stopped.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<(String, String)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    pub fn start(recipients: Vec<String>, every: Duration) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (s, list) = (stop.clone(), sent.clone());
        let tag = unique("feed");
        let thread = std::thread::spawn(move || {
            let mut smtp = Smtp::connect();
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let to = &recipients[(n as usize) % recipients.len()];
                let id = format!("{n}.{tag}@postfach.test");
                smtp.send(to, &id);
                list.lock()
                    .expect("feeder list")
                    .push((to.clone(), format!("<{id}>")));
                n += 1;
                std::thread::sleep(every);
            }
        });
        Feeder {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// How many mails Postfix accepted so far.
    pub fn count(&self) -> usize {
        self.sent.lock().expect("feeder list").len()
    }

    /// Stops the thread; every (recipient, `<Message-ID>`) Postfix accepted.
    pub fn stop(mut self) -> Vec<(String, String)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the feeder thread panicked");
        }
        self.sent.lock().expect("feeder list").clone()
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
