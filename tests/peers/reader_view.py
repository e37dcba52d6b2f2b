#!/usr/bin/python3
"""What a reader could be shown of each message, as Python's own `email`
package reads it: an independent parser to check the relay's rebuild.

Usage: reader_view.py [--sender ADDRESS] FILE... [--sender ADDRESS FILE...]
prints one JSON array, one entry per file (`--sender` names the sender of
the files after it: their own contact card is dropped by design):

  "structure"  the MIME tree: {"type": t, "children": [...]} for multipart
               and message/* (a message's only child is the embedded
               message), {"type": t, "sha256": h} for an attachment (a leaf
               with Content-Disposition: attachment or a non-text type; the
               hash is over its decoded payload), {"type": t} for shown text,
               {"type": t, "calendar": true} for iCalendar data (scrubbed by
               the relay whether shown or attached);
  "expected"   the tree the relay should forward: the same, minus what its
               policy removes by design (multipart/signed becomes its signed
               content; opaque S/MIME signed data becomes its content, read
               with `openssl cms -verify -noverify`; keys, signatures, TNEF,
               delivery reports, partial and external bodies are dropped,
               also when only their file name or first line says what they
               are, and so is the sender's own contact card; a file that is
               a calendar by name or first line is a calendar; an
               unknown multipart subtype becomes mixed; a multipart left
               empty becomes text/plain);
  "seen"       every string a reader could be shown: each header value
               decoded (RFC 2047), each parameter decoded and its RFC 2231
               sections joined, the file names, each shown text and each
               calendar decoded from its transfer encoding and charset, the
               calendars also unfolded and unescaped; every string also with
               HTML character references resolved and URL escapes decoded;
  "body_seen"  the part of "seen" below the top-level header (the body:
               texts, calendars, forwarded messages' headers, the content of
               opaque S/MIME signed data as a client unwraps it);
  "boundaries", "field_names", "param_names"
               every multipart boundary, header field name and parameter
               name of every part (to show none of the input's survive).
"""

import email
import email.errors
import email.header
import email.utils
import hashlib
import html
import json
import re
import subprocess
import sys
import urllib.parse

CALENDAR = {"text/calendar", "application/ics"}
DROPPED = {
    "application/pgp-keys", "application/pgp-signature",
    "application/pkcs7-signature", "application/x-pkcs7-signature",
    "application/ms-tnef", "application/vnd.ms-tnef",
    "message/delivery-status", "message/global-delivery-status",
    "message/disposition-notification", "message/global-disposition-notification",
    "message/feedback-report", "message/partial", "message/external-body",
}
EMBEDDED = {"message/rfc822", "message/global", "message/news"}
MULTIPART = {"mixed", "alternative", "related", "digest", "parallel", "report"}
PKCS7 = {"application/pkcs7-mime", "application/x-pkcs7-mime"}


_TYPES = {}


def ctype_of(part):
    """The part's content type, parsed once (policy.default re-parses the
    header on every access, which dominated this script's time)."""
    key = id(part)
    if key not in _TYPES:
        _TYPES[key] = (part, part.get_content_type(), part.get_content_disposition())
    return _TYPES[key][1]


def disposition_of(part):
    ctype_of(part)
    return _TYPES[id(part)][2]


def maintype_of(part):
    return ctype_of(part).split("/")[0]


def is_attachment(part):
    if part.is_multipart() or maintype_of(part) == "message":
        return False
    if ctype_of(part) in CALENDAR:
        return False
    return (
        disposition_of(part) == "attachment"
        or maintype_of(part) != "text"
    )


def payload_bytes(part):
    return part.get_payload(decode=True) or b""


def node(part):
    ctype = ctype_of(part)
    entry = {"type": ctype}
    if part.is_multipart():
        entry["children"] = [node(child) for child in part.get_payload()]
    elif ctype in CALENDAR:
        entry["calendar"] = True
    elif is_attachment(part):
        entry["sha256"] = hashlib.sha256(payload_bytes(part)).hexdigest()
    return entry


