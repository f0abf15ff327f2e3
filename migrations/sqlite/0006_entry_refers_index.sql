-- Which entries post, void or reverse a given entry: read for every reference a batch makes.
CREATE INDEX entries_refers ON entries (county_code, refers_seq);
