#!/usr/bin/python3
"""The MIME structure of messages as Python's own `email` package reads
them (an independent parser to compare with mail-parser).

Usage: mime_structure.py FILE...  prints one JSON array, one entry per
file, in order. An entry is a tree of nodes:
    {"type": "multipart/mixed", "children": [...]}    multipart, message/*
    {"type": "text/plain"}                             shown text
    {"type": "application/pdf", "sha256": "..."}       attachment
An attachment is a leaf that is not message/* and either has
Content-Disposition: attachment or is not text/*; its hash is over the
payload decoded from its transfer encoding. A message/rfc822 node's only
child is the embedded message.
"""

import email
import email.policy
import hashlib
import json
import sys


def is_attachment(part):
    if part.is_multipart() or part.get_content_maintype() == "message":
        return False
    return (
        part.get_content_disposition() == "attachment"
        or part.get_content_maintype() != "text"
    )


def node(part):
    entry = {"type": part.get_content_type()}
    if part.is_multipart():
        entry["children"] = [node(child) for child in part.get_payload()]
    elif is_attachment(part):
        payload = part.get_payload(decode=True) or b""
        entry["sha256"] = hashlib.sha256(payload).hexdigest()
    return entry


def main(paths):
    structures = []
    for path in paths:
        with open(path, "rb") as handle:
            message = email.message_from_bytes(handle.read(), policy=email.policy.default)
        structures.append(node(message))
    json.dump(structures, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
