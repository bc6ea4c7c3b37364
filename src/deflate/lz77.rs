//! Finding repeated strings (LZ77, RFC 1951 §4) with hash chains sized to the input: a head per hash
//! of three bytes (at most 2^14, fewer for short inputs) and one link per window position, a 16-bit
//! step back to the previous position with the same hash.

use super::{Token, MAX_MATCH, MIN_MATCH, WINDOW};

/// [`greedy`]'s chain length and the match length it is content with.
const FAST_CHAIN: usize = 8;
const FAST_NICE: usize = 32;
/// [`greedy`] adds the positions inside a match to the chains only for matches up to this long: the
/// inside of a long repeat rarely starts a better match, and adding it costs as much as the search.
const FAST_INSERT: usize = 16;
/// [`lazy`]'s chain length: exhaustive for the payloads it is meant for (most 3-byte hashes of a few
/// kilobytes have few earlier occurrences); it only bounds pathological inputs.
const BEST_CHAIN: usize = 4096;
/// A 3-byte match this far back costs more than its three literals under any code zlib would make.
const FAR_THREE: usize = 4096;

/// The hash chains of one input.
struct Chains {
    bits: u32,
    /// Position + 1 of the last position inserted per hash; 0 = none.
    head: Vec<u32>,
    /// Per position (modulo the window), how far back the previous position with its hash is; 0 = none.
    prev: Vec<u16>,
    mask: usize,
}

impl Chains {
    fn new(len: usize) -> Self {
        let bits = len
            .next_power_of_two()
            .trailing_zeros()
            .saturating_sub(1)
            .clamp(8, 14);
        // Positions never wrap when the input fits the window: no link is overwritten while in use.
        let window = len.next_power_of_two().clamp(1, WINDOW);
        Self {
            bits,
            head: vec![0; 1 << bits],
            prev: vec![0; window],
            mask: window - 1,
        }
    }

    #[inline(always)]
    fn hash(&self, data: &[u8], i: usize) -> usize {
        let v = match data.get(i..i + 4) {
            Some(four) => u32::from_le_bytes([four[0], four[1], four[2], 0]),
            None => u32::from(data[i]) | u32::from(data[i + 1]) << 8 | u32::from(data[i + 2]) << 16,
        };
        (v.wrapping_mul(0x9E37_79B1) >> (32 - self.bits)) as usize
    }

    /// Adds position `i` (with at least 3 bytes from it) to its chain.
    #[inline(always)]
    fn insert(&mut self, data: &[u8], i: usize) {
        self.insert_hashed(i, self.hash(data, i));
    }

    /// Adds position `i`, of hash `h`, to its chain.
    #[inline(always)]
    fn insert_hashed(&mut self, i: usize, h: usize) {
        let last = self.head[h] as usize;
        let step = if last == 0 { 0 } else { i + 1 - last };
        self.prev[i & self.mask] = if step <= self.mask { step as u16 } else { 0 };
        self.head[h] = i as u32 + 1;
    }

    /// The longest match (length, distance) of position `i` among the earlier positions with its
    /// hash, nearest first, up to `chain` of them, stopping at `nice` bytes; length 0 if none.
    #[inline(always)]
    fn longest(&self, data: &[u8], i: usize, chain: usize, nice: usize) -> (usize, usize) {
        if data.len() - i < MIN_MATCH {
            return (0, 0);
        }
        self.longest_hashed(data, i, self.hash(data, i), chain, nice)
    }