def opaque_content(part):
    """The entity inside opaque S/MIME signed data, or None."""
    result = subprocess.run(
        ["openssl", "cms", "-verify", "-noverify", "-inform", "DER"],
        input=payload_bytes(part), capture_output=True,
    )
    if result.returncode != 0:
        return None
    return email.message_from_bytes(result.stdout)


CALENDAR_EXTENSIONS = (".ics", ".vcs", ".ifb")
IDENTITY_EXTENSIONS = (".p7s", ".p7c", ".p7b", ".cer", ".crt")
CARD_TYPES = {"text/vcard", "text/x-vcard", "text/directory"}


def file_kind(part):
    """What an attachment is by its name and first line (the relay's
    policy.rs file_kind, stated again)."""
    name = (part.get_filename() or "").strip().lower()
    head = payload_bytes(part)[:64].decode("latin-1").lstrip().upper()
    if name.endswith(CALENDAR_EXTENSIONS) or head.startswith("BEGIN:VCALENDAR"):
        return "calendar"
    if name.endswith(".p7m"):
        return "cms"
    if (name.endswith(IDENTITY_EXTENSIONS) or name == "winmail.dat"
            or head.startswith("-----BEGIN PGP PUBLIC KEY")
            or head.startswith("-----BEGIN PGP SIGNATURE")
            or head.startswith("-----BEGIN CERTIFICATE")):
        return "identity"
    if name.endswith(".vcf") or ctype_of(part) in CARD_TYPES or head.startswith("BEGIN:VCARD"):
        return "card"
    return "file"


SENDER = {"addresses": []}


def mentions_sender(data):
    text = data.decode("utf-8", "replace").lower()
    return any(address in text for address in SENDER["addresses"])


def expected(part):
    ctype = ctype_of(part)
    if ctype in DROPPED:
        return None
    if is_attachment(part):
        kind = file_kind(part)
        if kind == "identity":
            return None
        if kind == "card" and mentions_sender(payload_bytes(part)):
            return None
        if kind == "calendar":
            return {"type": "text/calendar", "calendar": True}
        if kind == "cms":
            inner = opaque_content(part)
            if inner is not None:
                return expected(inner)
    if ctype == "multipart/signed":
        children = part.get_payload()
        return expected(children[0]) if children else None
    if ctype in PKCS7 and part.get_param("smime-type", "").lower() != "enveloped-data":
        inner = opaque_content(part)
        if inner is not None:
            return expected(inner)
    if maintype_of(part) == "message" and ctype not in EMBEDDED:
        return None
    if maintype_of(part) == "multipart" and part.is_multipart():
        subtype = part.get_content_subtype()
        subtype = subtype if subtype in MULTIPART | {"encrypted"} else "mixed"
        expect = expected_encrypted if subtype == "encrypted" else expected
        children = [c for c in map(expect, part.get_payload()) if c is not None]
        if not children:
            return {"type": "text/plain"}
        return {"type": "multipart/" + subtype, "children": children}
    if ctype in EMBEDDED:
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else None
        child = expected(inner) if inner is not None else None
        return {"type": "message/rfc822", "children": [child or {"type": "text/plain"}]}
    entry = node(part)
    allowed = {"application", "image", "audio", "video", "font", "model", "text"}
    if "sha256" in entry and maintype_of(part) not in allowed:
        entry["type"] = "application/octet-stream"
    return entry


def expected_encrypted(part):
    """A part of multipart/encrypted: the control part and the data pass,
    the armor's header lines (`Version:`, `Comment:`) removed and line
    ends made CRLF; any other part is read like every part."""
    if ctype_of(part) not in {"application/pgp-encrypted", "application/octet-stream"}:
        return expected(part)
    data = payload_bytes(part)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return node(part)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    out, in_header = [], False
    for line in text.split("\r\n"):
        if line.rstrip() == "-----BEGIN PGP MESSAGE-----":
            in_header = True
        elif in_header and line.strip() == "":
            in_header = False
        elif in_header and ":" in line:
            continue
        elif in_header:
            in_header = False
            out.append("")
        out.append(line)
    entry = node(part)
    entry["sha256"] = hashlib.sha256("\r\n".join(out).encode("ascii")).hexdigest()
    return entry


