-- outhook store, version 3: the request and response headers of each
-- attempt (outhook.Attempt.RequestHeaders, ResponseHeaders), as JSON objects
-- of arrays of strings ({"Content-Type": ["application/json"]}), already
-- redacted and bounded by the client. NULL is a nil map, '{}' an empty one.
-- The columns are nullable, so the code of the release before still runs.
ALTER TABLE outhook_attempts ADD COLUMN request_headers TEXT;
ALTER TABLE outhook_attempts ADD COLUMN response_headers TEXT;
