//! The membership log `CFML`, its verification and epoch keys (FORMAT.md section 9).
