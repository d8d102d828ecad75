-- The build reads the lines of the professionals it builds from the import's own work
-- file now (src/import/spill.rs): stage_line keeps only MSSanté lines, from which the
-- mailbox set is built in SQL, and the selection table of the build is no longer used.
DROP TABLE stage_build;
