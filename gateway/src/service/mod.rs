//! Authentication, authorisation, quotas, rate limits and verification (filled in by the API work).
