-- A professional's history and their claims at an instant read their removals by national
-- id; the primary key (run_id, national_id) serves only a run's removals.
CREATE INDEX run_removal_national_id_ix ON run_removal (national_id, run_id);
