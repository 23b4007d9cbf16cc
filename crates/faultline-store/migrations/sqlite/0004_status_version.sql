-- Faultline schema v4 (sqlite): the number of updates a published status-page
-- incident has, the version `publish_status` compares and sets, so two
-- publishes computed from the same state cannot both be written (the second
-- is a conflict, not a silent overwrite reusing the first's update id).
ALTER TABLE status_incidents ADD COLUMN update_count INTEGER NOT NULL DEFAULT 0;
UPDATE status_incidents SET update_count = COALESCE(json_array_length(json, '$.updates'), 0);
