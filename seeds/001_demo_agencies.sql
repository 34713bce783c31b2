-- Demo agencies (development/staging only). Re-runnable: psql -f seeds/001_demo_agencies.sql
-- The first row is the seed document's test fixture, same id. Its token columns hold
-- placeholders, not tokens: `scripts/demo` connects the agency to ghl-sim through real
-- OAuth, which replaces them with AES-256-GCM encrypted tokens. Its pipeline goes live (a phone
-- number, custom fields, a calendar, SaaS, rebilling, the user's permissions and a menu link:
-- plugins/golive), waits for a person to register A2P 10DLC (a TASK step: the demo job
-- parks until the task is completed on the dashboard) and ends with the
-- README's Lua step example (steps/location_tag.lua). `ghl-agent serve` marks agencies with
-- placeholder tokens needs_reconnect at start-up, so the second one shows it until connected.
INSERT INTO agencies (id, name, ghl_agency_id, oauth_access_token_encrypted,
                      oauth_refresh_token_encrypted, token_expires_at, settings_json)
VALUES
    ('f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid, 'Test Agency', 'test-ghl-agency-001',
     'encrypted_token_here', 'encrypted_refresh_here', NOW() + INTERVAL '30 days',
     '{"max_retries": 3, "max_concurrent_jobs": 5, "pipeline": [
         {"step": "VALIDATE_SNAPSHOT"}, {"step": "CREATE_LOCATION"},
         {"step": "WAIT_FOR_SNAPSHOT"}, {"step": "CREATE_USER", "config": {"role": "admin"}},
         {"step": "SET_CUSTOM_VALUES"}, {"step": "CREATE_CONTACT", "config": {"tags": ["demo"]}},
         {"step": "BUY_PHONE_NUMBER", "config": {"sms": true, "voice": true}},
         {"step": "CREATE_CUSTOM_FIELDS", "config": {"fields": [
             {"name": "Insurance provider"}, {"name": "Last visit", "data_type": "DATE"}]}},
         {"step": "CREATE_CALENDARS", "config": {"calendars": [
             {"name": "New patient consultation", "slot_duration": 45, "assign_user": true}]}},
         {"step": "ENABLE_SAAS"},
         {"step": "SET_REBILLING", "config": {"products": [
             {"product": "conversationAI", "markup": 20}, {"product": "contentAI", "markup": 20}]}},
         {"step": "SET_USER_PERMISSIONS", "config": {"permissions": {"campaignsEnabled": true}}},
         {"step": "ADD_MENU_LINKS", "config": {"links": [
             {"title": "Onboarding checklist", "url": "https://example.com/onboarding"}]}},
         {"step": "TASK", "config": {"title": "Register A2P 10DLC for {{client.name}}",
             "checklist": ["Register the brand for {{client.name}}",
                           "Register the SMS campaign", "Enter the brand id as output a2p_brand_id"],
             "due_in_days": 3, "assignee_role": "AGENCY_ADMIN"}},
         {"step": "location_tag", "config": {"name": "onboarding"}, "on_error": "continue"}]}'::jsonb),
    ('6a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7'::uuid, 'Summit Growth Partners', 'demo-ghl-agency-002',
     'encrypted_token_here', 'encrypted_refresh_here', NOW() + INTERVAL '30 days',
     '{"max_retries": 5, "max_concurrent_jobs": 10}'::jsonb)
ON CONFLICT DO NOTHING;
