//! Key bundles `CFKB`: identity secrets sealed for storage (FORMAT.md section 8.4).
