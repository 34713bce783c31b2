-- AGENCY_ADMIN scoping: which agencies a user may manage (DESIGN "People and access").
CREATE TABLE user_agencies (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agency_id UUID NOT NULL REFERENCES agencies(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, agency_id)
);

CREATE INDEX idx_user_agencies_agency_id ON user_agencies(agency_id);

-- Logins look users up by case-folded email.
CREATE INDEX idx_users_email_lower ON users(lower(email));
