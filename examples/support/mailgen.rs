//! Mail-like test mails for the byte figures of the benchmarks: what a
//! ~4.4 KiB business mail carries. Headers with a Received chain, a DKIM
//! signature (random base64: incompressible, as in real mail) and random
//! ids; a multipart/alternative body whose text and HTML parts hold the
//! same prose, drawn word by word from the README's words (so the word
//! frequencies are those of real English text, and no two mails share a
//! sentence). Not a corpus: real mail compresses about the same or better
//! (quoted replies repeat text), so the figures are not optimistic.
//! One subject in 100 carries "(dringend)", the 1 % word of the search
//! benchmark (examples/bench_mailbox.rs).

/// A tiny xorshift generator: the same mails on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n).map(|_| format!("{:x}", self.next() % 16)).collect()
    }
    fn base64(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n).map(|_| A[self.below(64)] as char).collect()
    }
}

fn words() -> Vec<&'static str> {
    include_str!("../../README.md")
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty() && w.len() < 20)
        .collect()
}

/// `n` words of prose in lines of at most 72 characters.
fn prose(rng: &mut Rng, vocab: &[&str], chars: usize, eol: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    while out.len() < chars {
        let w = vocab[rng.below(vocab.len())];
        if line + w.len() > 72 {
            out.push_str(eol);
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(w);
        line += w.len();
        if rng.below(12) == 0 {
            out.push('.');
        }
    }
    out
}

/// Mail number `n` of a generator: about `size` bytes.
pub struct MailGen {
    vocab: Vec<&'static str>,
    rng: Rng,
}

impl MailGen {
    pub fn new(seed: u64) -> MailGen {
        MailGen {
            vocab: words(),
            rng: Rng(seed | 1),
        }
    }

    pub fn mail(&mut self, n: usize, date: &str, size: usize) -> Vec<u8> {
        let r = &mut self.rng;
        let k = n % 9973;
        let ip = |r: &mut Rng| {
            format!(
                "{}.{}.{}.{}",
                r.below(223) + 1,
                r.below(256),
                r.below(256),
                r.below(256)
            )
        };
        let mut m = String::new();
        m += &format!("Return-Path: <kunde{k}@example.com>\r\n");
        for hop in 0..3 {
            m += &format!(
                "Received: from mx{hop}.example.com (mx{hop}.example.com [{}])\r\n\tby mail.example.org (Postfix) with ESMTPS id {}\r\n\tfor <vertrieb@example.org>; {date}\r\n",
                ip(r),
                r.hex(10).to_uppercase()
            );
        }
        m += &format!(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;\r\n\ts=sel1; t={}; h=from:to:subject:date:message-id;\r\n\tbh={}=;\r\n\tb={}\r\n",
            1_700_000_000 + n,
            r.base64(43),
            r.base64(342)
        );
        m += &format!(
            "From: Kunde {k} <kunde{k}@example.com>\r\nTo: vertrieb@example.org\r\n\
             Subject: Anfrage {n} zu Angebot {}{}\r\nDate: {date}\r\n\
             Message-ID: <{}.{n}@example.com>\r\nMIME-Version: 1.0\r\n",
            n % 421,
            if n % 100 == 0 { " (dringend)" } else { "" },
            r.hex(16)
        );
        let boundary = format!("----=_Part_{}", r.hex(12));
        m += &format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n");
        // The text part takes ~40 % of what is left, its HTML twin the rest.
        let text_len = size.saturating_sub(m.len() + 600) * 2 / 5;
        let text = prose(r, &self.vocab, text_len, "\r\n");
        m += &format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
        );
        let paras: Vec<String> = text
            .split("\r\n")
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| format!("<p style=\"margin:0 0 12px 0;font-family:Arial,sans-serif;font-size:11pt\">{}</p>", c.join(" ")))
            .collect();
        m += &format!(
            "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n<html><head><meta charset=\"utf-8\"></head><body>\r\n{}\r\n</body></html>\r\n--{boundary}--\r\n",
            paras.join("\r\n")
        );
        m.into_bytes()
    }
}
