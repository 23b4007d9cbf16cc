-- Short incident numbers (#42), handed out in creation order; the UUID stays
-- the identity. Existing incidents are numbered by when they opened.
ALTER TABLE incidents ADD COLUMN number INTEGER;
UPDATE incidents SET number = (
    SELECT COUNT(*) FROM incidents AS earlier
    WHERE earlier.opened_at < incidents.opened_at OR (earlier.opened_at = incidents.opened_at AND earlier.id <= incidents.id)
);
CREATE UNIQUE INDEX incidents_number ON incidents (number);
