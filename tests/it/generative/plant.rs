//! Random MIME messages with the sender's identity planted at random
//! places: headers of every kind, parameters (plain, quoted, RFC 2231
//! sections and percent-encoding, encoded words), text in every transfer
//! encoding and charset (flowed too), HTML in character-reference and
//! URL-encoded forms, iCalendar data folded across the address, embedded
//! messages, boundaries — and, where the relay must leave it, attachment
//! content. The display name is planted only beside the address (where the
//! relay replaces it); anywhere else it would be someone's text.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;

pub const ADDRESS: &str = "linnea.vasquez.ortiz88@sender-mail.example";
pub const NAME: &str = "Linnea Vasquez";
pub const IP: &str = "203.0.113.77";
pub const HOST: &str = "linneas-laptop.sender-mail.example";
/// A provider fingerprint (Outlook's mailbox server in its boundaries).
pub const FINGERPRINT: &str = "AM0PR03MB6324";

/// Strings that must not reach a reader, whatever their case.
pub const SECRETS: &[&str] = &[ADDRESS, NAME, IP, HOST, FINGERPRINT];

const WORDS: &[&str] = &[
    "tea",
    "morning",
    "the",
    "river",
    "walk",
    "tomorrow",
    "and",
    "maybe",
    "café",
    "Grüße",
    "noon",
    "письмо",
    "見て",
    "plan",
    "ticket",
    "½",
    "okay",
    "see",
    "you",
    "there",
];

pub struct Planter<'r> {
    pub rng: &'r mut StdRng,
    entities: usize,
    boundaries: usize,
}

/// One generated message: its bytes, and how many entities it has.
pub struct Generated {
    pub raw: Vec<u8>,
}

impl<'r> Planter<'r> {
    pub fn new(rng: &'r mut StdRng) -> Self {
        Self {
            rng,
            entities: 0,
            boundaries: 0,
        }
    }

    pub fn message(mut self) -> Generated {
        let mut raw = Vec::new();
        self.top_fields(&mut raw);
        let (header, body) = self.entity(0);
        raw.extend_from_slice(&header);
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&body);
        Generated { raw }
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.random_range(0..100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        items.choose(self.rng).expect("a non-empty list")
    }

    /// The address as a client could write it: case, or percent-encoded.
    fn address_form(&mut self) -> String {
        match self.rng.random_range(0..4) {
            0 => ADDRESS.to_uppercase(),
            1 => {
                let mut chars: Vec<char> = ADDRESS.chars().collect();
                let at = self.rng.random_range(0..chars.len());
                chars[at] = chars[at].to_ascii_uppercase();
                chars.into_iter().collect()
            }
            _ => ADDRESS.to_owned(),
        }
    }

    /// A secret, in a form a reader of plain text would see.
    fn text_secret(&mut self) -> String {
        match self.rng.random_range(0..7) {
            0 => format!("{NAME} <{}> wrote:", self.address_form()),
            1 => format!("Vasquez, Linnea <{}>", self.address_form()),
            2 => format!("mailto:{}", ADDRESS.replace('@', "%40")),
            3 => format!("from [{IP}]"),
            4 => format!("via {HOST}"),
            5 => format!("On Tue, {NAME} <\r\n{}> wrote:", self.address_form()),
            _ => self.address_form(),
        }
    }

