-- Connection state of an agency's GHL OAuth grant (core/agency_tokens.c, core/oauth.c,
-- core/webhooks.c). Additive only: the seed's columns are untouched.
--   needs_reconnect   GHL refused a refresh (invalid_grant), the stored token cannot be
--                     used, or the app was installed without an OAuth connection yet:
--                     the agency must be connected again through /oauth/connect.
--   reconnect_reason  why, in words shown to operators and used to fail its jobs.
--   last_refreshed_at when the token pair was last obtained (connect or refresh).
ALTER TABLE agencies ADD COLUMN needs_reconnect BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE agencies ADD COLUMN reconnect_reason TEXT NULL;
ALTER TABLE agencies ADD COLUMN last_refreshed_at TIMESTAMP NULL;
-- The refresh sweep's candidates: live agencies with a usable grant, by expiry.
CREATE INDEX idx_agencies_refresh_due ON agencies(token_expires_at)
    WHERE deleted_at IS NULL AND needs_reconnect = false;
