//! Padmé padding (FORMAT.md section 4).
