-- A page of a user's projects is read by keyset (owner, id > cursor), so it costs the same
-- whatever the number of projects; the count beside it stops at a bound.
CREATE INDEX projects_owner_id ON projects (owner_id, id);
