//! A strict structural pass over CBOR before it is decoded.
//!
//! go-cose decodes with indefinite lengths forbidden and a bounded nesting depth; ciborium (under
//! coset) accepts indefinite lengths. This walk rejects them, and reserved or truncated encodings,
//! so that we refuse exactly the envelopes the reference refuses.

const MAX_DEPTH: usize = 16;

/// Check that `bytes` is exactly one well-formed CBOR item using only definite lengths.
pub fn check_definite(bytes: &[u8]) -> Result<(), String> {
    let end = item(bytes, 0, 0)?;
    if end != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the CBOR item",
            bytes.len() - end
        ));
    }
    Ok(())
}

fn item(b: &[u8], pos: usize, depth: usize) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err("CBOR nesting is too deep".into());
    }
    let initial = *b.get(pos).ok_or("truncated CBOR")?;
    let major = initial >> 5;
    let info = initial & 0x1f;
    let (arg, mut p) = match info {
        0..=23 => (u64::from(info), pos + 1),
        24..=27 => {
            let n = 1usize << (info - 24);
            let bytes = b.get(pos + 1..pos + 1 + n).ok_or("truncated CBOR")?;
            let v = bytes.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
            (v, pos + 1 + n)
        }
        31 => return Err("indefinite-length CBOR is not allowed".into()),
        _ => return Err("reserved CBOR additional information".into()),
    };
    match major {
        0 | 1 | 7 => Ok(p),
        2 | 3 => {
            let len = usize::try_from(arg).map_err(|_| "CBOR length overflow")?;
            let end = p.checked_add(len).ok_or("CBOR length overflow")?;
            if end > b.len() {
                return Err("truncated CBOR".into());
            }
            Ok(end)
        }
        4 | 5 => {
            let count = if major == 5 {
                arg.saturating_mul(2)
            } else {
                arg
            };
            if count > b.len() as u64 {
                return Err("truncated CBOR".into());
            }
            for _ in 0..count {
                p = item(b, p, depth + 1)?;
            }
            Ok(p)
        }
        6 => item(b, p, depth + 1),
        _ => Err("invalid CBOR major type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_definite_and_rejects_indefinite_and_truncated() {
        assert!(check_definite(&[0xa1, 0x01, 0x26]).is_ok());
        assert!(check_definite(&[0x9f, 0x01, 0xff]).is_err());
        assert!(check_definite(&[0x5f, 0x41, 0x00, 0xff]).is_err());
        assert!(check_definite(&[0x84, 0x01]).is_err());
        assert!(check_definite(&[0x5a, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(check_definite(&[0x01, 0x02]).is_err());
        let deep = vec![0x81; 100];
        assert!(check_definite(&deep).is_err());
    }
}
