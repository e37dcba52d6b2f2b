use super::*;
use crate::rewrite::scrub::Identity;

const ALIAS: &str = "k7q2m9t3w8r5n6p2a4xz@relay.example";

fn linnea() -> Scrubber {
    Scrubber::new(Identity {
        addresses: vec!["linnea.vasquez.ortiz88@gmail.com".into()],
        alias_address: ALIAS.into(),
        names: vec!["Linnea Vasquez Ortiz".into()],
        name_replacement: "Quiet Heron".into(),
        ips: vec!["198.51.100.23".parse().expect("an IP address")],
        hosts: vec!["linneas-pixel.example".into()],
    })
}

/// A UID mapping that shows it ran: the token names the UID's length.
fn mapped_uid(uid: &str) -> Option<String> {
    Some(format!("uid{}@relay.example", uid.len()))
}

fn scrub_with(input: &str, uid: &dyn Fn(&str) -> Option<String>) -> Result<String, CalendarError> {
    let scrubber = linnea();
    scrub(
        input,
        &CalendarContext {
            scrubber: &scrubber,
            uid,
        },
    )
}

/// The output unfolded (folding is shown apart), after checking that every
/// physical line is at most 75 octets and ends in CRLF.
fn scrubbed(input: &str) -> String {
    let out = match scrub_with(input, &mapped_uid) {
        Ok(out) => out,
        Err(e) => panic!("scrub failed: {e}"),
    };
    assert!(out.ends_with("\r\n"), "{out:?}");
    for physical in out.split("\r\n") {
        assert!(
            physical.len() <= 75,
            "{} octets: {physical}",
            physical.len()
        );
        assert!(!physical.contains(['\r', '\n']), "{physical:?}");
    }
    unfold(&out)
}

fn unfold(folded: &str) -> String {
    folded.replace("\r\n ", "")
}