    fn words(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| *self.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Lines of text with secrets at random places.
    fn text(&mut self) -> String {
        let mut lines = Vec::new();
        for _ in 0..self.rng.random_range(1..8) {
            let words = self.rng.random_range(0..12);
            let mut line = self.words(words);
            if self.chance(35) {
                let secret = self.text_secret();
                line = format!("{line} {secret} {}", self.words(2));
            }
            if self.chance(10) {
                line = format!("> {line}");
            }
            lines.push(line);
        }
        lines.join("\r\n") + "\r\n"
    }

    fn html(&mut self) -> String {
        let mut html = String::from("<html><head><meta charset=\"utf-8\"></head><body>\r\n");
        for _ in 0..self.rng.random_range(1..6) {
            let words = self.words(5);
            match self.rng.random_range(0..6) {
                0 => html.push_str(&format!(
                    "<div>On Tue, {NAME} &lt;<a href=\"mailto:{ADDRESS}\">{ADDRESS}</a>&gt; wrote:<br></div>\r\n"
                )),
                1 => html.push_str(&format!(
                    "<p>{words} {}</p>\r\n",
                    ADDRESS.replace('@', "&#64;").replace('.', "&period;")
                )),
                2 => html.push_str(&format!(
                    "<p><a href=\"mailto:{}\" title=\"{ADDRESS}\">{words}</a></p>\r\n",
                    ADDRESS.replace('@', "%40")
                )),
                3 => html.push_str(&format!(
                    "<p>{words} <img src=\"http://{HOST}/p.gif\" alt=\"{IP}\"></p>\r\n"
                )),
                4 => html.push_str(&format!(
                    "<p>{words}<br>\r\n<b>From:</b> {NAME} &lt;{ADDRESS}&gt;<br></p>\r\n"
                )),
                _ => html.push_str(&format!("<p>{words}</p>\r\n")),
            }
        }
        html.push_str("</body></html>\r\n");
        html
    }

    fn calendar(&mut self) -> String {
        let organizer = format!("ORGANIZER;CN={NAME}:mailto:{}", self.address_form());
        let summary = format!("SUMMARY:{} with {}", self.words(3), ADDRESS);
        let description = format!(
            "DESCRIPTION:Invitation from {NAME} <{ADDRESS}>\\nJoin: https://cal.example/?email={}",
            ADDRESS.replace('@', "%40")
        );
        let mut lines = vec![
            "BEGIN:VCALENDAR".to_owned(),
            "PRODID:-//Google Inc//Google Calendar 70.9054//EN".to_owned(),
            "VERSION:2.0".to_owned(),
            "METHOD:REQUEST".to_owned(),
            "BEGIN:VEVENT".to_owned(),
            "DTSTART:20261203T100000Z".to_owned(),
            "DTEND:20261203T110000Z".to_owned(),
            organizer,
            format!("ATTENDEE;CN=alias;PARTSTAT=NEEDS-ACTION:mailto:aaaa@relay.test"),
            format!("UID:{}@{HOST}", self.rng.random_range(1000..9999)),
            format!("X-GOOGLE-CONFERENCE:https://meet.example/{IP}"),
            summary,
            description,
            "END:VEVENT".to_owned(),
            "END:VCALENDAR".to_owned(),
        ];
        for line in &mut lines {
            *line = fold_calendar(line, self.rng.random_range(20..75));
        }
        lines.join("\r\n") + "\r\n"
    }

    fn top_fields(&mut self, out: &mut Vec<u8>) {
        let mut fields = vec![
            format!("From: \"{NAME}\" <{ADDRESS}>"),
            "To: <aaaaaaaaaaaaaaaaaaaa@relay.test>".to_owned(),
            format!("Received: from {HOST} ([{IP}]) by smtp.sender-mail.example"),
            format!(
                "Message-ID: <{}.{FINGERPRINT}@{HOST}>",
                self.rng.random::<u32>()
            ),
            "Date: Tue, 3 Nov 2026 10:00:00 +0100".to_owned(),
        ];
        let subject = match self.rng.random_range(0..4) {
            0 => format!("Subject: Re: note from {ADDRESS}"),
            1 => format!(
                "Subject: {}",
                encoded_words(&format!("Grüße von {ADDRESS}"), self.rng)
            ),
            2 => format!("Subject: lunch at {IP}?"),
            _ => format!("Subject: {}", self.words(4)),
        };
        fields.push(subject);
        let optional = [
            format!("X-Originating-IP: [{IP}]"),
            format!("X-Mailer: Microsoft Outlook 16.0 {FINGERPRINT}"),
            format!("Reply-To: {NAME} <{ADDRESS}>"),
            format!("Cc: {NAME} <{ADDRESS}>"),
            format!("User-Agent: Mozilla Thunderbird on {HOST}"),
            format!("Comments: {}", encoded_words(NAME, self.rng)),
            format!("Thread-Index: {FINGERPRINT}"),
            "MIME-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.200.121\\))".to_owned(),
            format!("Importance: high; from {HOST}"),
        ];
        for field in optional {
            if self.chance(40) {
                fields.push(field);
            }
        }
        for field in fields {
            out.extend_from_slice(fold_header(&field, self.rng.random_range(30..90)).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Extra fields and parameters a part header may carry.
    fn noise_fields(&mut self) -> String {
        let mut out = String::new();
        if self.chance(25) {
            out.push_str(&format!(
                "Content-Description: written by {NAME} <{ADDRESS}>\r\n"
            ));
        }
        if self.chance(20) {
            out.push_str(&format!(
                "X-Originating-IP: {IP}\r\nX-Mailer: {FINGERPRINT}\r\n"
            ));
        }
        if self.chance(15) {
            out.push_str(&format!("Content-Location: http://{HOST}/part\r\n"));
        }
        out
    }

    fn noise_parameters(&mut self) -> String {
        let mut out = String::new();
        if self.chance(20) {
            out.push_str(&format!(";\r\n x-client=\"{FINGERPRINT}\""));
        }
        if self.chance(15) {
            out.push_str(&format!(
                ";\r\n x-origin*=utf-8''{}",
                ADDRESS.replace('@', "%40")
            ));
        }
        out
    }

    fn file_name(&mut self, extension: &str) -> String {
        let base = match self.rng.random_range(0..4) {
            0 => format!("{ADDRESS}.{extension}"),
            1 => format!("notes from {IP}.{extension}"),
            2 => format!("{}.{extension}", self.words(2)),
            _ => format!("plan.{extension}"),
        };
        match self.rng.random_range(0..4) {
            0 => format!("; filename*=utf-8''{}", percent(&base)),
            1 => format!("; filename=\"{}\"", encoded_words(&base, self.rng)),
            2 => {
                // RFC 2231 sections, the cut anywhere (inside the address too).
                let cut = self.rng.random_range(0..=base.len());
                let cut = (0..=cut)
                    .rev()
                    .find(|&i| base.is_char_boundary(i))
                    .unwrap_or(0);
                format!(
                    ";\r\n filename*0*=utf-8''{};\r\n filename*1*={}",
                    percent(&base[..cut]),
                    percent(&base[cut..])
                )
            }
            _ => format!("; filename=\"{base}\""),
        }
    }

    fn boundary(&mut self) -> String {
        self.boundaries += 1;
        match self.rng.random_range(0..3) {
            0 => format!("_000_{FINGERPRINT}{}EURPRD03PROD_", self.boundaries),
            1 => format!("Apple-Mail={HOST}-{}", self.boundaries),
            _ => format!(
                "000000000000{:x}{}",
                self.rng.random::<u32>(),
                self.boundaries
            ),
        }
    }

    /// One entity: its header lines (without the empty line) and body.
    fn entity(&mut self, depth: usize) -> (Vec<u8>, Vec<u8>) {
        self.entities += 1;
        let room = depth < 4 && self.entities < 18;
        let kind = if room {
            self.rng.random_range(0..14)
        } else {
            self.rng.random_range(0..7)
        };
        match kind {
            0 | 1 => self.text_part(),
            2 => self.html_part(),
            3 => self.calendar_part(),
            4 => self.attachment_part(),
            5 => self.key_part(),
            6 => self.text_part(),
            7 => self.embedded_part(depth),
            8 => self.signed_part(depth),
            _ => self.multipart(depth),
        }
    }

    fn text_part(&mut self) -> (Vec<u8>, Vec<u8>) {
        let text = self.text();
        let flowed = self.chance(20);
        let text = if flowed {
            // Soft breaks anywhere, the address's own characters included.
            // (inside a line: a soft break is a space before a line end).
            let cut = self.rng.random_range(1..text.len().max(2));
            let inside_a_line = |i: usize| {
                text.is_char_boundary(i)
                    && !text[..i].ends_with('\n')
                    && !text[i..].starts_with('\r')
                    && i > 0
            };
            match (1..=cut).rev().find(|&i| inside_a_line(i)) {
                Some(cut) => {
                    // The next line repeats the quote marks, or a reader
                    // ends the paragraph there (RFC 3676 4.5).
                    let line_start = text[..cut].rfind('\n').map_or(0, |i| i + 1);
                    let quotes = if text[line_start..].starts_with("> ") {
                        "> "
                    } else {
                        ""
                    };
                    format!("{} \r\n{quotes}{}", &text[..cut], &text[cut..])
                }
                None => text,
            }
        } else {
            text
        };
        let attached = self.chance(10);
        let charset = *self.pick(&[
            "utf-8",
            "iso-8859-1",
            "windows-1252",
            "utf-16le",
            "us-ascii",
        ]);
        let bytes = encode_charset(&text, charset);
        let (encoding, body) = self.transfer(&bytes, charset == "utf-16le" || flowed);
        let mut header = format!(
            "Content-Type: text/plain; charset={charset}{}{}",
            if flowed {
                "; format=flowed; delsp=yes"
            } else {
                ""
            },
            self.noise_parameters()
        );
        header.push_str(&format!("\r\nContent-Transfer-Encoding: {encoding}\r\n"));
        if attached {
            let name = self.file_name("txt");
            header.push_str(&format!("Content-Disposition: attachment{name}\r\n"));
        }
        header.push_str(&self.noise_fields());
        (header.into_bytes(), body)
    }

    fn html_part(&mut self) -> (Vec<u8>, Vec<u8>) {
        let html = self.html();
        let (encoding, body) = self.transfer(html.as_bytes(), false);
        let header = format!(
            "Content-Type: text/html; charset=utf-8{}\r\nContent-Transfer-Encoding: {encoding}\r\n{}",
            self.noise_parameters(),
            self.noise_fields()
        );
        (header.into_bytes(), body)
    }

    fn calendar_part(&mut self) -> (Vec<u8>, Vec<u8>) {
        let calendar = self.calendar();
        let (encoding, body) = self.transfer(calendar.as_bytes(), false);
        let header = if self.chance(50) {
            format!("Content-Type: text/calendar; charset=UTF-8; method=REQUEST\r\nContent-Transfer-Encoding: {encoding}\r\n")
        } else {
            format!(
                "Content-Type: application/ics; name=\"invite.ics\"\r\nContent-Disposition: attachment; filename=\"invite.ics\"\r\nContent-Transfer-Encoding: {encoding}\r\n"
            )
        };
        (header.into_bytes(), body)
    }

    /// An attachment whose content may name the sender: forwarded as the
    /// sender attached it (only its name and header are the relay's).
    fn attachment_part(&mut self) -> (Vec<u8>, Vec<u8>) {
        let mut content: Vec<u8> = (0..self.rng.random_range(0..600))
            .map(|_| self.rng.random())
            .collect();
        if self.chance(50) {
            content.extend_from_slice(format!("%PDF author {ADDRESS} {IP}").as_bytes());
        }
        let body = base64_lines(&content);
        let name = self.file_name("pdf");
        let media = *self.pick(&[
            "application/pdf",
            "image/png",
            "application/x-thing",
            "x-weird/type",
        ]);
        let header = format!(
            "Content-Type: {media}{}{}\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment{name};\r\n creation-date=\"Tue, 03 Nov 2026 10:00:00 +0200\"; size={}\r\n{}",
            name.replacen("filename", "name", 1),
            self.noise_parameters(),
            content.len(),
            self.noise_fields()
        );
        (header.into_bytes(), body)
    }

    /// The sender's own public key, as Thunderbird and Proton attach it.
    fn key_part(&mut self) -> (Vec<u8>, Vec<u8>) {
        let body = format!(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\r\nComment: {NAME} <{ADDRESS}>\r\n\r\nmDMEZ{FINGERPRINT}\r\n-----END PGP PUBLIC KEY BLOCK-----\r\n"
        );
        let header = format!(
            "Content-Type: application/pgp-keys; name=\"OpenPGP_{FINGERPRINT}.asc\"\r\nContent-Disposition: attachment; filename=\"OpenPGP_{FINGERPRINT}.asc\"\r\n"
        );
        (header.into_bytes(), body.into_bytes())
    }

    fn embedded_part(&mut self, depth: usize) -> (Vec<u8>, Vec<u8>) {
        let mut inner = Vec::new();
        let fields = [
            format!("From: {NAME} <{}>", self.address_form()),
            format!("To: carol@third.example, {NAME} <{ADDRESS}>"),
            format!("Cc: \"{NAME}\" <{ADDRESS}>"),
            format!("Received: from {HOST} ([{IP}])"),
            format!("X-Originating-IP: {IP}"),
            format!("Subject: fwd from {ADDRESS}"),
            format!("Message-ID: <{FINGERPRINT}@{HOST}>"),
            "Date: Mon, 2 Nov 2026 09:00:00 -0800".to_owned(),
        ];
        for field in fields {
            if self.chance(70) {
                inner.extend_from_slice(field.as_bytes());
                inner.extend_from_slice(b"\r\n");
            }
        }
        let (header, body) = self.entity(depth + 1);
        inner.extend_from_slice(&header);
        inner.extend_from_slice(b"\r\n");
        inner.extend_from_slice(&body);
        let header = format!(
            "Content-Type: message/rfc822{}\r\n{}",
            self.noise_parameters(),
            self.noise_fields()
        );
        (header.into_bytes(), inner)
    }

    fn signed_part(&mut self, depth: usize) -> (Vec<u8>, Vec<u8>) {
        let boundary = self.boundary();
        let (header, body) = self.entity(depth + 1);
        let mut out = format!("--{boundary}\r\n").into_bytes();
        out.extend_from_slice(&header);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\nComment: {ADDRESS}\r\n\r\niQ{FINGERPRINT}\r\n-----END PGP SIGNATURE-----\r\n--{boundary}--\r\n"
            )
            .as_bytes(),
        );
        let header = format!(
            "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol=\"application/pgp-signature\"; boundary=\"{boundary}\"\r\n"
        );
        (header.into_bytes(), out)
    }

    fn multipart(&mut self, depth: usize) -> (Vec<u8>, Vec<u8>) {
        let subtype = *self.pick(&["mixed", "alternative", "related", "x-unknown"]);
        let boundary = self.boundary();
        let mut out = Vec::new();
        if self.chance(30) {
            out.extend_from_slice(
                format!("This is a multi-part message from {HOST}.\r\n").as_bytes(),
            );
        }
        for _ in 0..self.rng.random_range(1..4) {
            let (header, body) = self.entity(depth + 1);
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            out.extend_from_slice(&header);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        if self.chance(30) {
            out.extend_from_slice(format!("epilogue by {NAME} <{ADDRESS}>\r\n").as_bytes());
        }
        let header = format!(
            "Content-Type: multipart/{subtype};\r\n boundary=\"{boundary}\"{}\r\n{}",
            self.noise_parameters(),
            self.noise_fields()
        );
        (header.into_bytes(), out)
    }

    /// Bytes in a random transfer encoding; `binary_safe` forces one that
    /// carries any byte (UTF-16's NULs, flowed text's trailing spaces).
    fn transfer(&mut self, bytes: &[u8], binary_safe: bool) -> (&'static str, Vec<u8>) {
        let ascii = bytes.iter().all(|&b| (1..128).contains(&b));
        let choices: &[&str] = if binary_safe {
            &["base64", "quoted-printable"]
        } else if ascii {
            &["7bit", "8bit", "base64", "quoted-printable"]
        } else {
            &["8bit", "base64", "quoted-printable"]
        };
        match *self.pick(choices) {
            "base64" => ("base64", base64_lines(bytes)),
            "quoted-printable" => ("quoted-printable", quoted_printable(bytes)),
            "7bit" => ("7bit", bytes.to_vec()),
            _ => ("8bit", bytes.to_vec()),
        }
    }
}

/// `text` in `charset` (characters it cannot hold become `?`).
fn encode_charset(text: &str, charset: &str) -> Vec<u8> {
    match charset {
        "utf-16le" => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "iso-8859-1" | "windows-1252" => text
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c))
                    .ok()
                    .filter(|b| !(0x80..0xa0).contains(b))
                    .unwrap_or(b'?')
            })
            .collect(),
        "us-ascii" => text
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        _ => text.as_bytes().to_vec(),
    }
}

fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let encoded = data_encoding::BASE64.encode(bytes);
    let mut out = Vec::new();
    for line in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Quoted-printable with soft breaks at 60 characters (they fall inside
/// the planted secrets as often as not).
fn quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut width = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
            width = 0;
            i += 2;
            continue;
        }
        let byte = bytes[i];
        let token = if (33..=126).contains(&byte) && byte != b'='
            || byte == b' ' && !bytes[i + 1..].starts_with(b"\r\n") && i + 1 < bytes.len()
        {
            vec![byte]
        } else {
            format!("={byte:02X}").into_bytes()
        };
        if width + token.len() > 60 {
            out.extend_from_slice(b"=\r\n");
            width = 0;
        }
        width += token.len();
        out.extend_from_slice(&token);
        i += 1;
    }
    out
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// RFC 2047 encoded words, the text split at a random point between two.
fn encoded_words(text: &str, rng: &mut StdRng) -> String {
    let bytes = text.as_bytes();
    let cut = rng.random_range(0..=bytes.len());
    let cut = (0..=cut)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let base64 = rng.random_bool(0.5);
    let word = |part: &[u8]| {
        if base64 {
            format!("=?UTF-8?B?{}?=", data_encoding::BASE64.encode(part))
        } else {
            let q: String = part
                .iter()
                .map(|&b| {
                    if b.is_ascii_alphanumeric() {
                        char::from(b).to_string()
                    } else {
                        format!("={b:02X}")
                    }
                })
                .collect();
            format!("=?UTF-8?Q?{q}?=")
        }
    };
    match (&bytes[..cut], &bytes[cut..]) {
        (head, tail) if head.is_empty() || tail.is_empty() => word(bytes),
        (head, tail) => format!("{}\r\n {}", word(head), word(tail)),
    }
}

/// A header line folded at the first space after `width` characters (a
/// fold elsewhere would put a space into what the reader sees).
fn fold_header(line: &str, width: usize) -> String {
    let mut out = String::new();
    let mut current = 0;
    for c in line.chars() {
        if c == ' ' && current >= width && !out.ends_with('\n') {
            out.push_str("\r\n");
            current = 0;
        }
        out.push(c);
        current = if c == '\n' { 0 } else { current + 1 };
    }
    out
}

/// An iCalendar line folded every `width` octets wherever that falls
/// (RFC 5545 unfolding removes the CRLF and the space: words and
/// addresses are split), never inside a UTF-8 character.
fn fold_calendar(line: &str, width: usize) -> String {
    let mut out = String::new();
    let mut current = 0;
    for c in line.chars() {
        if current + c.len_utf8() > width {
            out.push_str("\r\n ");
            current = 1;
        }
        out.push(c);
        current += c.len_utf8();
    }
    out
}
