-- anonrelay database schema, applied by src/store/sqlite/mod.rs. A line that is
-- exactly "-- step N" starts migration N; PRAGMA user_version records the
-- last one applied. Steps are only ever appended. The database holds only
-- what DESIGN.md promise 3 lists: no IP, no body, no Message-ID, no size.

-- step 1
-- Empty. Databases made before steps were numbered counted this file's
-- opening comment as their step 1 (user_version 2 = the tables below).

-- step 2
CREATE TABLE users (
    id    TEXT PRIMARY KEY NOT NULL,  -- the front-end's user id
    email TEXT NOT NULL               -- real address, normalized (lowercase)
) STRICT;

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY NOT NULL,
    user_a     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_b     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CHECK (user_a <> user_b)
) STRICT;

-- One live conversation per unordered pair; a revoked one can be replaced.
CREATE UNIQUE INDEX conversations_live_pair
    ON conversations (min(user_a, user_b), max(user_a, user_b))
    WHERE revoked_at IS NULL;

CREATE TABLE aliases (
    alias           TEXT PRIMARY KEY NOT NULL,  -- local part on the alias domain
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    owner           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    display_name    TEXT,                        -- pseudonym chosen on the platform, never the real name
    UNIQUE (conversation_id, owner)
) STRICT;

CREATE TABLE message_log (
    id           INTEGER PRIMARY KEY,
    sent_at      INTEGER NOT NULL,   -- unix seconds
    sender_id    TEXT REFERENCES users(id) ON DELETE SET NULL,
    recipient_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    alias        TEXT NOT NULL,      -- the alias the message was addressed to
    subject      TEXT NOT NULL
) STRICT;

CREATE INDEX message_log_sent_at ON message_log (sent_at);
CREATE INDEX message_log_sender ON message_log (sender_id);
CREATE INDEX message_log_recipient ON message_log (recipient_id);

-- step 3
-- User deletion and export find a user's conversations and aliases
-- without scanning the tables (and the cascades check them by owner).
CREATE INDEX conversations_user_a ON conversations (user_a);
CREATE INDEX conversations_user_b ON conversations (user_b);
CREATE INDEX aliases_owner ON aliases (owner);

-- step 4
-- Addresses are mapped by IDNA (UTS 46) to one canonical form, U-labels:
-- the code of this step (store::sqlite::renormalize_addresses) rewrites an address
-- stored in its A-label form (`xn--…`), which SQL cannot decode.
