-- API keys minted with another API key: parent_id names the key that made
-- the key, NULL when a user's session did. A minted key expires no later
-- than its parent, and revoking a key revokes every key minted through it
-- (store.RevokeAPIKey walks the tree through this index).
ALTER TABLE api_keys ADD COLUMN parent_id TEXT NULL REFERENCES api_keys (id);

CREATE INDEX api_keys_parent_id ON api_keys (parent_id) WHERE parent_id IS NOT NULL;
