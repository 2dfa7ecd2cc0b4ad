//! OCSP: build the request and validate the response for one certificate (notation-core-go
//! `revocation/internal/ocsp`). To be written.
