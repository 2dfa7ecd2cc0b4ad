//! CRLs: parse, validate against the issuer, and check one certificate (notation-core-go
//! `revocation/internal/crl`). To be written.
