//! Canonical Huffman codes limited to deflate's code lengths (RFC 1951 §3.2.2).

/// The largest alphabet (literal/length symbols 0–287).
const MAX_SYMBOLS: usize = 288;

/// A canonical Huffman code, on the stack: codes are made several times per stream.
pub(super) struct Code {
    /// Bits per symbol; 0 = unused.
    pub(super) lengths: [u8; MAX_SYMBOLS],
    /// Each symbol's code, bit-reversed: deflate sends Huffman codes most significant bit first into
    /// a stream packed from the least significant bit.
    codes: [u16; MAX_SYMBOLS],
}

impl Code {
    /// The canonical code of these code lengths (at most 288).
    pub(super) fn from_lengths(lengths: &[u8]) -> Self {
        let mut per_length = [0u16; 16];
        for &l in lengths.iter().filter(|&&l| l > 0) {
            per_length[usize::from(l)] += 1;
        }
        let mut next = [0u16; 16];
        let mut code = 0u16;
        for bits in 1..16 {
            code = (code + per_length[bits - 1]) << 1;
            next[bits] = code;
        }
        let mut this = Self {
            lengths: [0; MAX_SYMBOLS],
            codes: [0; MAX_SYMBOLS],
        };
        this.lengths[..lengths.len()].copy_from_slice(lengths);
        for (symbol, &l) in lengths.iter().enumerate() {
            if l > 0 {
                let code = next[usize::from(l)];
                next[usize::from(l)] += 1;
                this.codes[symbol] = code.reverse_bits() >> (16 - l);
            }
        }
        this
    }

    /// The (bit-reversed code, length) of `symbol`.
    #[inline(always)]
    pub(super) fn symbol(&self, symbol: usize) -> (u32, u32) {
        (
            u32::from(self.codes[symbol]),
            u32::from(self.lengths[symbol]),
        )
    }
}

/// Optimal code lengths of `frequencies` (Moffat and Katajainen's in-place Huffman over the used
/// symbols sorted by weight), then, if a code is longer than `limit` (2^limit ≥ N), the overlong ones
/// cut to `limit` and the Kraft sum mended by lengthening the shortest codes that can take it, the
/// rarest symbols keeping the longest codes (as miniz and zlib do). The code is always complete, as
/// zlib requires: a lone used symbol gets a 1-bit code and an unused neighbour the other.
pub(super) fn lengths<const N: usize>(frequencies: &[u32; N], limit: u8) -> [u8; N] {
    let mut lengths = [0u8; N];
    // Weight · 2^16 + symbol of the used symbols, sorted: lightest first, by symbol on ties.
    let mut keys = [0u64; N];
    let mut n = 0;
    for (symbol, &f) in frequencies.iter().enumerate() {
        if f > 0 {
            keys[n] = u64::from(f) << 16 | symbol as u64;
            n += 1;
        }
    }
    // A complete code needs two symbols: the first unused ones, weight 0.
    let mut unused = (0..N).filter(|&s| frequencies[s] == 0);
    while n < 2 {
        match unused.next() {
            Some(s) => {
                keys[n] = s as u64;
                n += 1;
            }
            None => break,
        }
    }
    if n < 2 {
        // An alphabet of one symbol (never in deflate): give it a 1-bit code.
        if n == 1 {
            lengths[(keys[0] & 0xffff) as usize] = 1;
        }
        return lengths;
    }
    let keys = &mut keys[..n];
    keys.sort_unstable();
    let mut depth = [0u32; N];
    for (d, &k) in depth.iter_mut().zip(keys.iter()) {
        *d = (k >> 16) as u32;
    }
    minimum_redundancy(&mut depth[..n]);
    // depth[i] is now the code length of the i-th lightest symbol (non-increasing).
    let limit = u32::from(limit);
    let mut per_length = [0u32; 32];
    for &d in &depth[..n] {
        per_length[d.min(31) as usize] += 1;
    }
    if depth[0] > limit {
        let limit = limit as usize;
        for l in limit + 1..32 {
            per_length[limit] += per_length[l];
            per_length[l] = 0;
        }
        // Kraft sum in units of 2^-limit; too big by as many units as codes must be lengthened.
        let mut total: u64 = (1..=limit)
            .map(|l| u64::from(per_length[l]) << (limit - l))
            .sum();
        while total > 1 << limit {
            per_length[limit] -= 1;
            for l in (1..limit).rev() {
                if per_length[l] != 0 {
                    per_length[l] -= 1;
                    per_length[l + 1] += 2;
                    break;
                }
            }
            total -= 1;
        }
    }
    // The lightest symbols (first) take the longest codes.
    let mut leaf = 0;
    for l in (1..=limit as usize).rev() {
        for _ in 0..per_length[l] {
            lengths[(keys[leaf] & 0xffff) as usize] = l as u8;
            leaf += 1;
        }
    }
    lengths
}

