-- View `release_info`: what each release file the warehouse registered says about itself, one row
-- per (release, key) of its `meta/info` group (author, contact, creation-date, laboratory and
-- version in ARCHS4 v2.x), the value as text.
CREATE OR REPLACE VIEW release_info AS
SELECT source_version, source_path, key, value FROM ${raw_release_info}
