//! Who exists on a given day, and in which version. Everything is a function of the index
//! alone (birth day, death day, change days, identifier), so that the difference between
//! two days is known without generating either.

use super::GenError;
use super::rng::{GOLDEN_WEYL, Geometric, ID_DOMAIN, IdPermutation, Rng, key, luhn_digit, tag};

/// Daily probability that a professional leaves the extract.
const DEATH_RATE: f64 = 0.003;
/// Daily probability of a change event (phone, address, activity, savoir-faire): about
/// 1.5 % of professionals change from one day to the next (issue 10 asks for 1–2 %).
const CHANGE_RATE: f64 = 0.015;
/// New professionals per day, per thousand of the base population.
const NEW_PER_MILLE: u64 = 4;
/// One ADELI professional in each block of this many base indices (2 %).
const ADELI_BLOCK: u64 = 50;
/// Days covered by the waiting-time tables; beyond, an event simply never happens.
const HORIZON_DAYS: usize = 20_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum IdType {
    Rpps,
    Adeli,
}

impl IdType {
    /// Value of `Type d'identifiant PP`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            IdType::Rpps => "8",
            IdType::Adeli => "0",
        }
    }
}

pub(crate) struct Population {
    seed: u64,
    base: u64,
    day: u32,
    new_per_day: u64,
    adeli_total: u64,
    death: Geometric,
    change: Geometric,
    ids: IdPermutation,
}

impl Population {
    pub(crate) fn new(base: u64, seed: u64, day: u32) -> Result<Self, GenError> {
        if base == 0 {
            return Err(GenError::InvalidOptions("--professionals must be at least 1".into()));
        }
        let new_per_day = ((base * NEW_PER_MILLE + 500) / 1000).max(1);
        base.checked_add(new_per_day.saturating_mul(u64::from(day)))
            .filter(|&e| e <= ID_DOMAIN)
            .ok_or_else(|| {
                GenError::InvalidOptions(format!(
                    "{base} professionals over {day} days exceed the {ID_DOMAIN} identifiers available"
                ))
            })?;
        let mut pop = Population {
            seed,
            base,
            day,
            new_per_day,
            adeli_total: 0,
            death: Geometric::new(DEATH_RATE, HORIZON_DAYS),
            change: Geometric::new(CHANGE_RATE, HORIZON_DAYS),
            ids: IdPermutation::new(seed),
        };
        let blocks = base.div_ceil(ADELI_BLOCK);
        pop.adeli_total = (0..blocks).filter(|&b| pop.adeli_position(b).is_some()).count() as u64;
        Ok(pop)
    }

    #[cfg(test)]
    pub(crate) fn day(&self) -> u32 {
        self.day
    }

    /// Every index ever born up to `day` is below this.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.new_per_day * u64::from(self.day)
    }

    pub(crate) fn birth_day(&self, i: u64) -> u32 {
        if i < self.base {
            0
        } else {
            ((i - self.base) / self.new_per_day + 1) as u32
        }
    }

    /// Offset of the ADELI professional inside block `b`, if the (possibly short last)
    /// block has one.
    fn adeli_position(&self, b: u64) -> Option<u64> {
        let len = (self.base - b * ADELI_BLOCK).min(ADELI_BLOCK);
        let pos = Rng::new(key(&[self.seed, tag::ADELI_SLOT, b])).below(ADELI_BLOCK);
        (pos < len).then_some(pos)
    }

    /// New professionals are all RPPS: ADELI registrations stopped in 2024.
    pub(crate) fn id_type(&self, i: u64) -> IdType {
        if i < self.base && self.adeli_position(i / ADELI_BLOCK) == Some(i % ADELI_BLOCK) {
            IdType::Adeli
        } else {
            IdType::Rpps
        }
    }

    /// Rank of `i` among the professionals of its identifier type.
    fn type_rank(&self, i: u64) -> (IdType, u64) {
        if i >= self.base {
            return (IdType::Rpps, i - self.adeli_total);
        }
        let b = i / ADELI_BLOCK;
        match self.adeli_position(b) {
            Some(p) if p == i % ADELI_BLOCK => (IdType::Adeli, b),
            Some(p) if p < i % ADELI_BLOCK => (IdType::Rpps, i - b - 1),
            _ => (IdType::Rpps, i - b),
        }
    }

    /// Day the professional is gone from the extract (None: not within the horizon).
    /// The uniform draw is a golden-ratio (Weyl) sequence over the rank within the
    /// identifier type rather than a hash: its low discrepancy keeps the number removed per
    /// day close to its mean even for the small ADELI population, so a day-to-day diff
    /// never trips the importer's 1 % removal gate by bad luck.
    pub(crate) fn death_day(&self, i: u64) -> Option<u32> {
        let (ty, rank) = self.type_rank(i);
        let offset = key(&[self.seed, tag::DEATH, ty as u64]);
        let u = rank.wrapping_mul(GOLDEN_WEYL).wrapping_add(offset);
        self.death.sample(u).map(|k| self.birth_day(i) + k)
    }

    pub(crate) fn alive(&self, i: u64) -> bool {
        self.birth_day(i) <= self.day && self.death_day(i).is_none_or(|d| d > self.day)
    }

    /// Number of change events of `i` from its birth up to `day`: its content version.
    pub(crate) fn version(&self, i: u64) -> u32 {
        let mut at = self.birth_day(i);
        let mut k = 0u32;
        while let Some(gap) = self.change.sample(key(&[self.seed, tag::CHANGE_GAP, i, u64::from(k)])) {
            at += gap;
            if at > self.day {
                break;
            }
            k += 1;
        }
        k
    }

    /// `Identifiant PP`: 11-digit RPPS with a Luhn check digit, or 9-character ADELI.
    /// Both come from a bijection of the index, so they never collide.
    pub(crate) fn identifier(&self, i: u64) -> String {
        let n = self.ids.apply(i);
        match self.id_type(i) {
            IdType::Rpps => {
                let mut s = format!("10{n:08}");
                s.push(luhn_digit(&s));
                s
            }
            IdType::Adeli => format!("0{n:08}"),
        }
    }
}
