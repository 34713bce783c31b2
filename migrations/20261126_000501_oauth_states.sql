-- OAuth connection requests started by GET /oauth/connect. The callback
-- accepts a state once (used_at), only from the browser that started it
-- (browser_hash: the SHA-256 of the ghl_oauth cookie /oauth/connect set
-- there), and binds the connection by what user_id may do (an AGENCY_ADMIN
-- only reconnects its own agencies). Only hashes are kept. A row is remembered
-- until expires_at (the state's own expiry), then deleted by a later connect.
CREATE TABLE oauth_states (
    state_hash CHAR(64) PRIMARY KEY,
    browser_hash CHAR(64) NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_oauth_states_expires_at ON oauth_states(expires_at);