/// The lines of one VEVENT wrapped in a calendar; output likewise.
fn event(lines: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n{lines}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn expected_event(lines: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n{lines}END:VEVENT\r\nEND:VCALENDAR\r\n")
}

#[test]
fn the_sender_as_organizer_becomes_the_alias_even_folded_mid_address() {
    let input =
        event("ORGANIZER;CN=Linnea Vasquez Ortiz:mailto:linnea.vasquez.ortiz88@gmai\r\n l.com\r\n");
    assert_eq!(
        scrubbed(&input),
        expected_event(&format!("ORGANIZER;CN=Quiet Heron:mailto:{ALIAS}\r\n"))
    );
}

#[test]
fn the_sender_is_found_in_any_case_and_percent_encoded() {
    let input = event(
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=linnea.vasquez.ortiz88@gmail.com:MAILTO:Linnea.Vasquez.Ortiz88%40GMAIL.com\r\n",
    );
    assert_eq!(
        scrubbed(&input),
        expected_event(&format!(
            "ATTENDEE;PARTSTAT=ACCEPTED;CN=Quiet Heron:mailto:{ALIAS}\r\n"
        ))
    );
}

#[test]
fn other_attendees_keep_their_address_and_a_scrubbed_name() {
    let input = event(concat!(
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=\r\n",
        " TRUE;CN=\"Friend of Linnea Vasquez Ortiz <linnea.vasquez.ortiz88@gmail.com>\";X-NUM-GUESTS=0:mailto:friend@example.org\r\n",
    ));
    assert_eq!(
        scrubbed(&input),
        expected_event(&format!(
            "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Friend of Quiet Heron <{ALIAS}>:mailto:friend@example.org\r\n"
        ))
    );
}

#[test]
fn identity_parameters_and_other_uri_schemes_are_dropped() {
    let input = event(concat!(
        "ORGANIZER;SENT-BY=\"mailto:assistant@example.org\";DIR=\"ldap://dir.example/cn=x\";EMAIL=linnea.vasquez.ortiz88@gmail.com;CN=Linnea Vasquez Ortiz:mailto:linnea.vasquez.ortiz88@gmail.com\r\n",
        "ATTENDEE;DELEGATED-FROM=\"mailto:a@example.org\";DELEGATED-TO=\"mailto:b@example.org\";MEMBER=\"mailto:team@example.org\";X-ALT-CN=z:mailto:c@example.org\r\n",
        "ATTENDEE;CN=Room 4:urn:uuid:0f1e2d3c\r\n",
        "ATTENDEE;CN=Phone:tel:+4712345678\r\n",
    ));
    assert_eq!(
        scrubbed(&input),
        expected_event(&format!(
            "ORGANIZER;CN=Quiet Heron:mailto:{ALIAS}\r\nATTENDEE:mailto:c@example.org\r\n"
        ))
    );
}

#[test]
fn text_values_are_unescaped_scrubbed_and_escaped_again() {
    let input = event(concat!(
        "SUMMARY:Lunch\\, then a walk\\; bring shoes\r\n",
        "DESCRIPTION:Hi!\\n\\nLinnea Vasquez Ortiz\\nlinnea.vasquez.ortiz88@gmail.com\\n",
        "Reply: https://calendar.google.com/calendar/event?action=RESPOND&email=linnea.vasquez.ortiz88%40gmail.com\\n",
        "From 198.51.100.23 \\\\ linneas-pixel.example\r\n",
        "LOCATION;LANGUAGE=nb-NO;ALTREP=\"https://maps.example/x\":Torget 1\\, Oslo\r\n",
        "COMMENT:Linnea Vasquez Ortiz is a name that stays alone\r\n",
    ));
    assert_eq!(
        scrubbed(&input),
        expected_event(&format!(
            "{}{}{}{}{}",
            "SUMMARY:Lunch\\, then a walk\\; bring shoes\r\n",
            "DESCRIPTION:Hi!\\n\\nQuiet Heron\\nk7q2m9t3w8r5n6p2a4xz@relay.example\\nReply: https://calendar.google.com/calendar/event?action=RESPOND&email=k7q2m9t3w8r5n6p2a4xz%40relay.example\\nFrom [hidden] \\\\ [hidden]\r\n",
            "LOCATION;LANGUAGE=nb-NO:Torget 1\\, Oslo\r\n",
            "COMMENT:Linnea Vasquez Ortiz is a name that stays alone\r\n",
            "",
        ))
    );
}

#[test]
fn categories_are_scrubbed_item_by_item() {
    let input = event("CATEGORIES:Work\\,ish,linnea.vasquez.ortiz88@gmail.com,Fun\r\n");
    assert_eq!(
        scrubbed(&input),
        expected_event(&format!("CATEGORIES:Work\\,ish,{ALIAS},Fun\r\n"))
    );
}

#[test]
fn uid_goes_through_the_mapping_or_is_dropped() {
    let input = event("UID:7sull595rv5apd9mr77a6g0s0h@google.com\r\n");
    assert_eq!(
        scrubbed(&input),
        expected_event("UID:uid37@relay.example\r\n")
    );
    let dropped = scrub_with(&input, &|_| None);
    assert_eq!(dropped, Ok(expected_event("")));
}

#[test]
fn x_properties_unknown_properties_and_links_are_dropped() {
    let input = format!(
        "{}{}",
        "BEGIN:VCALENDAR\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nVERSION:2.0\r\nCALSCALE:GREGORIAN\r\nMETHOD:REQUEST\r\nX-WR-CALNAME:linnea.vasquez.ortiz88@gmail.com\r\nBEGIN:VEVENT\r\n",
        concat!(
            "X-GOOGLE-CONFERENCE:https://meet.google.com/abc-defg-hij\r\n",
            "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\r\n",
            "X-ALT-DESC;FMTTYPE=text/html:<html><body>Linnea</body></html>\r\n",
            "X-MS-OLK-CONFTYPE:0\r\n",
            "URL:https://calendar.google.com/calendar/event?eid=abc\r\n",
            "CONTACT:Linnea\\, +47 900 00 000\r\n",
            "ATTACH;FMTTYPE=application/pdf:https://drive.example/file\r\n",
            "ATTACH;ENCODING=BASE64;VALUE=BINARY;X-FILENAME=cv.pdf:JVBERi0=\r\n",
            "RESOURCES:Projector\r\n",
            "CONFERENCE;VALUE=URI:https://meet.example/x\r\n",
            "IMAGE;VALUE=URI:https://tracker.example/pixel.png\r\n",
            "SEQUENCE:0\r\n",
            "END:VEVENT\r\nEND:VCALENDAR\r\n",
        )
    );
    assert_eq!(
        scrubbed(&input),
        format!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\nVERSION:2.0\r\nCALSCALE:GREGORIAN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSEQUENCE:0\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    );
}

#[test]
fn components_are_kept_only_where_rfc_5545_puts_them() {
    let input = concat!(
        "BEGIN:VCALENDAR\r\n",
        "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n",
        "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nTZNAME:CET\r\nEND:STANDARD\r\n",
        "END:VTIMEZONE\r\n",
        "BEGIN:VEVENT\r\nDTSTART;TZID=W. Europe Standard Time:20261114T100000\r\n",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;RELATED=START:-PT15M\r\nDESCRIPTION:Reminder\r\nEND:VALARM\r\n",
        "BEGIN:X-APPLE-STRUCTURED-LOCATION\r\nBEGIN:VEVENT\r\nSUMMARY:nested inside a dropped one\r\nEND:VEVENT\r\nEND:X-APPLE-STRUCTURED-LOCATION\r\n",
        "BEGIN:VTIMEZONE\r\nTZID:misplaced\r\nEND:VTIMEZONE\r\n",
        "END:VEVENT\r\n",
        "BEGIN:VAVAILABILITY\r\nORGANIZER:mailto:linnea.vasquez.ortiz88@gmail.com\r\nEND:VAVAILABILITY\r\n",
        "BEGIN:VALARM\r\nACTION:AUDIO\r\nEND:VALARM\r\n",
        "END:VCALENDAR\r\n",
    );
    assert_eq!(
        scrubbed(input),
        format!(
            "{}{}{}{}{}{}",
            format_args!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\n"),
            "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n",
            "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nTZNAME:CET\r\nEND:STANDARD\r\n",
            "END:VTIMEZONE\r\n",
            "BEGIN:VEVENT\r\nDTSTART;TZID=W. Europe Standard Time:20261114T100000\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;RELATED=START:-PT15M\r\nDESCRIPTION:Reminder\r\nEND:VALARM\r\nEND:VEVENT\r\n",
            "END:VCALENDAR\r\n",
        )
    );
}

#[test]
fn structured_values_outside_their_syntax_are_dropped() {
    let input = event(concat!(
        "DTSTART:20261114T100000Z\r\n",
        "DTEND:tomorrow, ask linnea.vasquez.ortiz88@gmail.com\r\n",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270101T000000Z\r\n",
        "STATUS:CONFIRMED <b>\r\n",
        "SEQUENCE:2\r\n",
        "PRIORITY:high\r\n",
        "GEO:59.91;10.75\r\n",
        "GEO:198.51.100.23\r\n",
        "TRANSP;X-P=1;VALUE=TEXT:OPAQUE\r\n",
        "CLASS;VALUE=\"TE XT\":PUBLIC\r\n",
        "DTSTAMP:\r\n",
    ));
    assert_eq!(
        scrubbed(&input),
        expected_event(concat!(
            "DTSTART:20261114T100000Z\r\n",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270101T000000Z\r\n",
            "SEQUENCE:2\r\n",
            "GEO:59.91;10.75\r\n",
            "TRANSP;VALUE=TEXT:OPAQUE\r\n",
            "CLASS:PUBLIC\r\n",
        ))
    );
}

#[test]
fn parameters_keep_first_occurrence_and_are_quoted_when_needed() {
    let input = event(
        "ATTENDEE;CN=\"Doe, Jane ^'JD^'\";CN=Second;role=OPT-PARTICIPANT:mailto:jane@example.org\r\n",
    );
    assert_eq!(
        scrubbed(&input),
        expected_event(
            "ATTENDEE;CN=\"Doe, Jane ^'JD^'\";ROLE=OPT-PARTICIPANT:mailto:jane@example.org\r\n"
        )
    );
}

#[test]
fn the_sender_without_a_name_replacement_loses_the_cn() {
    let scrubber = Scrubber::new(Identity {
        addresses: vec!["linnea.vasquez.ortiz88@gmail.com".into()],
        alias_address: ALIAS.into(),
        ..Identity::default()
    });
    let cx = CalendarContext {
        scrubber: &scrubber,
        uid: &mapped_uid,
    };
    let input = event("ORGANIZER;CN=Linnea:mailto:linnea.vasquez.ortiz88@gmail.com\r\n");
    assert_eq!(
        scrub(&input, &cx),
        Ok(expected_event(&format!("ORGANIZER:mailto:{ALIAS}\r\n")))
    );
}

#[test]
fn a_fold_inside_a_utf8_character_is_mended_from_bytes() {
    let raw = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Kaffe p\xc3\r\n \xa5 torget\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let scrubber = linnea();
    let cx = CalendarContext {
        scrubber: &scrubber,
        uid: &mapped_uid,
    };
    assert_eq!(
        scrub_bytes(raw, &cx),
        Ok(format!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\nBEGIN:VEVENT\r\nSUMMARY:Kaffe på torget\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
    );
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_line() {
    let input = "\u{feff}BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n";
    assert_eq!(
        scrubbed(input),
        format!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    );
}

#[test]
fn bare_lf_input_gives_crlf_output_refolded_at_75_octets() {
    let summary =
        "Ærlig talt en veldig lang tittel på et møte som går over flere linjer i kalenderen";
    let input =
        format!("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:{summary}\nEND:VEVENT\nEND:VCALENDAR");
    let folded = scrub_with(&input, &mapped_uid).unwrap_or_default();
    assert!(
        folded.contains("\r\n "),
        "the long line was folded: {folded}"
    );
    // Checks line ends and lengths too.
    let out = scrubbed(&input);
    assert!(out.contains(&format!("\r\nSUMMARY:{summary}\r\n")), "{out}");
}

#[test]
fn what_is_not_a_well_formed_calendar_is_an_error() {
    let cases: [(&str, CalendarError); 5] = [
        (
            "Hello, this is plain text.\r\n",
            CalendarError::NotACalendar("no VCALENDAR"),
        ),
        (
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
            CalendarError::NotACalendar("END does not match its BEGIN"),
        ),
        (
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n",
            CalendarError::NotACalendar("a component is never ended"),
        ),
        (
            "END:VCALENDAR\r\n",
            CalendarError::NotACalendar("END without BEGIN"),
        ),
        (
            "BEGIN:V CAL\r\n",
            CalendarError::NotACalendar("BEGIN without a component name"),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(scrub_with(input, &mapped_uid), Err(expected), "{input}");
    }
    // Trailing blanks after a component name are forgiven.
    assert_eq!(
        scrubbed("BEGIN:VCALENDAR \r\nEND:VCALENDAR\t\r\n"),
        format!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\nEND:VCALENDAR\r\n")
    );
    // Lines outside any component are not kept, but do no harm.
    assert_eq!(
        scrubbed("SUMMARY:stray\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        format!("BEGIN:VCALENDAR\r\nPRODID:{PRODID}\r\nEND:VCALENDAR\r\n")
    );
}

#[test]
fn limits_are_errors_not_work() {
    let deep = "BEGIN:X-A\r\n".repeat(MAX_DEPTH + 1);
    assert_eq!(scrub_with(&deep, &mapped_uid), Err(CalendarError::TooDeep));
    let within = format!(
        "{}{}",
        "BEGIN:X-A\r\n".repeat(MAX_DEPTH),
        "END:X-A\r\n".repeat(MAX_DEPTH)
    );
    assert_eq!(
        scrub_with(&within, &mapped_uid),
        Err(CalendarError::NotACalendar("no VCALENDAR"))
    );
    let many = "\r\n".repeat(MAX_LINES + 1);
    assert_eq!(
        scrub_with(&many, &mapped_uid),
        Err(CalendarError::TooManyLines)
    );
    let long = format!(
        "BEGIN:VCALENDAR\r\nSUMMARY:{}\r\n",
        "x".repeat(MAX_LINE_BYTES)
    );
    assert_eq!(
        scrub_with(&long, &mapped_uid),
        Err(CalendarError::LineTooLong)
    );
    let large = " ".repeat(MAX_INPUT_BYTES + 1);
    assert_eq!(
        scrub_with(&large, &mapped_uid),
        Err(CalendarError::TooLarge(MAX_INPUT_BYTES + 1))
    );
}

#[test]
fn a_line_folded_into_many_pieces_is_unfolded_in_one_pass() {
    // 150,000 folds of one character each: linear work, well under a
    // second; a quadratic unfold would take minutes.
    let folded = "x\r\n ".repeat(150_000);
    let input = format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:{folded}y\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let out = scrubbed(&input);
    assert!(out.contains(&format!("SUMMARY:{}y\r\n", "x".repeat(150_000))));
}

#[test]
fn google_eid_and_tok_in_a_description_are_removed() {
    let eid = "M2s4ZjBxMnZiMW43bTRwNnI5czV0MnU4dzAgbGlubmVhLnZhc3F1ZXoub3J0aXo4OEBt";
    let input = event(&format!(
        "DESCRIPTION:View your event at https://calendar.google.com/calendar/event?action=VIEW&eid={eid}&hl=en.\r\n"
    ));
    assert_eq!(
        scrubbed(&input),
        expected_event("DESCRIPTION:View your event at https://calendar.google.com/calendar/event?action=VIEW&eid=&hl=en.\r\n")
    );
}

/// The calendar part of a committed fixture (fixtures/make-calendar.py):
/// the bytes after the header block of the first part whose header holds
/// `marker`, up to the next boundary line.
fn fixture_part(fixture: &str, marker: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    let text = std::fs::read_to_string(path).expect("read fixture");
    let header = text.find(marker).expect("the part");
    let body = header + text[header..].find("\r\n\r\n").expect("end of header") + 4;
    let end = body + text[body..].find("\r\n--").expect("next boundary");
    let part = &text[body..end + 2];
    if text[header..body].contains("Content-Transfer-Encoding: base64") {
        let compact: String = part.split_whitespace().collect();
        data_encoding::BASE64
            .decode(compact.as_bytes())
            .expect("base64")
    } else {
        part.as_bytes().to_vec()
    }
}

/// What a reader could be shown: unfolded, text unescaped, URLs decoded,
/// lower case.
fn as_a_reader_sees(out: &str) -> String {
    let unescaped = super::content_line::unescape_text(&unfold(out));
    super::property::percent_decode(&unescaped).to_lowercase()
}

fn assert_free_of(out: &str, secrets: &[&str]) {
    let seen = as_a_reader_sees(out);
    for secret in secrets {
        assert!(
            !seen.contains(&secret.to_lowercase()),
            "{secret} survived in:\n{out}"
        );
    }
}

#[test]
fn the_google_invitation_fixture_keeps_nothing_of_the_sender() {
    let scrubber = linnea();
    let cx = CalendarContext {
        scrubber: &scrubber,
        uid: &mapped_uid,
    };
    for marker in [
        "Content-Type: text/calendar",
        "Content-Type: application/ics",
    ] {
        let raw = fixture_part("google-calendar-invitation.eml", marker);
        let input = String::from_utf8_lossy(&raw);
        // The secrets really are in the input (so this test can fail).
        assert!(input.contains("linnea.vasquez.ortiz88@gmai\r\n l.com"));
        assert!(input.contains("X-GOOGLE-CONFERENCE"));
        let out = match scrub_bytes(&raw, &cx) {
            Ok(out) => out,
            Err(e) => panic!("{marker}: {e}"),
        };
        assert_free_of(
            &out,
            &[
                "linnea.vasquez.ortiz88",
                "Linnea Vasquez Ortiz",
                "M2s4ZjBxMnZiMW43bTRwNnI5czV0MnU4dzAgbGlubmVhLnZhc3F1ZXoub3J0aXo4OEBt",
                "MzJsaW5uZWEudmFzcXVlei5vcnRpejg4QGdtYWlsLmNvbTRj",
                "3k8f0q2vb1n7m4p6r9s5t2u8w0@google.com",
                "Google Inc",
                "X-GOOGLE",
                "X-MICROSOFT",
                "X-NUM-GUESTS",
                "X-LIC-LOCATION",
            ],
        );
        let seen = unfold(&out);
        assert!(seen.contains(&format!("ORGANIZER;CN=Quiet Heron:mailto:{ALIAS}\r\n")));
        assert!(seen.contains("UID:uid37@relay.example\r\n"));
        assert!(seen.contains("Join with Google Meet: https://meet.google.com/xqz-brtw-kpn"));
        assert!(seen.contains("ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=xk4v7q2m9t3w8r5n6p2a@relay.example:mailto:xk4v7q2m9t3w8r5n6p2a@relay.example\r\n"));
    }
}

#[test]
fn the_outlook_invitation_fixture_keeps_nothing_of_the_sender() {
    let scrubber = Scrubber::new(Identity {
        addresses: vec!["hanne.sorlie@hotmail.no".into()],
        alias_address: ALIAS.into(),
        names: vec!["Hanne Sørlie".into()],
        name_replacement: "Quiet Heron".into(),
        ..Identity::default()
    });
    let cx = CalendarContext {
        scrubber: &scrubber,
        uid: &mapped_uid,
    };
    let raw = fixture_part(
        "outlook-calendar-invitation.eml",
        "Content-Type: text/calendar",
    );
    let input = String::from_utf8_lossy(&raw);
    assert!(input.contains("ORGANIZER;CN=\"Hanne Sørlie\":mailto:hanne.sorlie@hotmail.no"));
    assert!(input.contains("X-ALT-DESC"));
    let out = match scrub_bytes(&raw, &cx) {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    };
    assert_free_of(
        &out,
        &[
            "hanne.sorlie",
            "Hanne Sørlie",
            "040000008200E00074C5B7101A82E008",
            "Microsoft Exchange",
            "X-MICROSOFT",
            "X-MS-OLK",
            "X-ALT-DESC",
            "<html",
        ],
    );
    let seen = unfold(&out);
    assert!(seen.contains(&format!("ORGANIZER;CN=Quiet Heron:mailto:{ALIAS}\r\n")));
    assert!(seen.contains("DTSTART;TZID=W. Europe Standard Time:20261211T190000\r\n"));
    assert!(seen.contains("BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\n"));
    assert!(seen.contains("DESCRIPTION;LANGUAGE=nb-NO:Hei!\\n\\nSkal vi ta julebordet på Schrøder i år? Jeg har reservert bord til seks.\\n\\nHilsen\\nQuiet Heron\\nk7q2m9t3w8r5n6p2a4xz@relay.example\\n\r\n"));
}
