//! Code tables the pipeline needs at run time, compiled in (no files to find at start-up).

pub mod iso3166;
