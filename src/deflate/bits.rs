//! The bit packing of deflate: bits from the least significant bit of each byte on (RFC 1951 §3.1.1).

pub(super) struct BitWriter {
    pub(super) bytes: Vec<u8>,
    pending: u64,
    count: u32,
}

impl BitWriter {
    pub(super) fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            pending: 0,
            count: 0,
        }
    }

    /// The low `bits` (≤ 16) bits of `value`.
    #[inline(always)]
    pub(super) fn put(&mut self, value: u32, bits: u32) {
        self.pending |= u64::from(value) << self.count;
        self.count += bits;
        if self.count >= 32 {
            self.bytes
                .extend_from_slice(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.count -= 32;
        }
    }

    /// A Huffman code as (bit-reversed code, length).
    #[inline(always)]
    pub(super) fn put_code(&mut self, (code, bits): (u32, u32)) {
        self.put(code, bits);
    }

    /// Pads with zeros to a byte boundary and flushes: stored blocks continue byte-aligned.
    pub(super) fn align(&mut self) {
        let tail = self.count.div_ceil(8) as usize;
        self.bytes
            .extend_from_slice(&self.pending.to_le_bytes()[..tail]);
        self.pending = 0;
        self.count = 0;
    }

    /// The bytes, the last one padded with zeros.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.align();
        self.bytes
    }
}
