-- Demo snapshots across niches (development/staging only). Re-runnable.
-- The first row is the seed document's test fixture, same id.
INSERT INTO snapshots (id, agency_id, ghl_snapshot_id, name, niche, description, is_active)
VALUES
    ('550e8400-e29b-41d4-a716-446655440000'::uuid, 'f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid,
     'snapshot-001', 'Real Estate Startup', 'Real Estate', NULL, true),
    ('550e8400-e29b-41d4-a716-446655440001'::uuid, 'f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid,
     'snap-real-estate-001', 'Real Estate Team Pro', 'Real Estate',
     'Buyer and seller pipelines, open-house follow-up, listing alert workflows.', true),
    ('550e8400-e29b-41d4-a716-446655440002'::uuid, 'f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid,
     'snap-dental-001', 'Dental Practice Growth', 'Dental',
     'New-patient funnel, recall reminders, review requests after each visit.', true),
    ('550e8400-e29b-41d4-a716-446655440003'::uuid, 'f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid,
     'snap-fitness-001', 'Gym & Fitness Studio', 'Fitness',
     'Free-trial offer, class booking calendar, membership renewal nurture.', true),
    ('550e8400-e29b-41d4-a716-446655440004'::uuid, 'f47ac10b-58cc-4372-a567-0e02b2c3d479'::uuid,
     'snap-restaurant-001', 'Restaurant Reservations', 'Restaurants',
     'Table booking widget, SMS waitlist, birthday promotions.', false),
    ('550e8400-e29b-41d4-a716-446655440005'::uuid, '6a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7'::uuid,
     'snap-legal-001', 'Law Firm Intake', 'Legal',
     'Case intake forms, consultation scheduling, document request reminders.', true),
    ('550e8400-e29b-41d4-a716-446655440006'::uuid, '6a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7'::uuid,
     'snap-roofing-001', 'Roofing Contractor Leads', 'Home Services',
     'Storm-damage lead capture, estimate follow-up, job completion reviews.', true)
ON CONFLICT DO NOTHING;
