//! Identifiers the whole system checks at its edges: the resident ID number
//! (公民身份号码, GB 11643-1999) and the unified social credit code
//! (统一社会信用代码, GB 32100-2015). Both carry a check character, so a typo is caught
//! before it reaches a form, a log or a department.
//!
//! Parse, don't validate: [`ResidentId`] and [`Uscc`] can only hold checked values.

use std::fmt;

/// Why an identifier was refused; the message names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong number of characters.
    #[error("must be {expected} characters long, got {got}")]
    Length {
        /// How many characters the identifier needs.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// A character outside the identifier's alphabet.
    #[error("character {ch:?} at position {pos} is not allowed")]
    Character {
        /// The refused character.
        ch: char,
        /// 1-based position.
        pos: usize,
    },
    /// The embedded birth date (resident ID) is not a real date.
    #[error("the birth date {0} is not a valid date")]
    BirthDate(String),
    /// The check character does not match the rest.
    #[error("check character is {got:?} but should be {expected:?}")]
    CheckCharacter {
        /// The check character computed from the first 17 characters.
        expected: char,
        /// The check character given.
        got: char,
    },
}

impl IdError {
    /// The same reason in Chinese, for zh-CN error messages.
    pub fn message_zh(&self) -> String {
        match self {
            IdError::Length { expected, got } => format!("长度应为{expected}位，实际为{got}位"),
            IdError::Character { ch, pos } => format!("第{pos}位字符“{ch}”不合法"),
            IdError::BirthDate(d) => format!("出生日期{d}不是有效日期"),
            IdError::CheckCharacter { expected, got } => {
                format!("校验码应为“{expected}”，实际为“{got}”")
            }
        }
    }
}

const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// A checked 18-character resident ID number (身份证号).
///
/// `Debug` and `Display` print the masked form (first 6, last 4) so the number can never
/// reach a log by accident; [`ResidentId::expose`] gives the full value where it is needed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

impl ResidentId {
    /// Checks length, digits, the embedded birth date and the GB 11643 check digit.
    /// A lowercase trailing `x` is accepted and normalised to `X`.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let s = input.trim().to_ascii_uppercase();
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 18 {
            return Err(IdError::Length {
                expected: 18,
                got: chars.len(),
            });
        }
        for (i, &c) in chars.iter().enumerate() {
            let ok = c.is_ascii_digit() || (i == 17 && c == 'X');
            if !ok {
                return Err(IdError::Character { ch: c, pos: i + 1 });
            }
        }
        let birth: String = chars[6..14].iter().collect();
        if chrono::NaiveDate::parse_from_str(&birth, "%Y%m%d").is_err() {
            return Err(IdError::BirthDate(birth));
        }
        let expected = resident_check_digit(&chars[..17]);
        if chars[17] != expected {
            return Err(IdError::CheckCharacter {
                expected,
                got: chars[17],
            });
        }
        Ok(ResidentId(s))
    }

    /// The full number, for storage behind the store's methods and for comparisons.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 6 and last 4 characters, the rest as `*`: the only form fit for logs and
    /// for pages that merely remind the user which number is on file.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 6, 4)
    }

    /// The date of birth encoded in characters 7–14.
    pub fn birth_date(&self) -> Option<chrono::NaiveDate> {
        chrono::NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").ok()
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Completes the first 17 digits of a resident ID number with their check character (for
/// made-up identities: the benchmark's residents).
pub fn resident_id_with_check(first17: &str) -> String {
    let chars: Vec<char> = first17.chars().collect();
    format!("{first17}{}", resident_check_digit(&chars))
}

fn resident_check_digit(first17: &[char]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(RESIDENT_WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    RESIDENT_CHECK[(sum % 11) as usize]
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest.
pub fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// The 31 characters of GB 32100 (no I, O, S, V, Z), in value order.
const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A checked 18-character unified social credit code (统一社会信用代码), the identity of
/// every legal entity, government department and registered business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

impl Uscc {
    /// Checks length, alphabet and the GB 32100 check character (mod 31).
    /// Lowercase input is accepted and normalised to uppercase.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let s = input.trim().to_ascii_uppercase();
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 18 {
            return Err(IdError::Length {
                expected: 18,
                got: chars.len(),
            });
        }
        let mut values = Vec::with_capacity(18);
        for (i, &c) in chars.iter().enumerate() {
            match USCC_CHARSET.find(c) {
                Some(v) => values.push(v as u32),
                None => return Err(IdError::Character { ch: c, pos: i + 1 }),
            }
        }
        let sum: u32 = values[..17]
            .iter()
            .zip(USCC_WEIGHTS)
            .map(|(v, w)| v * w)
            .sum();
        let check = (31 - sum % 31) % 31;
        let expected = USCC_CHARSET.chars().nth(check as usize).unwrap_or('0');
        if chars[17] != expected {
            return Err(IdError::CheckCharacter {
                expected,
                got: chars[17],
            });
        }
        Ok(Uscc(s))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_resident_id_and_masks_it() {
        let id = ResidentId::parse("15070219900307123x").expect("valid");
        assert_eq!(id.expose(), "15070219900307123X");
        assert_eq!(id.masked(), "150702********123X");
        assert_eq!(format!("{id:?}"), "ResidentId(150702********123X)");
        assert_eq!(id.birth_date(), chrono::NaiveDate::from_ymd_opt(1990, 3, 7));
    }

    #[test]
    fn refuses_a_resident_id_with_a_wrong_check_digit() {
        assert_eq!(
            ResidentId::parse("150702199003071231"),
            Err(IdError::CheckCharacter {
                expected: 'X',
                got: '1'
            })
        );
    }

    #[test]
    fn refuses_a_resident_id_with_an_impossible_birth_date() {
        assert!(matches!(
            ResidentId::parse("150702199002301230"),
            Err(IdError::BirthDate(_))
        ));
    }

    #[test]
    fn refuses_a_resident_id_of_wrong_length_or_letters() {
        assert_eq!(
            ResidentId::parse("1507021990"),
            Err(IdError::Length {
                expected: 18,
                got: 10
            })
        );
        assert_eq!(
            ResidentId::parse("1507021990030712AX"),
            Err(IdError::Character { ch: 'A', pos: 17 })
        );
    }

    #[test]
    fn accepts_valid_usccs() {
        for code in [
            "11150700MB1530001X",
            "91350100M000100Y43",
            "11150700011529380a",
        ] {
            assert!(Uscc::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn refuses_a_uscc_with_a_wrong_check_character_or_alphabet() {
        assert_eq!(
            Uscc::parse("11150700MB15300011"),
            Err(IdError::CheckCharacter {
                expected: 'X',
                got: '1'
            })
        );
        assert_eq!(
            Uscc::parse("11150700IB1530001X"),
            Err(IdError::Character { ch: 'I', pos: 9 })
        );
    }

    #[test]
    fn chinese_messages_name_the_rule() {
        let e = IdError::CheckCharacter {
            expected: 'X',
            got: '1',
        };
        assert_eq!(e.message_zh(), "校验码应为“X”，实际为“1”");
    }
}
