-- Short incident numbers (#42), handed out in creation order; the UUID stays
-- the identity. Existing incidents are numbered by when they opened.
ALTER TABLE incidents ADD COLUMN number BIGINT;
UPDATE incidents SET number = numbered.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY opened_at, id) AS n FROM incidents) AS numbered
WHERE incidents.id = numbered.id;
CREATE UNIQUE INDEX incidents_number ON incidents (number);
