//! Seeded random number generation.
//!
//! Every random draw of the simulator comes from a [`SimRng`], the named, portable
//! xoshiro256++ generator (`rand_xoshiro`), so that a seed gives the same stream on every
//! platform and across releases (unlike `StdRng`). Independent streams are derived from one
//! master seed with [`derive_seed`]; parallel work is split into fixed chunks that each own a
//! derived stream, so results do not depend on the number of rayon threads.

use rand::SeedableRng;

/// The generator used for every draw: xoshiro256++ (serializable, 256-bit state).
pub type SimRng = rand_xoshiro::Xoshiro256PlusPlus;

/// One step of SplitMix64, the standard seed scrambler.
pub const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives the seed of sub-stream `stream` from a master seed (e.g. tile `k` of a layer, or
/// chunk `c` of a batch). Distinct `(master, stream)` pairs give decorrelated seeds.
pub const fn derive_seed(master: u64, stream: u64) -> u64 {
    splitmix64(splitmix64(master) ^ splitmix64(stream ^ DERIVE_STREAM_KEY))
}

/// The constant that [`derive_seed`] mixes into the stream index.
pub(crate) const DERIVE_STREAM_KEY: u64 = 0xD1B5_4A32_D192_ED03;

/// A generator seeded from `seed` (via SplitMix64, as `rand_xoshiro` defines it).
pub fn seeded(seed: u64) -> SimRng {
    SimRng::seed_from_u64(seed)
}

/// The generator of sub-stream `stream` of `master`.
pub fn stream(master: u64, stream: u64) -> SimRng {
    seeded(derive_seed(master, stream))
}