def forms(text):
    """The text, and the text with HTML references and URL escapes resolved."""
    unescaped = html.unescape(text)
    return [text, unescaped, urllib.parse.unquote(text), urllib.parse.unquote(unescaped)]


def unfold_calendar(text):
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    unescaped = (unfolded.replace("\\n", "\n").replace("\\N", "\n")
                 .replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\"))
    return [unfolded, unescaped]


def text_of(part):
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload_bytes(part).decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return payload_bytes(part).decode("utf-8", "replace")


def parameter_value(value):
    """A parameter as clients show it: RFC 2231 sections joined and
    decoded, and RFC 2047 encoded words decoded too (not standard in a
    parameter, but Thunderbird and Outlook write and read them)."""
    return decoded_header(email.utils.collapse_rfc2231_value(value))


def decoded_header(value):
    """An RFC 2047-decoded header value, as a client shows it."""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError):
        return str(value)


def view(message):
    seen, body_seen, boundaries, field_names, param_names = [], [], [], [], []
    for part in message.walk():
        # The top-level header is no body; a forwarded message's is.
        target = seen if part is message else body_seen
        for name, value in part.items():
            field_names.append(name)
            target.extend(forms(decoded_header(value)))
        for name, value in part.get_params(header="content-type") or []:
            param_names.append(name)
            target.extend(forms(parameter_value(value)))
        for name, value in part.get_params(header="content-disposition") or []:
            param_names.append(name)
            target.extend(forms(parameter_value(value)))
        if part.get_filename():
            target.extend(forms(decoded_header(part.get_filename())))
        if part.get_boundary():
            boundaries.append(part.get_boundary())
        if part.is_multipart() or maintype_of(part) == "message":
            continue
        if ctype_of(part) in PKCS7:
            # A client unwraps opaque signed data and shows its content.
            inner = opaque_content(part)
            if inner is not None:
                inner_view = view(inner)
                body_seen.extend(inner_view[0] + inner_view[1])
                boundaries.extend(inner_view[2])
        elif ctype_of(part) in CALENDAR:
            text = text_of(part) if maintype_of(part) == "text" else \
                payload_bytes(part).decode("utf-8", "replace")
            for unfolded in unfold_calendar(text):
                body_seen.extend(forms(unfolded))
        elif not is_attachment(part):
            body_seen.extend(forms(text_of(part)))
    return seen, body_seen, boundaries, field_names, param_names


def sender_spellings(address):
    """The address and, for an internationalized domain, its A-label form."""
    local, _, domain = address.lower().rpartition("@")
    spellings = [address.lower()]
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return spellings
    if ascii_domain != domain:
        spellings.append(local + "@" + ascii_domain)
    return spellings


def main(arguments):
    entries = []
    paths = []
    while arguments:
        argument = arguments.pop(0)
        if argument == "--sender":
            paths.append(("--sender", arguments.pop(0)))
        else:
            paths.append(("file", argument))
    for kind, path in paths:
        if kind == "--sender":
            SENDER["addresses"] = sender_spellings(path)
            continue
        with open(path, "rb") as handle:
            # compat32 with explicit decoding: policy.default reads the same
            # but re-parses every header on each access, ten times slower.
            message = email.message_from_bytes(handle.read())
        seen, body_seen, boundaries, field_names, param_names = view(message)
        _TYPES.clear()
        entries.append({
            "structure": node(message),
            "expected": expected(message) or {"type": "text/plain"},
            "seen": seen + body_seen,
            "body_seen": body_seen,
            "boundaries": boundaries,
            "field_names": field_names,
            "param_names": param_names,
        })
    json.dump(entries, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