    /// [`Chains::longest`] of a position with 3 bytes from it, of hash `h`.
    #[inline(always)]
    fn longest_hashed(
        &self,
        data: &[u8],
        i: usize,
        h: usize,
        chain: usize,
        nice: usize,
    ) -> (usize, usize) {
        let max = (data.len() - i).min(MAX_MATCH);
        let mut found = (0, 0);
        let mut best = MIN_MATCH - 1;
        let mut p = self.head[h] as usize;
        if p == 0 {
            return found;
        }
        p -= 1;
        for _ in 0..chain {
            let distance = i - p;
            if distance > WINDOW {
                break;
            }
            // The byte that would make the match longer than the best is the likeliest to differ.
            if data[p + best] == data[i + best] {
                let length = match_length(data, p, i, max);
                if length > best {
                    best = length;
                    found = (length, distance);
                    if length >= nice.min(max) {
                        break;
                    }
                }
            }
            let step = usize::from(self.prev[p & self.mask]);
            if step == 0 || step > p {
                break;
            }
            p -= step;
        }
        found
    }
}

/// How many bytes (up to `max`) from `a` equal those from `b` (`a` < `b`, `b` + `max` ≤ the length).
#[inline(always)]
fn match_length(data: &[u8], a: usize, b: usize, max: usize) -> usize {
    let mut n = 0;
    while n + 8 <= max {
        let x = u64::from_le_bytes(data[a + n..a + n + 8].try_into().unwrap_or_default());
        let y = u64::from_le_bytes(data[b + n..b + n + 8].try_into().unwrap_or_default());
        let diff = x ^ y;
        if diff != 0 {
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && data[a + n] == data[b + n] {
        n += 1;
    }
    n
}

/// Each position's longest match over short chains, taken when found: fast ([`super::Effort::Fast`]).
pub(super) fn greedy(data: &[u8]) -> Vec<Token> {
    let n = data.len();
    let mut chains = Chains::new(n);
    let mut tokens = Vec::with_capacity(n / 4 + 16);
    // Positions with the 3 bytes a hash (and a match) needs.
    let hashable = n.saturating_sub(MIN_MATCH - 1);
    let mut i = 0;
    while i < hashable {
        let h = chains.hash(data, i);
        let (length, distance) = chains.longest_hashed(data, i, h, FAST_CHAIN, FAST_NICE);
        chains.insert_hashed(i, h);
        if length >= MIN_MATCH && !(length == MIN_MATCH && distance > FAR_THREE) {
            tokens.push(Token::matched(length, distance));
            if length <= FAST_INSERT {
                for p in i + 1..(i + length).min(hashable) {
                    chains.insert(data, p);
                }
            }
            i += length;
        } else {
            tokens.push(Token::literal(data[i]));
            i += 1;
        }
    }
    tokens.extend(
        data.get(i..)
            .unwrap_or_default()
            .iter()
            .map(|&b| Token::literal(b)),
    );
    tokens
}

/// zlib's lazy matching over every position's longest match (hash chains over the whole input, as
/// long as [`BEST_CHAIN`]): a match is put off by one byte when the next position has a longer one.
pub(super) fn lazy(data: &[u8]) -> Vec<Token> {
    let n = data.len();
    let mut chains = Chains::new(n);
    // Positions below `inserted` are in the chains; a position is looked up before it is inserted.
    let mut inserted = 0;
    let mut longest = |i: usize| {
        for p in inserted..i.min(n.saturating_sub(MIN_MATCH - 1)) {
            chains.insert(data, p);
        }
        inserted = inserted.max(i);
        chains.longest(data, i, BEST_CHAIN, MAX_MATCH)
    };
    let mut tokens = Vec::with_capacity(n / 2 + 16);
    let mut i = 0;
    let mut current = longest(0);
    while i < n {
        let (length, distance) = current;
        let worth = length > MIN_MATCH || (length == MIN_MATCH && distance <= FAR_THREE);
        if !worth {
            tokens.push(Token::literal(data[i]));
            i += 1;
            current = longest(i);
            continue;
        }
        let next = longest(i + 1);
        if next.0 > length {
            tokens.push(Token::literal(data[i]));
            i += 1;
            current = next;
        } else {
            tokens.push(Token::matched(length, distance));
            i += length;
            current = longest(i);
        }
    }
    tokens
}