/// Huffman code lengths, in place, of `a`: weights sorted ascending (at least two) in, each one's code
/// length out (A. Moffat, J. Katajainen, "In-place calculation of minimum-redundancy codes", 1995).
fn minimum_redundancy(a: &mut [u32]) {
    let n = a.len();
    // Phase 1: left to right, a[next] becomes the weight of the next inner node, then its parent.
    a[0] += a[1];
    let (mut root, mut leaf) = (0, 2);
    for next in 1..n - 1 {
        // The lighter of the next inner node and the next leaf, twice.
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    // Phase 2: right to left, parent pointers become inner node depths.
    a[n - 2] = 0;
    for next in (0..n - 2).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    // Phase 3: inner node depths become leaf depths.
    let (mut available, mut used, mut depth) = (1i64, 0i64, 0u32);
    let (mut root, mut next) = (n as i64 - 2, n as i64 - 1);
    while available > 0 {
        while root >= 0 && a[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while available > used {
            a[next as usize] = depth;
            next -= 1;
            available -= 1;
        }
        available = 2 * used;
        depth += 1;
        used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lengths: &[u8]) -> f64 {
        lengths
            .iter()
            .filter(|&&l| l > 0)
            .map(|&l| 0.5f64.powi(i32::from(l)))
            .sum()
    }

    #[test]
    fn codes_are_complete_and_within_their_limit() {
        // Fibonacci weights make the deepest unlimited tree: 30 symbols would need 29 bits.
        let mut fibonacci = vec![1u32, 1];
        while fibonacci.len() < 30 {
            let n = fibonacci.len();
            fibonacci.push(fibonacci[n - 1] + fibonacci[n - 2]);
        }
        let mut a30 = [0u32; 30];
        a30.copy_from_slice(&fibonacci);
        let mut a19 = [0u32; 19];
        a19.copy_from_slice(&fibonacci[..19]);
        let mut a286 = [1u32; 286];
        let cases: Vec<(Vec<u32>, Vec<u8>, u8)> = vec![
            (a30.to_vec(), lengths(&a30, 15).to_vec(), 15),
            (a19.to_vec(), lengths(&a19, 7).to_vec(), 7),
            (vec![0, 0, 5, 0], lengths(&[0, 0, 5, 0], 15).to_vec(), 15),
            (vec![0; 30], lengths(&[0; 30], 15).to_vec(), 15),
            (a286.to_vec(), lengths(&a286, 15).to_vec(), 15),
            (
                {
                    for (i, f) in a286.iter_mut().enumerate() {
                        *f = i as u32 + 1;
                    }
                    a286.to_vec()
                },
                lengths(&a286, 15).to_vec(),
                15,
            ),
        ];
        for (frequencies, lengths, limit) in cases {
            assert!(lengths.iter().all(|&l| l <= limit), "{frequencies:?}");
            assert_eq!(kraft(&lengths), 1.0, "{frequencies:?}");
            // A more frequent symbol never has a longer code.
            for a in 0..frequencies.len() {
                for b in 0..frequencies.len() {
                    if frequencies[a] > frequencies[b] && frequencies[b] > 0 {
                        assert!(lengths[a] <= lengths[b], "{frequencies:?}");
                    }
                }
            }
        }
    }
}
