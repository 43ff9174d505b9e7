//! The service signature hash sent in the [`Hello`](crate::Hello).

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a (64-bit) of a service's canonical signature string.
///
/// The canonical string is `service <Name> { <method>(<arg type>,...)-><ret type>; ... }`
/// with types written as their Rust tokens without whitespace, for example
/// `service Calc { add(i64,i64)->i64; }`; see `docs/protocol.md`. A `const fn`, so it can
/// be evaluated in a constant.
pub const fn signature_hash(canonical: &str) -> u64 {
    let bytes = canonical.as_bytes();
    let mut hash = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(signature_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(signature_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(signature_hash("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn usable_in_const() {
        const SIG: u64 = signature_hash("service Calc { add(i64,i64)->i64; }");
        assert_eq!(SIG, signature_hash("service Calc { add(i64,i64)->i64; }"));
        assert_ne!(SIG, signature_hash("service Calc { add(i64,i32)->i64; }"));
    }
}
