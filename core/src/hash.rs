//! The one stable hash of the framework: it places streams in partitions, and names lock
//! keys and schemas, identically in every process and every release.

/// The FNV-1a 32-bit hash of `bytes` (offset basis `0x811c9dc5`, prime `0x01000193`).
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::fnv1a_32;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }
}
