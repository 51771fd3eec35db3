-- API keys minted with another API key, as
-- migrations/sqlite/0003_api_key_parents.sql: parent_id names the key that
-- made the key, NULL when a user's session did.
ALTER TABLE api_keys ADD COLUMN parent_id TEXT COLLATE "C" NULL REFERENCES api_keys (id);

CREATE INDEX api_keys_parent_id ON api_keys (parent_id) WHERE parent_id IS NOT NULL;
